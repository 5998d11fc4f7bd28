"""SQL for the analytics API, built from validated filters: values are always bound parameters (``{name:Type}``);
the only text spliced in is the database name from settings and identifiers chosen from fixed tables here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from infra.decisions_table import HISTORY_COLUMNS, ch_time
from ingress.audit.filters import Cursor, DecisionFilters

# Columns of a history row, in SELECT order (the table describes them once).
LOG_COLUMNS = HISTORY_COLUMNS


def logs_query(
    database: str, filters: DecisionFilters, *, customer_id: UUID | None, after: Cursor | None
) -> tuple[str, dict[str, Any]]:
    """Newest first; one row more than the page, to know whether another page follows.

    ``FINAL`` collapses any row stored twice (the last dedup layer), so pages count each decision once.
    """
    where: list[str] = []
    params: dict[str, Any] = {"page": filters.limit + 1}
    if customer_id is not None:
        where.append("customer_id = {customer_id:UUID}")
        params["customer_id"] = customer_id
    if filters.from_ is not None:
        where.append("decided_at >= {from_time:DateTime64(3, 'UTC')}")
        params["from_time"] = ch_time(filters.from_)
    if filters.to is not None:
        where.append("decided_at < {to_time:DateTime64(3, 'UTC')}")
        params["to_time"] = ch_time(filters.to)
    if filters.decision is not None:
        where.append("allowed = {allowed:Bool}")
        params["allowed"] = filters.decision == "allow"
    if filters.min_risk is not None:
        where.append("risk_score >= {min_risk:UInt8}")
        params["min_risk"] = filters.min_risk
    if filters.request_id is not None:
        where.append("request_id = {request_id:String}")
        params["request_id"] = filters.request_id
    if after is not None:
        where.append("(decided_at, event_id) < ({after_time:DateTime64(3, 'UTC')}, {after_id:UUID})")
        params["after_time"] = ch_time(after.decided_at)
        params["after_id"] = after.event_id
    sql = (
        f"SELECT {', '.join(LOG_COLUMNS)} FROM {database}.decisions FINAL"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + " ORDER BY decided_at DESC, event_id DESC LIMIT {page:UInt32}"
    )
    return sql, params


Interval = Literal["minute", "hour", "day"]


@dataclass(frozen=True)
class Rollup:
    table: str
    bucket: str  # SQL for the bucket of a rollup row at this interval
    step: timedelta


ROLLUPS: dict[str, Rollup] = {
    "minute": Rollup("decisions_per_minute", "bucket", timedelta(minutes=1)),
    "hour": Rollup("decisions_per_hour", "bucket", timedelta(hours=1)),
    "day": Rollup("decisions_per_hour", "toStartOfDay(bucket, 'UTC')", timedelta(days=1)),
}

# At most this many points in a series (a week of minutes).
MAX_BUCKETS = 10_080


def align(moment: datetime, step: timedelta, *, up: bool = False) -> datetime:
    """Floor (or ceil) ``moment`` to a bucket boundary (UTC; days start at midnight)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    steps, rest = divmod(moment.astimezone(UTC) - epoch, step)
    if up and rest:
        steps += 1
    return epoch + steps * step


def shadow_disagreement_query(
    database: str, *, customer_id: UUID | None, start: datetime, end: datetime
) -> tuple[str, dict[str, Any]]:
    """Per shadow policy: decisions it was evaluated on, and how often its would-be decision differed from the
    live one. Read from the decisions table (deduplicated), since the rollups do not keep per-policy outcomes."""
    where = ["decided_at >= {start:DateTime64(3, 'UTC')}", "decided_at < {end:DateTime64(3, 'UTC')}"]
    params: dict[str, Any] = {
        "start": start.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "end": end.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
    }
    if customer_id is not None:
        where.append("customer_id = {customer_id:UUID}")
        params["customer_id"] = customer_id
    sql = (
        "SELECT policy_id, count() AS evaluated,"
        " countIf(has(shadow_blocked_by, policy_id) AND allowed) AS would_block,"
        " countIf(NOT has(shadow_blocked_by, policy_id) AND NOT allowed) AS would_allow"
        f" FROM {database}.decisions FINAL"
        " ARRAY JOIN arrayFilter((id, mode) -> mode = 'shadow', policy_ids, policy_modes) AS policy_id"
        f" WHERE {' AND '.join(where)} GROUP BY policy_id ORDER BY policy_id"
    )
    return sql, params


@dataclass(frozen=True)
class SummaryQueries:
    totals: str
    series: str
    params: dict[str, Any]


def summary_queries(
    database: str, *, customer_id: UUID | None, start: datetime, end: datetime, interval: Interval
) -> SummaryQueries:
    """Totals and a series from the rollup views; ``start``/``end`` must be aligned to the interval."""
    rollup = ROLLUPS[interval]
    where = ["bucket >= {start:DateTime('UTC')}", "bucket < {end:DateTime('UTC')}"]
    params: dict[str, Any] = {
        "start": start.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "end": end.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
    }
    if customer_id is not None:
        where.append("customer_id = {customer_id:UUID}")
        params["customer_id"] = customer_id
    condition = " AND ".join(where)
    measures = (
        "sum(decisions), sum(allowed), sum(blocked), sum(risk_sum), "
        "quantilesMerge(0.5, 0.95, 0.99)(risk_quantiles), sum(latency_ms_sum), sum(with_personal_data)"
    )
    totals = (
        f"SELECT {measures}, sumMap(reasons), sumMap(violated_rules) FROM {database}.{rollup.table} WHERE {condition}"
    )
    series = (
        f"SELECT {rollup.bucket} AS point, {measures}"
        f" FROM {database}.{rollup.table} WHERE {condition} GROUP BY point ORDER BY point"
    )
    return SummaryQueries(totals, series, params)
