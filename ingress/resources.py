"""The connections one ingress process holds, opened at start-up and closed at shutdown.

Opening tolerates a dependency that is down: the process still starts, ``/ready`` reports the component as down,
and the connection is retried by the next caller. Degrade, don't fall over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from clickhouse_connect.driver.client import Client
from faststream.kafka import KafkaBroker

from infra.clickhouse import build_clickhouse_client
from infra.kafka import build_kafka_broker
from infra.kafka_topics import ensure_project_topics
from infra.postgres import build_postgres_pool
from infra.redis_client import build_redis_client
from ingress.settings import IngressSettings

log = logging.getLogger("ingress.resources")


@dataclass
class Resources:
    settings: IngressSettings
    redis: aioredis.Redis
    broker: KafkaBroker
    pool: asyncpg.Pool | None = None
    clickhouse: Client | None = None
    broker_connected: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
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
                except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                    log.warning("PostgreSQL unavailable: %s", type(exc).__name__)
                    raise
        return self.pool

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

    async def clickhouse_client(self) -> Client:
        if self.clickhouse is None:
            self.clickhouse = await asyncio.to_thread(
                build_clickhouse_client,
                self.settings.clickhouse_dsn,
                database=self.settings.clickhouse_database,
            )
        return self.clickhouse

    async def close(self) -> None:
        results: list[Any] = []
        if self.broker_connected:
            results.append(self.broker.stop())
        if self.pool is not None:
            results.append(self.pool.close())
        results.append(self.redis.aclose())
        await asyncio.gather(*results, return_exceptions=True)
