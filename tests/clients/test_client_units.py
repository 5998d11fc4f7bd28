"""The client's pure parts: the retry plan, the wait hints, the JSON it sends, the receipt key cache."""

from __future__ import annotations

import random
import time
from email.utils import formatdate

from governance_client import GovernanceUnavailable, RateLimited, RetryPolicy, ServerError, ValidationFailed
from governance_client.operations import MAX_STRING, llm_call, plain_json
from governance_client.protocol import redact, wait_hint
from governance_client.receipts import KeyCache


def limited(retry_after: float | None) -> RateLimited:
    return RateLimited("limited", retry_after=retry_after, reset_at=None, status=429)


def test_retry_after_is_waited_for_with_bounded_jitter() -> None:
    policy = RetryPolicy(max_attempts=3, jitter_s=0.25, max_wait_s=10)
    rng = random.Random(7)
    delays = [policy.delay(limited(2), 1, remaining_s=30, rng=rng) for _ in range(200)]
    assert all(d is not None and 2 <= d <= 2.25 for d in delays)
    assert len({round(d or 0, 6) for d in delays}) > 100  # jittered, not one instant for every caller


def test_no_retry_past_attempts_deadline_or_max_wait() -> None:
    policy = RetryPolicy(max_attempts=3, max_wait_s=10)
    assert policy.delay(limited(1), 3, remaining_s=30) is None  # attempts used up
    assert policy.delay(limited(5), 1, remaining_s=4) is None  # would end past the deadline
    assert policy.delay(limited(11), 1, remaining_s=60) is None  # longer than the policy waits
    assert policy.delay(ServerError("bug", status=500), 1, remaining_s=30) is None
    assert policy.delay(ValidationFailed("bad", status=422), 1, remaining_s=30) is None


def test_outages_back_off_exponentially_within_the_cap() -> None:
    policy = RetryPolicy(max_attempts=10, backoff_s=0.2, max_backoff_s=2.0)
    rng = random.Random(3)
    outage = GovernanceUnavailable("down")
    for attempt, step in [(1, 0.2), (2, 0.4), (3, 0.8), (4, 1.6), (5, 2.0), (8, 2.0)]:
        delay = policy.delay(outage, attempt, remaining_s=60, rng=rng)
        assert delay is not None
        assert step / 2 <= delay <= step


def test_wait_hints_from_retry_after_or_the_reset() -> None:
    now = time.time()
    assert wait_hint({"retry-after": "3"}, now) == 3.0
    assert wait_hint({"retry-after": "0.5"}, now) == 0.5
    http_date = wait_hint({"retry-after": formatdate(now + 30, usegmt=True)}, now)
    assert http_date is not None
    assert 28 <= http_date <= 31
    assert wait_hint({"x-ratelimit-reset": str(int(now) + 20)}, now) is not None
    assert wait_hint({"x-ratelimit-reset": str(int(now) - 5)}, now) == 0.0
    assert wait_hint({"retry-after": "soon"}, now) is None
    assert wait_hint({}, now) is None


def test_long_strings_are_sent_in_pieces_within_the_limit() -> None:
    prompt = ("lorem ipsum " * MAX_STRING)[: MAX_STRING * 2 + 10]
    operation = llm_call("gpt-4o-mini", [{"role": "user", "content": prompt}], provider="openai", max_tokens=5)
    pieces = operation["messages"][0]["content"]
    assert [len(p) for p in pieces] == [MAX_STRING, MAX_STRING, 10]
    assert "".join(pieces) == prompt
    assert operation["tokens"] == 5
    assert llm_call("m", prompt=prompt)["messages"][0]["content"] == pieces
    assert "prompt" not in llm_call("m", prompt=prompt)


def test_inline_images_are_left_out_and_text_is_kept() -> None:
    image = "iVBORw0KGgo" * 1000
    url = f"data:image/png;base64,{image}"
    blocks = [
        {"type": "image_url", "image_url": {"url": url}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": image}},
        {"type": "text", "text": "Write to jane.doe@example.com " * 200},
    ]
    plain = plain_json(blocks)
    assert plain[0]["image_url"]["url"] == f"data:image/png;base64,<{len(url)} characters of base64 left out>"
    assert plain[1]["source"]["data"] == f"<{len(image)} characters of base64 left out>"
    assert plain[2] == blocks[2]  # prose is sent whole, to be scanned
    assert plain_json("A" * 100) == "A" * 100
    prose = "plain words and spaces " * 400
    assert plain_json(prose) == prose


def test_sdk_objects_become_plain_json() -> None:
    class Model:
        def model_dump(self, mode: str, exclude_none: bool) -> dict[str, object]:
            assert (mode, exclude_none) == ("json", True)
            return {"role": "assistant", "content": "hi"}

    value = plain_json([Model(), ({"k": b"raw"}), (item for item in ("a", "b")), 3, None, b"bytes"])
    assert value == [{"role": "assistant", "content": "hi"}, {}, ["a", "b"], 3, None]
    assert llm_call("m", max_tokens=True).get("tokens") is None  # a bool is not a count


def test_redaction_and_the_key_cache() -> None:
    assert redact("bad key sk_live_abc", "sk_live_abc") == "bad key [redacted]"
    cache = KeyCache(ttl_s=100, refresh_floor_s=10)
    assert cache.needs_fetch(None, now=0)
    cache.store({"rk_a": b"1"}, now=0)
    assert not cache.needs_fetch("rk_a", now=5)
    assert not cache.needs_fetch("rk_unknown", now=5)  # a forged id cannot make every verification fetch
    assert cache.needs_fetch("rk_unknown", now=11)
    assert cache.needs_fetch(None, now=101)
    cache.store({"rk_b": b"2"}, now=101)
    assert set(cache.keys) == {"rk_a", "rk_b"}  # keys once published stay for old receipts
