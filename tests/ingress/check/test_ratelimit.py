"""The token bucket against the real Redis: headers, the exact count under concurrency, fallback and recovery."""

from __future__ import annotations

import asyncio
import time
import uuid

import redis.asyncio as aioredis

from infra.redis_client import build_redis_client
from ingress.check.ratelimit import Limit, LocalBuckets, RateLimiter
from ingress.settings import IngressSettings
from tests.support.processes import redis_process


async def test_bucket_allows_capacity_then_refuses_with_retry_after(redis_client: aioredis.Redis) -> None:
    limiter = RateLimiter(redis_client)
    key = f"k-{uuid.uuid4().hex}"
    limit = Limit(100, 60)
    decisions = [await limiter.take(key, limit) for _ in range(101)]
    assert all(d.allowed for d in decisions[:100])
    assert [d.remaining for d in decisions[:3]] == [99, 98, 97]
    last = decisions[100]
    assert not last.allowed
    assert last.source == "redis"
    headers = last.headers()
    assert headers["X-RateLimit-Limit"] == "100"
    assert headers["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(headers["Retry-After"]) <= 1
    assert int(headers["X-RateLimit-Reset"]) >= int(time.time())
    assert int(headers["X-RateLimit-Reset"]) <= int(time.time()) + 61


async def test_exactly_capacity_pass_under_concurrency(settings: IngressSettings) -> None:
    client = build_redis_client(settings.redis_url, timeout=2.0)
    limiter = RateLimiter(client, timeout_s=2.0)
    key = f"k-{uuid.uuid4().hex}"
    limit = Limit(100, 3600)
    results = await asyncio.gather(*(limiter.take(key, limit) for _ in range(200)))
    assert sum(r.allowed for r in results) == 100
    assert {r.source for r in results} == {"redis"}
    await client.aclose()


async def test_refill_follows_the_window(redis_client: aioredis.Redis) -> None:
    limiter = RateLimiter(redis_client)
    key = f"k-{uuid.uuid4().hex}"
    limit = Limit(5, 1)  # 5 tokens per second
    assert sum([(await limiter.take(key, limit)).allowed for _ in range(6)]) == 5
    await asyncio.sleep(0.45)
    assert (await limiter.take(key, limit)).allowed


def test_local_buckets_use_the_same_algorithm() -> None:
    now = [1000.0]
    buckets = LocalBuckets(clock=lambda: now[0])
    limit = Limit(3, 3)
    assert [buckets.take("a", limit).allowed for _ in range(4)] == [True, True, True, False]
    now[0] += 1.0
    assert buckets.take("a", limit).allowed
    assert not buckets.take("a", limit).allowed
    assert buckets.take("b", limit).allowed


async def test_redis_stopped_mid_test_falls_back_then_recovers() -> None:
    with redis_process() as server:
        client = build_redis_client(server.url, timeout=0.2)
        limiter = RateLimiter(client, timeout_s=0.2, open_s=0.3)
        key = f"k-{uuid.uuid4().hex}"
        limit = Limit(10, 60)
        assert (await limiter.take(key, limit)).source == "redis"

        server.stop()
        during = [await limiter.take(key, limit) for _ in range(15)]
        assert limiter.fallback_active
        assert {d.source for d in during} == {"local"}
        # the local bucket still limits, and continues from what Redis last reported (9 tokens left)
        assert sum(d.allowed for d in during) == 9
        assert all(not d.allowed and "Retry-After" in d.headers() for d in during[10:])

        server.start()
        await asyncio.sleep(0.35)  # the breaker's open interval
        recovered = None
        for _ in range(20):
            recovered = await limiter.take(key, limit)
            if recovered.source == "redis":
                break
            await asyncio.sleep(0.1)
        assert recovered is not None
        assert recovered.source == "redis"
        assert not limiter.fallback_active
        assert limiter.fallback_engagements == 1
        await client.aclose()
