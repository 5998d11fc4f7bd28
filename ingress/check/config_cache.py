"""Per-customer configuration cached in each process: tier, rate-limit override and live policies.

Loaded from PostgreSQL on first use; dropped when PostgreSQL announces a change to the customer or one of its
policies (LISTEN/NOTIFY, ``ingress.changes``), so an admin change applies within milliseconds; refreshed after
``ttl_s`` as a safety net. While PostgreSQL is unreachable a cached entry keeps serving past its TTL (degraded);
a customer never loaded answers 503. A customer that no longer exists (deleted, or never created) raises
``CustomerGone`` and is never cached: its keys are refused, not served as a free tier without policies.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from infra.postgres import STORE_ERRORS
from ingress.check.ratelimit import Limit
from ingress.engine import PolicySnapshot
from ingress.engine.policy_set import PolicySet
from schemas.policy_rules import PolicyRules

log = logging.getLogger("ingress.check.config_cache")

_CUSTOMER = """
SELECT name, tier, rate_limit_capacity, rate_limit_window_s FROM customers WHERE id = $1 AND deleted_at IS NULL
"""
_POLICIES = """
SELECT id, version, name, rules, mode FROM policies
WHERE customer_id = $1 AND active AND deleted_at IS NULL
ORDER BY created_at, id
"""


class ConfigUnavailable(Exception):
    """The customer's configuration is not cached and PostgreSQL cannot be read."""


class CustomerGone(Exception):
    """PostgreSQL has no live customer of this id: it was deleted (or never existed)."""


@dataclass(frozen=True)
class CustomerConfig:
    customer_id: UUID
    name: str
    tier: str
    limit: Limit
    policies: tuple[PolicySnapshot, ...]
    loaded_at: float

    @property
    def has_budgets(self) -> bool:
        return any(p.mode == "enforce" and p.rules.session_budgets for p in self.policies)


class CustomerConfigCache:
    def __init__(
        self,
        get_pool: Callable[[], Awaitable[asyncpg.Pool]],
        tier_limits: dict[str, Limit],
        *,
        ttl_s: float = 30.0,
        refresh_wait_s: float = 0.25,
        retry_s: float = 2.0,
        load_timeout_s: float = 3.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._get_pool = get_pool
        self._tier_limits = tier_limits
        self._ttl = ttl_s
        self._refresh_wait = refresh_wait_s
        self._retry = retry_s
        self._load_timeout = load_timeout_s
        self._mono = monotonic
        self._retry_at: dict[UUID, float] = {}  # after a failed refresh, serve the cached copy until then
        self._entries: dict[UUID, CustomerConfig] = {}
        self._generation = 0  # bumped by every invalidation, so a load that raced one is not cached
        self._loading: dict[UUID, asyncio.Task[CustomerConfig]] = {}
        self.stale_served = 0

    def invalidate(self, customer_id: UUID | None = None) -> None:
        self._generation += 1
        if customer_id is None:
            self._entries.clear()
        else:
            self._entries.pop(customer_id, None)

    def on_change(self, payload: dict[str, Any] | None) -> None:
        if payload is None:
            self.invalidate()
            return
        if payload.get("table") in {"policies", "customers"} and payload.get("customer_id"):
            try:
                self.invalidate(UUID(payload["customer_id"]))
            except ValueError:
                self.invalidate()

    async def get(self, customer_id: UUID) -> CustomerConfig:
        entry = self._entries.get(customer_id)
        if entry is not None and self._mono() - entry.loaded_at < self._ttl:
            return entry
        if entry is not None and self._mono() < self._retry_at.get(customer_id, 0.0):
            # A refresh failed a moment ago: answer from the cached copy instead of making each request wait
            # on PostgreSQL again (degraded, not slow).
            self.stale_served += 1
            return entry
        task = self._loading.get(customer_id)
        if task is None:
            task = asyncio.ensure_future(self._load(customer_id))
            self._loading[customer_id] = task
            task.add_done_callback(lambda t: self._loaded(customer_id, t))
        try:
            if entry is None:
                return await asyncio.shield(task)
            # A refresh of a cached copy: wait briefly, then serve the copy while the refresh goes on.
            async with asyncio.timeout(self._refresh_wait):
                return await asyncio.shield(task)
        except STORE_ERRORS as exc:
            if entry is not None:
                self._retry_at[customer_id] = self._mono() + self._retry
                self.stale_served += 1
                return entry
            raise ConfigUnavailable("customer configuration unavailable") from exc

    def _loaded(self, customer_id: UUID, task: asyncio.Task[CustomerConfig]) -> None:
        self._loading.pop(customer_id, None)
        if not task.cancelled() and task.exception() is None:  # retrieved: no one may be waiting any more
            self._retry_at.pop(customer_id, None)

    async def _load(self, customer_id: UUID) -> CustomerConfig:
        generation = self._generation
        # One deadline over connect, queries and the connection's release (which waits for a cancelled query's
        # cancellation to reach a server that may not answer).
        async with asyncio.timeout(self._load_timeout):
            pool = await self._get_pool()
            async with pool.acquire(timeout=2) as conn:
                customer = await conn.fetchrow(_CUSTOMER, customer_id, timeout=2)
                rows = await conn.fetch(_POLICIES, customer_id, timeout=2) if customer is not None else []
        if customer is None:
            self._entries.pop(customer_id, None)  # a copy cached before the deletion must not serve either
            raise CustomerGone(str(customer_id))
        tier = customer["tier"]
        default = self._tier_limits.get(tier, self._tier_limits["free"])
        limit = default
        if customer["rate_limit_capacity"] and customer["rate_limit_window_s"]:
            limit = Limit(customer["rate_limit_capacity"], customer["rate_limit_window_s"])
        # Indexed once here, not per decision (ingress.engine.policy_set).
        policies = PolicySet(
            PolicySnapshot(
                policy_id=str(row["id"]),
                version=row["version"],
                name=row["name"],
                rules=PolicyRules.model_validate(row["rules"]),
                mode=row["mode"],
            )
            for row in rows
        )
        name = customer["name"]
        config = CustomerConfig(customer_id, name, tier, limit, policies, self._mono())
        if generation == self._generation:
            self._entries[customer_id] = config
        return config
