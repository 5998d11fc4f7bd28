"""The read side's connections: the stores every ingress process has, and the one ClickHouse client.

With the embedded ClickHouse (chdb) this process is the only one on the machine that opens it; the audit writer it
hosts shares the client (``ingress.audit.lifecycle``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from infra.clickhouse import build_clickhouse_client
from infra.redis_client import build_redis_client
from ingress.resources import Probe, Stores
from ingress.settings import IngressSettings


@dataclass(kw_only=True)
class AuditResources(Stores):
    clickhouse: Client | None = None

    @classmethod
    async def open(cls, settings: IngressSettings) -> AuditResources:
        resources = cls(
            settings=settings,
            redis=build_redis_client(settings.redis_url, timeout=settings.rate_limit_redis_timeout_s),
        )
        await asyncio.gather(resources.postgres(), return_exceptions=True)
        return resources

    async def clickhouse_client(self) -> Client:
        if self.clickhouse is None:
            self.clickhouse = await asyncio.to_thread(
                build_clickhouse_client, self.settings.clickhouse_dsn, database=self.settings.clickhouse_database
            )
        return self.clickhouse

    def probes(self) -> dict[str, Probe]:
        async def clickhouse() -> None:
            client = await self.clickhouse_client()
            await asyncio.to_thread(client.command, "SELECT 1")

        return {**super().probes(), "clickhouse": clickhouse}
