"""The connections an ingress process holds, opened at start-up and closed at shutdown.

``Stores`` (PostgreSQL and Redis) is what every HTTP process of the role needs; ``Resources`` adds the Kafka
producer of the check path. The read side adds its ClickHouse client (``ingress.audit.resources``): the check
path holds none.

Opening tolerates a dependency that is down: the process still starts, ``/ready`` reports the component as down,
and the connection is retried by the next caller. Degrade, don't fall over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from faststream.kafka import KafkaBroker

from infra.kafka import build_kafka_broker
from infra.kafka_topics import ensure_project_topics
from infra.postgres import STORE_ERRORS, build_postgres_pool
from infra.redis_client import build_redis_client
from ingress.settings import IngressSettings

log = logging.getLogger("ingress.resources")


Probe = Callable[[], Awaitable[Any]]


@dataclass
class Stores:
    """PostgreSQL (opened on first use) and Redis."""

    settings: IngressSettings
    redis: aioredis.Redis
    pool: asyncpg.Pool | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def postgres(self) -> asyncpg.Pool:
        """The pool, opened on first use (and again after a failed open)."""
        if self.pool is not None:
            return self.pool
        async with self._lock:
            if self.pool is None:
                try:
                    self.pool = await build_postgres_pool(
                        self.settings.database_url,
                        min_size=self.settings.database_pool_min,
                        max_size=self.settings.database_pool_max,
                    )
                except STORE_ERRORS as exc:
                    log.warning("PostgreSQL unavailable: %s", type(exc).__name__)
                    raise
        return self.pool

    def probes(self) -> dict[str, Probe]:
        """What ``/ready`` checks, by component name."""

        async def postgres() -> None:
            pool = await self.postgres()
            await pool.fetchval("SELECT 1")

        async def redis() -> None:
            await self.redis.ping()

        return {"postgres": postgres, "redis": redis}

    async def close(self) -> None:
        results: list[Any] = []
        if self.pool is not None:
            results.append(self.pool.close())
        results.append(self.redis.aclose())
        await asyncio.gather(*results, return_exceptions=True)


@dataclass(kw_only=True)
class Resources(Stores):
    """The check path's connections: the stores and the Kafka producer (never a ClickHouse client)."""

    broker: KafkaBroker
    broker_connected: bool = False
    _broker_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    async def open(cls, settings: IngressSettings) -> Resources:
        resources = cls(
            settings=settings,
            redis=build_redis_client(settings.redis_url, timeout=settings.rate_limit_redis_timeout_s),
            broker=build_kafka_broker(settings.kafka_bootstrap_servers, client_id="governance-ingress"),
        )
        await asyncio.gather(resources.postgres(), resources.connect_broker(), return_exceptions=True)
        return resources

    async def connect_broker(self) -> KafkaBroker:
        if not self.broker_connected:
            async with self._broker_lock:
                if not self.broker_connected:
                    try:
                        # the topics first: never auto-created with the broker's default partitions
                        await ensure_project_topics(self.settings, timeout_s=5)
                        await asyncio.wait_for(self.broker.start(), timeout=10)
                    except Exception as exc:
                        log.warning("Kafka unavailable: %s", type(exc).__name__)
                        # a broker whose start failed is not restarted: the next attempt gets a fresh one
                        with contextlib.suppress(Exception):
                            await self.broker.stop()
                        self.broker = build_kafka_broker(
                            self.settings.kafka_bootstrap_servers, client_id="governance-ingress"
                        )
                        raise
                    self.broker_connected = True
        return self.broker

    async def keep_broker_connected(self, interval_s: float = 2.0) -> None:
        """Background task: (re)connect the producer while Kafka was unreachable at start."""
        while not self.broker_connected:
            with contextlib.suppress(Exception):
                await self.connect_broker()
            if not self.broker_connected:
                await asyncio.sleep(interval_s)

    def probes(self) -> dict[str, Probe]:
        async def kafka() -> None:
            broker = await self.connect_broker()
            if not await broker.ping(timeout=self.settings.ready_timeout_s):
                raise ConnectionError("broker did not answer")

        return {**super().probes(), "kafka": kafka}

    async def close(self) -> None:
        if self.broker_connected:
            with contextlib.suppress(Exception):
                await self.broker.stop()
        await super().close()
