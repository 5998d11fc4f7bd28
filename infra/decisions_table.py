"""ClickHouse access for the audit pipeline: the decisions table, its schema and retention, one lock per client.

The embedded engine (chdb) is one per process and not safe to call from two threads at once, and an HTTP client
shares one session; so every call on a client takes that client's lock, and runs in a worker thread so the event
loop keeps serving. Readers (``ingress.audit``) use :func:`run_locked` with the same client and lock.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from infra.migrate import migrate_clickhouse

# The columns of ``decisions`` the audit writer fills, in insert order (``ingested_at`` takes its default); the
# table itself is ``infra/migrations/clickhouse``. Every reader names its columns from here.
COLUMNS: tuple[str, ...] = (
    "event_id",
    "schema_version",
    "request_id",
    "customer_id",
    "key_id",
    "decided_at",
    "allowed",
    "decision",
    "risk_score",
    "threshold",
    "reason",
    "factor_names",
    "factor_points",
    "violated_rules",
    "violation_policies",
    "policy_ids",
    "policy_versions",
    "policy_modes",
    "pii_categories",
    "pii_paths",
    "operation_count",
    "operation_types",
    "models",
    "providers",
    "total_tokens",
    "external_calls",
    "unknown_operations",
    "shadow_blocked_by",
    "latency_ms",
    "event",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
)


# What the decision history reads of a row, in table order: every column but the writer's own bookkeeping (the
# schema version, the flattened lists the rollups and filters use, where in Kafka the record came from). ``event``
# (the whole DecisionEvent) supplies the nested parts of an item.
_NOT_IN_HISTORY = frozenset(
    {
        "schema_version",
        "factor_names",
        "factor_points",
        "violated_rules",
        "violation_policies",
        "policy_ids",
        "policy_versions",
        "policy_modes",
        "unknown_operations",
        "shadow_blocked_by",
        "kafka_topic",
        "kafka_partition",
        "kafka_offset",
    }
)
HISTORY_COLUMNS: tuple[str, ...] = tuple(name for name in COLUMNS if name not in _NOT_IN_HISTORY)


T = TypeVar("T")

# Errors worth retrying: the server or the engine refused or was unreachable. Anything else is a bug: crash.
RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (ClickHouseError, OSError, TimeoutError)

_guard = threading.Lock()
_locks: dict[int, tuple[Client, threading.RLock]] = {}


def clickhouse_lock(client: Client) -> threading.RLock:
    """The lock serialising every call on ``client`` in this process."""
    with _guard:
        entry = _locks.get(id(client))
        if entry is None or entry[0] is not client:
            entry = (client, threading.RLock())
            _locks[id(client)] = entry
        return entry[1]


async def run_locked(client: Client, call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run ``call(*args, **kwargs)`` in a worker thread while holding ``client``'s lock."""
    lock = clickhouse_lock(client)

    def locked() -> T:
        with lock:
            return call(*args, **kwargs)

    return await asyncio.to_thread(locked)


def ch_time(moment: datetime) -> str:
    """A DateTime64(3, 'UTC') literal for a query parameter, independent of the host's time zone."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


# Each table's TTL expression; the interval comes from AUDIT_RETENTION_DAYS.
RETENTION_EXPRESSIONS = {
    "decisions": "toDateTime(decided_at)",
    "decisions_per_minute": "bucket",
    "decisions_per_hour": "bucket",
}


class DecisionStore:
    """The ``decisions`` table and its rollups, as the writer sees them."""

    def __init__(self, client: Client, database: str) -> None:
        self.client = client
        self.database = database

    # -- schema ------------------------------------------------------------------------------------------------

    def prepare_sync(self, retention_days: int) -> list[int]:
        """Apply pending migrations, then the retention; returns the migration versions applied now."""
        with clickhouse_lock(self.client):
            applied = migrate_clickhouse(self.client, self.database)
            self.apply_retention_sync(retention_days)
        return applied

    async def prepare(self, retention_days: int) -> list[int]:
        return await asyncio.to_thread(self.prepare_sync, retention_days)

    def apply_retention_sync(self, days: int) -> list[str]:
        """``ALTER TABLE … MODIFY TTL`` where the current TTL differs; returns the tables changed.

        Skipping unchanged tables matters: modifying a TTL rewrites every part to apply it.
        """
        changed = []
        with clickhouse_lock(self.client):
            for table, expression in RETENTION_EXPRESSIONS.items():
                rows = self.client.query(
                    "SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = {table:String}",
                    parameters={"db": self.database, "table": table},
                ).result_rows
                if not rows:
                    continue
                if f"TTL {expression} + toIntervalDay({int(days)})" in str(rows[0][0]):
                    continue
                self.client.command(
                    f"ALTER TABLE {self.database}.{table} MODIFY TTL {expression} + INTERVAL {int(days)} DAY"
                )
                changed.append(table)
        return changed

    # -- writes ------------------------------------------------------------------------------------------------

    def insert_sync(self, rows: Sequence[Sequence[Any]], token: str) -> None:
        """One insert for the whole batch; ``token`` makes a repeat of the same batch a no-op (views included)."""
        with clickhouse_lock(self.client):
            self.client.insert(
                f"{self.database}.decisions",
                list(rows),
                column_names=list(COLUMNS),
                settings={
                    "insert_deduplication_token": token,
                    "deduplicate_blocks_in_dependent_materialized_views": 1,
                },
            )

    async def insert(self, rows: Sequence[Sequence[Any]], token: str) -> None:
        await asyncio.to_thread(self.insert_sync, rows, token)

    def existing_event_ids_sync(self, keys: Sequence[tuple[UUID, UUID, datetime]]) -> set[UUID]:
        """Which of these (event_id, customer_id, decided_at) are stored already.

        Reads by the primary key (customer, time range), so it touches a few granules per batch. This is what keeps
        a batch redelivered with *different* boundaries (after a crash or rebalance) from counting twice in the
        rollups, which the per-batch token alone cannot see.
        """
        if not keys:
            return set()
        times = [k[2] for k in keys]
        result = run_query(
            self.client,
            f"SELECT DISTINCT event_id FROM {self.database}.decisions"
            " WHERE customer_id IN {customers:Array(UUID)}"
            " AND decided_at >= {low:DateTime64(3, 'UTC')} AND decided_at <= {high:DateTime64(3, 'UTC')}"
            " AND event_id IN {ids:Array(UUID)}",
            {
                "customers": sorted({k[1] for k in keys}),
                "low": ch_time(min(times) - timedelta(seconds=1)),
                "high": ch_time(max(times) + timedelta(seconds=1)),
                "ids": [k[0] for k in keys],
            },
        )
        return {row[0] if isinstance(row[0], UUID) else UUID(str(row[0])) for row in result}

    async def existing_event_ids(self, keys: Sequence[tuple[UUID, UUID, datetime]]) -> set[UUID]:
        return await asyncio.to_thread(self.existing_event_ids_sync, keys)


def run_query(client: Client, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """A parameterised query under the client's lock; rows as tuples."""
    with clickhouse_lock(client):
        return [tuple(row) for row in client.query(sql, parameters=parameters or {}).result_rows]
