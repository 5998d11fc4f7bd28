"""Session budgets, the counting part: reserve what a check would use in Redis, atomically, and refund it when
the check ends up blocked for another reason (a blocked operation does not run, so it uses nothing).

Windows are fixed and aligned to Redis's clock (``floor(now / window_s)``), so every process agrees on them. The
session or user id is hashed into the key; it is never stored. When Redis is unavailable the reservation is kept
in process memory (the same fallback as rate limiting: each process then counts alone).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ingress.engine import BudgetDemand
from schemas.decision_event import BudgetUsage

log = logging.getLogger("ingress.check.budgets")

# KEYS[1]: the budget's key prefix; ARGV: amount, limit, window_s. Returns {reserved, used, window_start}.
RESERVE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1])
local window_s = tonumber(ARGV[3])
local start = now - (now % window_s)
local key = KEYS[1] .. ':' .. start
local used = tonumber(redis.call('GET', key) or '0')
local amount = tonumber(ARGV[1])
if used + amount > tonumber(ARGV[2]) then
  return {0, used, start}
end
used = redis.call('INCRBY', key, amount)
redis.call('EXPIRE', key, window_s + 60)
return {1, used, start}
"""
REFUND_SCRIPT = """
local left = redis.call('DECRBY', KEYS[1], ARGV[1])
if left <= 0 then redis.call('DEL', KEYS[1]) end
return left
"""


def _scope_value(context: Mapping[str, Any], scope: str) -> str | None:
    value = context.get(scope)
    if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
        return str(value)
    return None


def _key(demand: BudgetDemand, scope_value: str) -> str:
    digest = hashlib.sha256(f"{demand.policy.policy_id}\x00{demand.budget.name}\x00{scope_value}".encode()).hexdigest()[
        :32
    ]
    return f"budget:{digest}"


class BudgetCounter:
    def __init__(self, redis: aioredis.Redis, *, timeout_s: float = 0.1) -> None:
        self._redis = redis
        self._reserve = redis.register_script(RESERVE_SCRIPT)
        self._refund = redis.register_script(REFUND_SCRIPT)
        self._timeout = timeout_s
        self._local: dict[str, int] = {}
        self.fallback_used = 0

    def _reserve_locally(self, key: str, amount: int, limit: int, window_s: int) -> tuple[int, int, int]:
        now = int(time.time())
        start = now - now % window_s
        slot = f"{key}:{start}"
        used = self._local.get(slot, 0)
        if used + amount > limit:
            return 0, used, start
        self._local[slot] = used + amount
        if len(self._local) > 100_000:
            self._local.clear()
        return 1, used + amount, start

    async def reserve(
        self, demands: Sequence[BudgetDemand], context: Mapping[str, Any]
    ) -> tuple[list[BudgetUsage], list[tuple[str, int]]]:
        """Usages for the engine, and the reservations to refund if the check is blocked after all."""
        usages: list[BudgetUsage] = []
        reserved: list[tuple[str, int]] = []
        for demand in demands:
            scope_value = _scope_value(context, demand.budget.scope)
            if scope_value is None:
                continue
            key = _key(demand, scope_value)
            budget = demand.budget
            try:
                async with asyncio.timeout(self._timeout):
                    ok, used, start = await self._reserve(
                        keys=[key], args=[demand.amount, budget.limit, budget.window_s]
                    )
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("session budgets counted in memory: Redis %s", type(exc).__name__)
                self.fallback_used += 1
                ok, used, start = self._reserve_locally(key, demand.amount, budget.limit, budget.window_s)
            if ok:
                reserved.append((f"{key}:{int(start)}", demand.amount))
            usages.append(
                BudgetUsage(
                    policy_id=demand.policy.policy_id,
                    policy_version=demand.policy.version,
                    budget=budget.name,
                    scope=budget.scope,
                    counts=budget.counts,
                    window_s=budget.window_s,
                    window_start=int(start),
                    requested=demand.amount,
                    used=int(used),
                    limit=budget.limit,
                    exceeded=not ok,
                )
            )
        return usages, reserved

    async def refund(self, reserved: Sequence[tuple[str, int]]) -> None:
        for slot, amount in reserved:
            try:
                async with asyncio.timeout(self._timeout):
                    await self._refund(keys=[slot], args=[amount])
            except (RedisError, OSError, TimeoutError):
                if slot in self._local:
                    self._local[slot] = max(0, self._local[slot] - amount)
