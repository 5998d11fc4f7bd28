"""The webhook delivery outbox in PostgreSQL: claim due deliveries, record each attempt and its outcome.

Claiming is one statement: due rows are locked with ``FOR UPDATE SKIP LOCKED`` (so workers never take the same
row), their attempt counter is raised and their ``next_attempt_at`` pushed past a lease. A worker that dies
mid-call leaves the row to be claimed again when the lease ends. A delivery waits while an earlier event of the
same alert to the same endpoint is still pending, so a receiver sees ``opened`` before ``resolved``.

Recording checks the attempt number it claimed: a worker whose lease ran out (and whose row was claimed again)
records its attempt but does not overwrite the newer owner's state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg

from schemas.alert_event import AlertEvent

Outcome = Literal["delivered", "retry", "failed"]

_CLAIM = """
WITH due AS (
    SELECT d.id
    FROM webhook_deliveries d
    JOIN webhooks w ON w.id = d.webhook_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND w.deleted_at IS NULL AND w.active
      AND NOT EXISTS (
          SELECT 1 FROM webhook_deliveries e
          WHERE e.webhook_id = d.webhook_id AND e.alert_id = d.alert_id
            AND e.sequence < d.sequence AND e.status = 'pending'
      )
    ORDER BY d.next_attempt_at
    LIMIT $1
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d
SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => $2), updated_at = now()
FROM due, webhooks w, alert_events ev
WHERE d.id = due.id AND w.id = d.webhook_id AND ev.event_id = d.event_id
RETURNING d.id, d.webhook_id, d.attempts, d.transition, w.url, w.secret, ev.payload
"""

_SETTLE = """
UPDATE webhook_deliveries
SET status = $3, last_status_code = $4, last_error = $5,
    next_attempt_at = CASE WHEN $3 = 'pending' THEN now() + make_interval(secs => $6) ELSE NULL END,
    delivered_at = CASE WHEN $3 = 'delivered' THEN now() ELSE NULL END,
    updated_at = now()
WHERE id = $1 AND attempts = $2 AND status = 'pending'
RETURNING next_attempt_at
"""

_RECORD_ATTEMPT = """
INSERT INTO webhook_attempts
    (delivery_id, attempt, webhook_id, started_at, duration_ms, status_code, error, outcome, next_attempt_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (delivery_id, attempt) DO NOTHING
"""


@dataclass(frozen=True)
class Claimed:
    id: UUID
    webhook_id: UUID
    attempt: int
    transition: str
    url: str
    secret: str
    event: AlertEvent


@dataclass(frozen=True)
class AttemptResult:
    started_at: datetime
    duration_ms: float
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


async def claim_due(pool: asyncpg.Pool, *, limit: int, lease_s: float) -> list[Claimed]:
    rows = await pool.fetch(_CLAIM, limit, lease_s)
    return [
        Claimed(
            id=r["id"],
            webhook_id=r["webhook_id"],
            attempt=r["attempts"],
            transition=r["transition"],
            url=r["url"],
            secret=r["secret"],
            event=AlertEvent.model_validate(r["payload"]),
        )
        for r in rows
    ]


async def record_attempt(
    pool: asyncpg.Pool, claimed: Claimed, result: AttemptResult, outcome: Outcome, *, retry_in_s: float | None
) -> datetime | None:
    """Store the attempt and settle the delivery; returns when the next attempt is due (None once settled)."""
    status = {"delivered": "delivered", "retry": "pending", "failed": "failed"}[outcome]
    async with pool.acquire() as conn, conn.transaction():
        next_at: Any = await conn.fetchval(
            _SETTLE,
            claimed.id,
            claimed.attempt,
            status,
            result.status_code,
            result.error,
            retry_in_s or 0.0,
        )
        await conn.execute(
            _RECORD_ATTEMPT,
            claimed.id,
            claimed.attempt,
            claimed.webhook_id,
            result.started_at,
            result.duration_ms,
            result.status_code,
            result.error,
            outcome,
            next_at,
        )
    return next_at if isinstance(next_at, datetime) else None
