"""Token leases against the real Redis: far fewer script calls for a hot key, several processes' limiters (each with
its own connection) never past the capacity plus the tokens held in leases, the exact count near the limit, and
the breaker's fallback unchanged.

Most buckets here refill over 30 days, so that the few seconds a test takes earn no token and every count is exact;
the one test of refilling moves the bucket's own timestamp back instead of waiting.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from infra.redis_client import build_redis_client
from ingress.check.leases import LeasePolicy
from ingress.check.ratelimit import Limit, RateDecision, RateLimiter
from ingress.settings import IngressSettings
from tests.support.processes import redis_process

MONTH_S = 30 * 86_400
HOT = Limit(1000, MONTH_S)  # leases of 10 tokens; only what is waiting below 50 left after a lease
# A lease outlives any stall of a busy machine here (expiry is tested on the limiter's own clock).
LEASE = LeasePolicy(fraction=0.01, ttl_s=30.0, exact_below=5)


@pytest.fixture
async def bucket_key(redis_client: aioredis.Redis) -> AsyncIterator[str]:
    key = f"lease-{uuid.uuid4().hex}"
    yield key
    await redis_client.delete(f"rl:{key}")


@pytest.fixture
async def limiters(settings: IngressSettings) -> AsyncIterator[Callable[..., RateLimiter]]:
    """Limiters standing in for check processes: each with its own Redis connection pool."""
    clients: list[aioredis.Redis] = []

    def make(monotonic: Callable[[], float] = time.monotonic) -> RateLimiter:
        client = build_redis_client(settings.redis_url, timeout=5.0)
        clients.append(client)
        return RateLimiter(client, timeout_s=5.0, leases=LEASE, monotonic=monotonic)

    yield make
    for client in clients:
        await client.aclose()


async def _bucket_tokens(redis: aioredis.Redis, key: str) -> int:
    """Whole tokens in the bucket (a month's refill adds a few millionths of a token per second)."""
    return math.floor(float(await redis.hget(f"rl:{key}", "tokens")))


async def _script_calls(redis: aioredis.Redis) -> int:
    stats = await redis.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval"))


async def test_a_hot_key_costs_a_script_call_per_lease_not_per_check() -> None:
    """Counted by the server (INFO commandstats of a Redis of the test's own, which nothing else uses)."""
    with redis_process() as server:
        client = build_redis_client(server.url, timeout=5.0)
        try:
            calls: dict[str, int] = {}
            for name, policy in (("leases", LEASE), ("per check", LeasePolicy(fraction=0.0))):
                limiter = RateLimiter(client, timeout_s=5.0, leases=policy)
                key = f"hot-{uuid.uuid4().hex}"
                before = await _script_calls(client)
                sequential = [await limiter.take(key, HOT) for _ in range(300)]
                concurrent = await asyncio.gather(*(limiter.take(key, HOT) for _ in range(300)))
                calls[name] = await _script_calls(client) - before
                assert all(d.allowed for d in (*sequential, *concurrent)), name
                assert [d.remaining for d in sequential[:3]] == [999, 998, 997], name
                assert sorted(d.remaining for d in concurrent) == list(range(400, 700)), name
        finally:
            await client.aclose()
    # a script's first call may count once more (NOSCRIPT, then loaded)
    assert 600 <= calls["per check"] <= 601, calls
    # 300 sequential checks are 30 leases of 10; 300 concurrent ones queue for one call, which asks for them all
    assert calls["leases"] <= 30 + 1 + 1, calls


async def test_several_processes_together_never_pass_the_capacity(
    limiters: Callable[..., RateLimiter], bucket_key: str, redis_client: aioredis.Redis
) -> None:
    """Three limiters, eight concurrent callers each, three times the capacity asked for: with no refill, exactly
    the capacity passes (tokens only come out of the bucket, and near the limit no token is held)."""
    processes = [limiters() for _ in range(3)]

    async def caller(limiter: RateLimiter) -> list[RateDecision]:
        return [await limiter.take(bucket_key, HOT) for _ in range(125)]

    results = await asyncio.gather(*(caller(limiter) for limiter in processes for _ in range(8)))
    decisions = [d for result in results for d in result]
    assert len(decisions) == 3 * HOT.capacity
    assert sum(d.allowed for d in decisions) == HOT.capacity
    assert {d.source for d in decisions} == {"lease"}
    refused = [d for d in decisions if not d.allowed]
    assert all(d.remaining == 0 and d.retry_after_s >= 1 for d in refused)
    assert await _bucket_tokens(redis_client, bucket_key) == 0
    assert [limiter.leases.held(bucket_key) for limiter in processes] == [0, 0, 0]  # nothing left held anywhere


async def test_the_slack_is_at_most_the_tokens_held_in_leases_when_the_bucket_refills(
    limiters: Callable[..., RateLimiter], bucket_key: str, redis_client: aioredis.Redis
) -> None:
    """The worst case: every process holds a lease while the bucket refills to full, then all of them drain it.
    One exact bucket would have allowed 3 + 1000; the leases add what they held (3 x 9), never more."""
    processes = [limiters() for _ in range(3)]
    first = [await limiter.take(bucket_key, HOT) for limiter in processes]
    assert all(d.allowed for d in first)
    assert await _bucket_tokens(redis_client, bucket_key) == HOT.capacity - 3 * 10
    # a whole window passes (on the bucket's own clock): it is full again while the 27 leased tokens are held
    await redis_client.hincrby(f"rl:{bucket_key}", "ts", -MONTH_S * 1000)
    drained = [await limiter.take(bucket_key, HOT) for _ in range(600) for limiter in processes]
    allowed = len(first) + sum(d.allowed for d in drained)
    slack = 3 * LEASE.size(HOT)
    assert allowed == 3 + HOT.capacity + 3 * 9
    assert allowed <= 3 + HOT.capacity + slack


async def test_near_the_limit_every_check_is_exact_and_the_1001st_is_refused(
    limiters: Callable[..., RateLimiter], bucket_key: str, redis_client: aioredis.Redis
) -> None:
    limiter = limiters()
    decisions = []
    held_near_the_limit = []
    for _ in range(HOT.capacity):
        decision = await limiter.take(bucket_key, HOT)
        decisions.append(decision)
        if decision.remaining < 50:  # under 5 leases' worth: no token may sit in the lease
            held_near_the_limit.append(decision.remaining - int(await _bucket_tokens(redis_client, bucket_key)))
    assert all(d.allowed for d in decisions)
    assert [d.remaining for d in decisions] == list(range(999, -1, -1))  # one process: exact, lease or not
    assert held_near_the_limit == [0] * len(held_near_the_limit)
    assert len(held_near_the_limit) >= 40
    last = await limiter.take(bucket_key, HOT)
    assert not last.allowed
    headers = last.headers()
    assert headers["X-RateLimit-Remaining"] == "0"
    assert int(headers["Retry-After"]) >= 1


async def test_a_lease_held_elsewhere_counts_and_an_expired_one_goes_back_to_the_bucket(
    limiters: Callable[..., RateLimiter], bucket_key: str, redis_client: aioredis.Redis
) -> None:
    clock = [1000.0]
    a = limiters(monotonic=lambda: clock[0])
    b = limiters()
    assert (await a.take(bucket_key, HOT)).remaining == 999  # a holds 9 of the lease
    assert await _bucket_tokens(redis_client, bucket_key) == 990
    clock[0] += LEASE.ttl_s  # a's lease expires unused
    again = await a.take(bucket_key, HOT)
    assert again.allowed
    assert again.remaining == 998  # the 9 went back in the same call that took the next lease of 10
    assert await _bucket_tokens(redis_client, bucket_key) == 989
    # b drains the bucket: refused once it is empty, while a still holds 9
    drained = [await b.take(bucket_key, HOT) for _ in range(1000)]
    assert sum(d.allowed for d in drained) == 989
    assert sum([(await a.take(bucket_key, HOT)).allowed for _ in range(10)]) == 9
    assert not (await b.take(bucket_key, HOT)).allowed


async def test_a_limit_too_small_for_a_lease_keeps_the_script_per_check(
    limiters: Callable[..., RateLimiter], bucket_key: str
) -> None:
    limiter = limiters()
    decisions = [await limiter.take(bucket_key, Limit(100, MONTH_S)) for _ in range(101)]
    assert {d.source for d in decisions} == {"redis"}
    assert sum(d.allowed for d in decisions) == 100
    assert limiter.leases.held(bucket_key) == 0


async def test_with_leases_redis_stopped_falls_back_then_recovers() -> None:
    with redis_process() as server:
        client = build_redis_client(server.url, timeout=0.2)
        try:
            limiter = RateLimiter(client, timeout_s=0.2, open_s=0.3, leases=LEASE)
            key = f"k-{uuid.uuid4().hex}"
            limit = Limit(1000, 60)
            assert (await limiter.take(key, limit)).source == "lease"
            server.stop()
            during = [await limiter.take(key, limit) for _ in range(15)]
            # the lease's 9 tokens first, then the breaker's three failures and the in-memory bucket
            assert [d.source for d in during[:9]] == ["lease"] * 9
            assert {d.source for d in during[9:]} == {"local"}
            assert all(d.allowed for d in during)
            assert limiter.fallback_active
            server.start()
            recovered = None
            for _ in range(40):
                await asyncio.sleep(0.1)
                recovered = await limiter.take(key, limit)
                if recovered.source == "lease" and not limiter.fallback_active:
                    break
            assert recovered is not None
            assert recovered.source == "lease"
            assert not limiter.fallback_active
            assert limiter.fallback_engagements == 1
        finally:
            await client.aclose()
