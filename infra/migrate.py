"""Numbered migrations for PostgreSQL and ClickHouse, applied in order at start and by ``govern db migrate``.

Files live in ``infra/migrations/{postgres,clickhouse}/NNNN_reason.sql``; the first line of each is a comment
giving its reason. Applied versions are recorded in a ``schema_migrations`` table on each side. PostgreSQL
migrations run one transaction each under an advisory lock, so concurrent starts apply each file once.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from clickhouse_connect.driver.client import Client

from infra.clickhouse import build_clickhouse_client
from infra.settings import CommonSettings

log = logging.getLogger("infra.migrate")

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_ID = 727_100_001  # advisory lock key for migrations


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(kind: str) -> list[Migration]:
    found = []
    for path in sorted((MIGRATIONS / kind).glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file {path.name} is not named NNNN_reason.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate {kind} migration numbers: {versions}")
    return found


def split_statements(sql: str) -> list[str]:
    """Split on ``;`` at line ends (ClickHouse takes one statement per call)."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [stmt.strip() for stmt in re.split(r";\s*(?:\n|$)", "\n".join(lines)) if stmt.strip()]


async def migrate_postgres(dsn: str) -> list[int]:
    conn = await asyncpg.connect(dsn, timeout=10)
    applied_now: list[int] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for migration in load_migrations("postgres"):
            if migration.version in applied:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            applied_now.append(migration.version)
            log.info("postgres migration %04d_%s applied", migration.version, migration.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)
        await conn.close()
    return applied_now


def migrate_clickhouse(client: Client, database: str) -> list[int]:
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations"
        " (version UInt32, name String, applied_at DateTime DEFAULT now()) ENGINE = MergeTree ORDER BY version"
    )
    applied = {row[0] for row in client.query(f"SELECT version FROM {database}.schema_migrations").result_rows}
    applied_now = []
    for migration in load_migrations("clickhouse"):
        if migration.version in applied:
            continue
        for statement in split_statements(migration.sql.replace("{db}", database)):
            client.command(statement)
        client.insert(
            f"{database}.schema_migrations",
            [[migration.version, migration.name]],
            column_names=["version", "name"],
        )
        applied_now.append(migration.version)
        log.info("clickhouse migration %04d_%s applied", migration.version, migration.name)
    return applied_now


async def migrate_all(settings: CommonSettings, *, clickhouse: bool = True) -> None:
    await migrate_postgres(settings.database_url)
    if clickhouse:
        client = build_clickhouse_client(settings.clickhouse_dsn, database=settings.clickhouse_database)
        migrate_clickhouse(client, settings.clickhouse_database)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = CommonSettings()
    # The embedded ClickHouse belongs to the process that serves it; that process migrates it at start.
    asyncio.run(migrate_all(settings, clickhouse=not settings.clickhouse_embedded))
    print("migrations applied")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
