"""Token-bucket rate limiting per API key: one atomic Lua script in Redis on Redis's clock, with an in-memory
fallback per process behind a circuit breaker.

A bucket holds ``capacity`` tokens and refills continuously at ``capacity / window`` per second. Each check takes
one token. A Redis call that errors or is slower than ``timeout_s`` is decided by this process's in-memory bucket
for that key, which continues from the last state Redis reported for it (so one slow call under load does not
hand out a fresh bucket). After ``failure_threshold`` such failures in a row the breaker opens for ``open_s``
seconds and every check is limited in memory (a fleet of N processes may then let through up to N times the
limit while Redis is away); then one request probes Redis again and, if it answers, the breaker closes.

With a ``LeasePolicy``, a bucket large enough takes tokens a lease at a time (``ingress.check.leases``): a key's
checks in this process are decided from the lease in memory, and concurrent checks of one key share one script call.
Failures of that call trip the same breaker and are decided by the same in-memory buckets.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ingress.check.bucket_script import BUCKET_LOAD, BUCKET_STORE
from ingress.check.leases import LEASE_SCRIPT, Grant, LeaseBook, LeasePolicy
from ingress.check.rate_decision import Limit, RateDecision

__all__ = ["BUCKET_SCRIPT", "Limit", "LocalBuckets", "RateDecision", "RateLimiter"]

log = logging.getLogger("ingress.check.ratelimit")

BUCKET_SCRIPT = (
    """
local cost = tonumber(ARGV[3])
local extra = 0
"""
    + BUCKET_LOAD
    + """
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
"""
    + BUCKET_STORE
    + """
local retry_ms = 0
if allowed == 0 then
  retry_ms = math.ceil((cost - tokens) / rate)
end
local full_ms = math.ceil((capacity - tokens) / rate)
return {allowed, math.floor(tokens), retry_ms, full_ms, now}
"""
)


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
    """``take`` one token of a key's bucket. Without ``leases`` (or for a limit too small for one) every call runs
    ``BUCKET_SCRIPT``; with them, a key's checks are decided from this process's lease of its bucket."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        timeout_s: float = 0.25,
        open_s: float = 2.0,
        failure_threshold: int = 3,
        prefix: str = "rl:",
        monotonic: Callable[[], float] = time.monotonic,
        leases: LeasePolicy | None = None,
    ) -> None:
        self._redis = redis
        self._script = redis.register_script(BUCKET_SCRIPT)
        self._lease_script = redis.register_script(LEASE_SCRIPT)
        self._timeout = timeout_s
        self._open_s = open_s
        self._prefix = prefix
        self._mono = monotonic
        self._open_until = 0.0
        self._probing = False
        self._threshold = failure_threshold
        self._consecutive_failures = 0
        self.local = LocalBuckets()
        self.leases = LeaseBook(leases or LeasePolicy(fraction=0.0), clock=monotonic)
        # Checks waiting for a key's next script call, and the tasks making those calls (held: the loop keeps
        # only weak references to tasks).
        self._waiting: dict[str, list[asyncio.Future[RateDecision]]] = {}
        self._flights: set[asyncio.Task[None]] = set()
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
        if cost == 1 and self.leases.policy.size(limit):
            return await self._take_leased(key_id, limit)
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
        return self._local_take(key_id, limit, cost)

    def _local_take(self, key_id: str, limit: Limit, cost: int = 1) -> RateDecision:
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

    async def _take_leased(self, key_id: str, limit: Limit) -> RateDecision:
        decision = self.leases.take(key_id)
        if decision is not None:
            return decision  # no I/O: the common case of a hot key
        waiting = self._waiting.get(key_id)
        if waiting is None:
            if not self._use_redis():
                return self._local_take(key_id, limit)
            waiting = self._waiting[key_id] = []
            flight = asyncio.create_task(self._fly(key_id, limit, waiting), name="rate-limit-lease")
            self._flights.add(flight)
            flight.add_done_callback(self._flights.discard)
        waiter: asyncio.Future[RateDecision] = asyncio.get_running_loop().create_future()
        waiting.append(waiter)
        return await waiter

    async def _fly(self, key_id: str, limit: Limit, waiting: list[asyncio.Future[RateDecision]]) -> None:
        """Script calls for ``key_id`` until no check of it waits: each asks for as many tokens as checks wait
        (those that came during a call are first served from the lease it brought)."""
        batch: list[asyncio.Future[RateDecision]] = []
        try:
            first = True
            while True:
                waiting[:] = [waiter for waiter in waiting if not waiter.done()]  # cancelled checks take nothing
                while waiting and (decision := self.leases.take(key_id)) is not None:
                    waiting.pop(0).set_result(decision)
                if not waiting:
                    return
                if not first and not self._use_redis():  # the breaker opened during this flight
                    batch, waiting[:] = list(waiting), []
                    self._decide_locally(key_id, limit, batch)
                    return
                first = False
                batch = waiting[: limit.capacity]
                del waiting[: len(batch)]
                await self._lease_call(key_id, limit, batch)
        except BaseException as exc:
            for waiter in (*batch, *waiting):
                if waiter.done():
                    continue
                if isinstance(exc, asyncio.CancelledError):
                    waiter.cancel()
                else:
                    waiter.set_exception(exc)
            raise
        finally:
            del self._waiting[key_id]

    async def _lease_call(self, key_id: str, limit: Limit, batch: list[asyncio.Future[RateDecision]]) -> None:
        args = self.leases.policy.script_args(limit, len(batch), self.leases.settle(key_id))
        try:
            async with asyncio.timeout(self._timeout):
                reply = await self._lease_script(keys=[self._prefix + key_id], args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            self._trip(exc)  # the given-back tokens are lost: that only ever refuses more
            self._decide_locally(key_id, limit, batch)
            return
        self._close()
        grant = Grant.from_reply(reply)
        self.local.observe(key_id, grant.bucket_left)  # a fallback continues from the bucket; the lease goes first
        live = [waiter for waiter in batch if not waiter.done()]  # a cancelled check leaves its token in the lease
        for waiter, decision in zip(live, self.leases.grant(key_id, limit, grant, len(live)), strict=True):
            waiter.set_result(decision)

    def _decide_locally(self, key_id: str, limit: Limit, batch: list[asyncio.Future[RateDecision]]) -> None:
        for waiter in batch:
            if not waiter.done():
                waiter.set_result(self._local_take(key_id, limit))
