"""Token-bucket rate limiting per API key: one atomic Lua script in Redis on Redis's clock, with an in-memory
fallback per process behind a circuit breaker.

A bucket holds ``capacity`` tokens and refills continuously at ``capacity / window`` per second. Each check takes
one token. A Redis call that errors or is slower than ``timeout_s`` is decided by this process's in-memory bucket
for that key, which continues from the last state Redis reported for it (so one slow call under load does not
hand out a fresh bucket). After ``failure_threshold`` such failures in a row the breaker opens for ``open_s``
seconds and every check is limited in memory (a fleet of N processes may then let through up to N times the
limit while Redis is away); then one request probes Redis again and, if it answers, the breaker closes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("ingress.check.ratelimit")

BUCKET_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local capacity = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local rate = capacity / window_ms
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], window_ms * 2)
local retry_ms = 0
if allowed == 0 then
  retry_ms = math.ceil((cost - tokens) / rate)
end
local full_ms = math.ceil((capacity - tokens) / rate)
return {allowed, math.floor(tokens), retry_ms, full_ms, now}
"""


@dataclass(frozen=True)
class Limit:
    capacity: int
    window_s: int


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_epoch_s: int
    retry_after_s: int
    source: str  # "redis" or "local"

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_epoch_s),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers


class LocalBuckets:
    """The same algorithm in process memory, bounded in size (least recently used buckets are dropped)."""

    def __init__(self, max_buckets: int = 100_000, clock: Callable[[], float] = time.time) -> None:
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._max = max_buckets
        self._clock = clock

    def observe(self, key: str, tokens: float, at: float | None = None) -> None:
        """Adopt the state Redis reported, so a fallback continues from it."""
        self._buckets.pop(key, None)
        self._buckets[key] = (tokens, self._clock() if at is None else at)
        if len(self._buckets) > self._max:
            self._buckets.popitem(last=False)

    def take(self, key: str, limit: Limit, cost: int = 1) -> RateDecision:
        now = self._clock()
        rate = limit.capacity / limit.window_s
        tokens, ts = self._buckets.pop(key, (float(limit.capacity), now))
        tokens = min(limit.capacity, tokens + max(0.0, now - ts) * rate)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        retry = 0 if allowed else math.ceil((cost - tokens) / rate)
        full = (limit.capacity - tokens) / rate
        return RateDecision(allowed, limit.capacity, math.floor(tokens), math.ceil(now + full), max(retry, 0), "local")


class RateLimiter:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        timeout_s: float = 0.25,
        open_s: float = 2.0,
        failure_threshold: int = 3,
        prefix: str = "rl:",
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._script = redis.register_script(BUCKET_SCRIPT)
        self._timeout = timeout_s
        self._open_s = open_s
        self._prefix = prefix
        self._mono = monotonic
        self._open_until = 0.0
        self._probing = False
        self._threshold = failure_threshold
        self._consecutive_failures = 0
        self.local = LocalBuckets()
        self.fallback_active = False
        self.fallback_engagements = 0

    def _use_redis(self) -> bool:
        if self._open_until == 0.0:
            return True
        if self._mono() >= self._open_until and not self._probing:
            self._probing = True  # one request probes; the rest stay local until it answers
            return True
        return False

    def _trip(self, exc: BaseException) -> None:
        self._consecutive_failures += 1
        self._probing = False
        if self._consecutive_failures < self._threshold and not self.fallback_active:
            return  # this check is decided locally; the breaker stays closed
        if not self.fallback_active:
            log.warning("rate limiting falls back to in-memory buckets: Redis %s", type(exc).__name__)
            self.fallback_engagements += 1
        self.fallback_active = True
        self._open_until = self._mono() + self._open_s
        self._probing = False

    def _close(self) -> None:
        self._consecutive_failures = 0
        if self.fallback_active:
            log.info("rate limiting is back on Redis")
        self.fallback_active = False
        self._open_until = 0.0
        self._probing = False

    async def take(self, key_id: str, limit: Limit, cost: int = 1) -> RateDecision:
        if self._use_redis():
            try:
                async with asyncio.timeout(self._timeout):
                    allowed, remaining, retry_ms, full_ms, now_ms = await self._script(
                        keys=[self._prefix + key_id], args=[limit.capacity, limit.window_s * 1000, cost]
                    )
            except (RedisError, OSError, TimeoutError) as exc:
                self._trip(exc)
            else:
                self._close()
                self.local.observe(key_id, float(remaining))
                return RateDecision(
                    allowed=bool(allowed),
                    limit=limit.capacity,
                    remaining=int(remaining),
                    reset_epoch_s=math.ceil((int(now_ms) + int(full_ms)) / 1000),
                    retry_after_s=max(1, math.ceil(int(retry_ms) / 1000)) if not allowed else 0,
                    source="redis",
                )
        decision = self.local.take(key_id, limit, cost)
        if not decision.allowed:
            return RateDecision(
                False,
                decision.limit,
                decision.remaining,
                decision.reset_epoch_s,
                max(1, decision.retry_after_s),
                "local",
            )
        return decision
