"""Metrics read from the stores on a timer, not counted on the request path: the age of each customer's oldest
and newest usable key and the keys rotated so far (PostgreSQL), and the memory Redis uses.

Counting rotations where they happen would miss every rotation another process (or the CLI) made; the table is
the truth, so it is read, once a minute by default, by every ingress process (the gauges take the largest value in
multiprocess mode, never the sum). A store that does not answer leaves the last values in place.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg
import redis.asyncio as aioredis

from ingress.http import metrics

log = logging.getLogger("ingress.store_metrics")

# A store that did not answer (a busy start, a Redis call over its short timeout) is asked again this soon.
_RETRY_S = 5.0

# A usable key: not revoked, not switched off, not past its expiry (a rotated key in its grace period still works).
_KEYS = """
SELECT c.name,
       count(k.rotated_at) AS rotations,
       extract(epoch FROM now() - min(k.created_at) FILTER (WHERE k.active AND k.revoked_at IS NULL
                                                         AND (k.expires_at IS NULL OR k.expires_at > now())))
           AS oldest_s,
       extract(epoch FROM now() - max(k.created_at) FILTER (WHERE k.active AND k.revoked_at IS NULL
                                                         AND (k.expires_at IS NULL OR k.expires_at > now())))
           AS newest_s
FROM customers c JOIN api_keys k ON k.customer_id = c.id
WHERE c.deleted_at IS NULL
GROUP BY c.name
"""


async def sample_keys(pool: asyncpg.Pool) -> int:
    """Set the key gauges from PostgreSQL; returns how many customers were seen."""
    rows = await pool.fetch(_KEYS)
    for row in rows:
        metrics.KEY_ROTATIONS.labels(row["name"]).set(row["rotations"])
        if row["oldest_s"] is not None:
            metrics.KEY_AGE.labels(row["name"], "oldest").set(float(row["oldest_s"]))
            metrics.KEY_AGE.labels(row["name"], "newest").set(float(row["newest_s"]))
    return len(rows)


async def sample_redis(redis: aioredis.Redis) -> int:
    info = await redis.info("memory")
    used = int(info["used_memory"])
    metrics.REDIS_MEMORY.set(used)
    return used


class StoreMetricsSampler:
    """Run with ``start()`` and ``stop()`` in the ingress lifespan."""

    def __init__(
        self, pool: Callable[[], Awaitable[asyncpg.Pool]], redis: aioredis.Redis, *, interval_s: float = 60.0
    ) -> None:
        self._pool = pool
        self._redis = redis
        self._interval = interval_s
        self._task: asyncio.Task[None] | None = None

    async def sample(self) -> bool:
        """One round; False when a store did not answer (the round after comes sooner)."""
        complete = True
        try:
            await sample_redis(self._redis)
        except Exception as exc:  # noqa: BLE001 - /ready reports a store that is down; here it only waits
            log.debug("Redis memory not read: %s", type(exc).__name__)
            complete = False
        try:
            await sample_keys(await self._pool())
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.debug("key metrics not read: %s", type(exc).__name__)
            complete = False
        return complete

    async def _run(self) -> None:
        while True:
            complete = await self.sample()
            await asyncio.sleep(self._interval if complete else min(self._interval, _RETRY_S))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="store-metrics")

    async def stop(self) -> None:
        """Cancel the sampler, again until it has stopped: a cancellation that lands inside a store client's own
        timeout handling can be absorbed there, and the loop would sleep on."""
        if self._task is not None:
            while not self._task.done():
                self._task.cancel()
                await asyncio.wait([self._task], timeout=1.0)
            self._task = None
