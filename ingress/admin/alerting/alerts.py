"""Alerts as stored by the alerting consumer: list with filters, show one with its events. Read-only."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from ingress.admin.paging import Listing
from ingress.admin.tenancy.errors import NotFound
from schemas.admin import Page
from schemas.alerting import Alert, AlertDetail, AlertEventRecord, AlertStatus, RuleKind

_COLUMNS = (
    "id, rule, customer_id, subject, status, severity, summary, value, threshold, params, sequence, opened_at,"
    " last_notified_at, resolved_at"
)
_LISTING = Listing(Page[Alert], lambda r: Alert(**dict(r)), _COLUMNS, "opened_at DESC, id")


async def list_alerts(
    pool: asyncpg.Pool,
    *,
    customer_id: UUID | None = None,
    subject: str | None = None,
    status: AlertStatus | None = None,
    rule: RuleKind | None = None,
    since: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page[Alert]:
    """Newest first. ``since``: alerts that were open at any moment since then (still open, or resolved after)."""
    where = (
        "($1::uuid IS NULL OR customer_id = $1) AND ($2::text IS NULL OR subject = $2)"
        " AND ($3::text IS NULL OR status = $3) AND ($4::text IS NULL OR rule = $4)"
        " AND ($5::timestamptz IS NULL OR status = 'open' OR resolved_at >= $5)"
    )
    args = (customer_id, subject, status, rule, since)
    return await _LISTING.fetch(pool, f"FROM alerts WHERE {where}", args, limit, offset)


async def get_alert(pool: asyncpg.Pool, alert_id: UUID) -> AlertDetail:
    row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM alerts WHERE id = $1", alert_id)
    if row is None:
        raise NotFound("alert")
    events = await pool.fetch(
        "SELECT event_id, transition, sequence, created_at, published_at FROM alert_events"
        " WHERE alert_id = $1 ORDER BY sequence",
        alert_id,
    )
    return AlertDetail(**dict(row), events=[AlertEventRecord(**dict(e)) for e in events])
