"""The pure part of token leases (ingress/check/leases.py): lease sizes, deciding checks from a lease, expiry and
the tokens given back, partial grants near the limit, the bound on leases held. The clock is the test's."""

from __future__ import annotations

import math

import pytest

from ingress.check.leases import Grant, LeaseBook, LeasePolicy
from ingress.check.rate_decision import Limit

PRO = Limit(1000, 60)


def _book(clock: list[float], ttl_s: float = 1.0) -> LeaseBook:
    return LeaseBook(LeasePolicy(ttl_s=ttl_s), clock=lambda: clock[0])


@pytest.mark.parametrize(
    ("capacity", "fraction", "size"),
    [(1000, 0.01, 10), (600, 0.01, 6), (200, 0.01, 2), (199, 0.01, 0), (100, 0.01, 0), (1000, 0.0, 0), (5, 0.5, 2)],
)
def test_a_lease_is_a_share_of_the_capacity_and_none_under_two_tokens(
    capacity: int, fraction: float, size: int
) -> None:
    assert LeasePolicy(fraction=fraction).size(Limit(capacity, 60)) == size


def test_the_script_is_told_the_lease_and_the_level_below_which_it_grants_only_what_waits() -> None:
    policy = LeasePolicy(fraction=0.01, exact_below=5)
    assert policy.script_args(PRO, want=3, given_back=4) == [1000, 60_000, 3, 10, 50, 4]


def test_checks_are_decided_from_the_lease_until_it_is_used_up() -> None:
    clock = [100.0]
    book = _book(clock)
    assert book.take("k") is None  # nothing leased yet: ask the script
    first = book.grant("k", PRO, Grant(granted=10, bucket_left=990.0, retry_ms=0, redis_now_ms=1_000_000), checks=1)
    assert [(d.allowed, d.remaining, d.source) for d in first] == [(True, 999, "lease")]
    rest = [book.take("k") for _ in range(9)]
    assert [d.remaining for d in rest if d is not None] == list(range(998, 989, -1))
    assert book.take("k") is None
    assert book.settle("k") == 0  # used up: nothing to give back
    assert len(book) == 0


def test_remaining_and_reset_count_the_lease_as_the_callers() -> None:
    book = _book([0.0])
    (decision,) = book.grant("k", PRO, Grant(10, 990.0, 0, 1_000_000), checks=1)
    # 999 tokens are the caller's (990 in the bucket, 9 leased): a token every 60 ms refills the one missing
    assert decision.remaining == 999
    assert decision.reset_epoch_s == math.ceil(1000 + 1 * 60 / 1000)
    headers = decision.headers()
    assert headers["X-RateLimit-Limit"] == "1000"
    assert "Retry-After" not in headers


def test_an_expired_lease_decides_nothing_and_gives_its_unused_tokens_back() -> None:
    clock = [100.0]
    book = _book(clock, ttl_s=1.0)
    book.grant("k", PRO, Grant(10, 990.0, 0, 1_000_000), checks=1)
    assert book.take("k") is not None
    clock[0] += 0.999
    assert book.take("k") is not None
    clock[0] += 0.001
    assert book.take("k") is None  # expired: the script decides, and gets the 7 tokens back
    assert book.settle("k") == 7
    assert book.settle("k") == 0  # once


def test_near_the_limit_a_grant_short_of_the_checks_waiting_refuses_the_rest() -> None:
    book = _book([0.0])
    grant = Grant(granted=2, bucket_left=0.25, retry_ms=45, redis_now_ms=5_000)
    decisions = book.grant("k", PRO, grant, checks=5)
    assert [d.allowed for d in decisions] == [True, True, False, False, False]
    assert [d.remaining for d in decisions] == [1, 0, 0, 0, 0]
    refused = decisions[-1].headers()
    assert refused["Retry-After"] == "1"  # never 0 on a 429
    assert refused["X-RateLimit-Remaining"] == "0"
    assert book.take("k") is None  # nothing is left over to lease
    assert len(book) == 0


def test_a_grant_for_several_checks_keeps_only_the_spare_tokens() -> None:
    book = _book([0.0])
    decisions = book.grant("k", PRO, Grant(10, 900.0, 0, 0), checks=4)
    assert [d.remaining for d in decisions] == [909, 908, 907, 906]
    assert book.settle("k") == 6


def test_the_book_holds_a_bounded_number_of_leases_and_a_dropped_one_gives_nothing_back() -> None:
    book = LeaseBook(LeasePolicy(), max_leases=2, clock=lambda: 0.0)
    for key in ("a", "b"):
        book.grant(key, PRO, Grant(10, 990.0, 0, 0), checks=1)
    assert book.take("a") is not None  # "a" is now the most recently used
    book.grant("c", PRO, Grant(10, 990.0, 0, 0), checks=1)
    assert len(book) == 2
    assert book.take("b") is None
    assert book.settle("b") == 0  # its tokens are lost, which only ever refuses more
    assert book.take("a") is not None
    assert book.take("c") is not None


def test_the_scripts_reply_is_read_as_redis_sends_it() -> None:
    grant = Grant.from_reply([10, b"989.75", 0, 1_700_000_000_123])
    assert grant == Grant(10, 989.75, 0, 1_700_000_000_123)
