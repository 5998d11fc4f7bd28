"""PostgreSQL side of the alerting consumer: rules, open alerts, applying transitions, the alert-event outbox.

Applying a transition is one transaction: the alert row changes only if it is still in the state the consumer
saw (``status = 'open' AND sequence = $seen``), the event is inserted under a unique (alert, sequence), and one
delivery per active webhook under a unique (event, webhook). Reprocessing the same records after a restart, or a
second consumer racing during a rebalance, therefore cannot notify twice: the loser finds nothing to change and
adopts the alert as stored.
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from consumers.alerts.evaluate import OpenAlert, Transition
from infra.postgres import TRANSIENT_ERRORS
from schemas.alert_event import AlertEvent
from schemas.alerting import (
    UNKNOWN_SUBJECT,
    RuleBook,
    RuleKind,
    RuleParams,
    StoredRule,
    full_params,
    parse_params,
)

log = logging.getLogger("consumers.alerts.store")

# Event ids are derived from (alert, sequence): the same state change always has the same id.
EVENT_NAMESPACE = uuid.UUID("6f1d3c1e-8a53-4b4e-9a57-4f0c2a1d9e11")

RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (
    *TRANSIENT_ERRORS,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
)

_ALERT_COLUMNS = "id, rule, subject, opened_at, last_notified_at, sequence, source_topic, source_partition"


@dataclass(frozen=True)
class Source:
    """The topic partition whose consumer owns an alert's state."""

    topic: str
    partition: int


@dataclass(frozen=True)
class Applied:
    event: AlertEvent | None  # None: nothing changed (someone else had already made this change)
    open_alert: OpenAlert | None  # the alert's state now; None when no alert is open for (rule, subject)


def event_id_for(alert_id: UUID, sequence: int) -> UUID:
    return uuid.uuid5(EVENT_NAMESPACE, f"{alert_id}:{sequence}")


def customer_of(subject: str) -> UUID | None:
    return None if subject == UNKNOWN_SUBJECT else UUID(subject)


def build_event(
    transition: Transition, *, alert_id: UUID, sequence: int, opened_at: Any, params: RuleParams
) -> AlertEvent:
    """The ``AlertEvent`` for one applied transition (pure)."""
    resolved = transition.kind == "resolved"
    observation = transition.observation
    return AlertEvent(
        event_id=event_id_for(alert_id, sequence),
        alert_id=alert_id,
        transition=transition.kind,
        sequence=sequence,
        status="resolved" if resolved else "open",
        rule=transition.rule,
        severity=params.effective_severity,
        customer_id=customer_of(transition.subject),
        subject=transition.subject,
        summary=observation.summary,
        value=observation.value,
        threshold=observation.threshold,
        window_s=params.window_s,
        params=full_params(params),
        opened_at=opened_at,
        occurred_at=transition.at,
        resolved_at=transition.at if resolved else None,
    )


def _open_alert(row: asyncpg.Record) -> OpenAlert:
    return OpenAlert(
        alert_id=row["id"],
        rule=row["rule"],
        subject=row["subject"],
        opened_at=row["opened_at"],
        last_notified_at=row["last_notified_at"],
        sequence=row["sequence"],
    )


class AlertStore:
    def __init__(self, pool: asyncpg.Pool, *, key_cache_size: int = 10_000) -> None:
        self.pool = pool
        self._keys: OrderedDict[str, UUID | None] = OrderedDict()
        self._key_cache_size = key_cache_size

    async def load_rules(self) -> RuleBook:
        rows = await self.pool.fetch("SELECT id, customer_id, kind, enabled, params FROM alert_rules")
        stored = []
        for row in rows:
            try:
                parse_params(row["kind"], row["params"])
            except ValueError as exc:  # stored before a stricter release: ignore it, say so
                log.warning("alert rule %s ignored: %s", row["id"], exc)
                continue
            stored.append(
                StoredRule(
                    id=row["id"],
                    customer_id=row["customer_id"],
                    rule=row["kind"],
                    enabled=row["enabled"],
                    params=row["params"],
                )
            )
        return RuleBook(stored)

    async def open_alerts(self, sources: Iterable[Source]) -> list[tuple[OpenAlert, Source]]:
        wanted = list(sources)
        if not wanted:
            return []
        rows = await self.pool.fetch(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE status = 'open'"
            " AND (source_topic, source_partition) IN (SELECT * FROM unnest($1::text[], $2::int[]))",
            [s.topic for s in wanted],
            [s.partition for s in wanted],
        )
        return [(_open_alert(r), Source(r["source_topic"], r["source_partition"])) for r in rows]

    async def customer_for_key(self, key_id: str) -> UUID | None:
        """The customer a public key id belongs to (revoked and expired keys too), cached; None if none does."""
        if key_id in self._keys:
            self._keys.move_to_end(key_id)
            return self._keys[key_id]
        found: UUID | None = await self.pool.fetchval("SELECT customer_id FROM api_keys WHERE key_id = $1", key_id)
        self._keys[key_id] = found
        while len(self._keys) > self._key_cache_size:
            self._keys.popitem(last=False)
        return found

    async def apply(self, transition: Transition, source: Source) -> Applied:
        async with self.pool.acquire() as conn, conn.transaction():
            if transition.kind == "opened":
                return await self._open(conn, transition, source)
            return await self._advance(conn, transition)

    async def _open(self, conn: asyncpg.Connection, t: Transition, source: Source) -> Applied:
        assert t.params is not None  # noqa: S101 - "opened" always carries the rule in force
        alert_id = uuid.uuid4()
        row = await conn.fetchrow(
            "INSERT INTO alerts (id, rule, customer_id, subject, status, severity, summary, value, threshold, params,"
            " sequence, opened_at, last_notified_at, source_topic, source_partition)"
            " VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8, $9, 1, $10, $10, $11, $12)"
            " ON CONFLICT (rule, subject) WHERE status = 'open' DO NOTHING"
            f" RETURNING {_ALERT_COLUMNS}",
            alert_id,
            t.rule,
            customer_of(t.subject),
            t.subject,
            t.params.effective_severity,
            t.observation.summary,
            t.observation.value,
            t.observation.threshold,
            full_params(t.params),
            t.at,
            source.topic,
            source.partition,
        )
        if row is None:
            return Applied(None, await self._current(conn, t.rule, t.subject))
        event = build_event(t, alert_id=alert_id, sequence=1, opened_at=t.at, params=t.params)
        await self._record_event(conn, event)
        return Applied(event, _open_alert(row))

    async def _advance(self, conn: asyncpg.Connection, t: Transition) -> Applied:
        assert t.alert is not None  # noqa: S101 - renotified and resolved change an open alert
        resolved = t.kind == "resolved"
        row = await conn.fetchrow(
            "UPDATE alerts SET sequence = sequence + 1,"
            " status = CASE WHEN $3::boolean THEN 'resolved' ELSE 'open' END,"
            " resolved_at = CASE WHEN $3::boolean THEN $4::timestamptz END,"
            " last_notified_at = CASE WHEN $3::boolean THEN last_notified_at ELSE $4::timestamptz END,"
            " summary = $5, value = $6, threshold = COALESCE($7::double precision, threshold),"
            " params = COALESCE($8::jsonb, params)"
            " WHERE id = $1 AND status = 'open' AND sequence = $2"
            f" RETURNING {_ALERT_COLUMNS}, params AS stored_params",
            t.alert.alert_id,
            t.alert.sequence,
            resolved,
            t.at,
            t.observation.summary,
            t.observation.value,
            t.observation.threshold if t.params is not None else None,
            full_params(t.params) if t.params is not None else None,
        )
        if row is None:  # already moved on (another consumer, or an earlier run): take the stored state
            return Applied(None, await self._current(conn, t.rule, t.subject))
        params = t.params or parse_params(t.rule, row["stored_params"])
        event = build_event(t, alert_id=row["id"], sequence=row["sequence"], opened_at=row["opened_at"], params=params)
        await self._record_event(conn, event)
        return Applied(event, None if resolved else _open_alert(row))

    async def _current(self, conn: asyncpg.Connection, rule: RuleKind, subject: str) -> OpenAlert | None:
        row = await conn.fetchrow(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE rule = $1 AND subject = $2 AND status = 'open'", rule, subject
        )
        return _open_alert(row) if row is not None else None

    async def _record_event(self, conn: asyncpg.Connection, event: AlertEvent) -> None:
        inserted = await conn.fetchval(
            "INSERT INTO alert_events (event_id, alert_id, transition, sequence, subject, payload)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING event_id",
            event.event_id,
            event.alert_id,
            event.transition,
            event.sequence,
            event.subject,
            event.model_dump(mode="json"),
        )
        if inserted is None:
            return
        await conn.execute(
            "INSERT INTO webhook_deliveries (webhook_id, event_id, alert_id, transition, sequence)"
            " SELECT w.id, $1, $2, $3, $4 FROM webhooks w"
            " WHERE w.deleted_at IS NULL AND w.active AND (w.customer_id IS NULL OR w.customer_id = $5)"
            " ON CONFLICT (event_id, webhook_id) DO NOTHING",
            event.event_id,
            event.alert_id,
            event.transition,
            event.sequence,
            event.customer_id,
        )

    async def publish_pending(
        self, publish: Callable[[AlertEvent], Awaitable[None]], *, limit: int = 200
    ) -> tuple[int, BaseException | None]:
        """Publish events not yet on Kafka, oldest first; stop at the first failure. Several publishers may run:
        rows being published elsewhere are skipped (``SKIP LOCKED``)."""
        published: list[UUID] = []
        failure: BaseException | None = None
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT event_id, payload FROM alert_events WHERE published_at IS NULL"
                " ORDER BY created_at, sequence LIMIT $1 FOR UPDATE SKIP LOCKED",
                limit,
            )
            for row in rows:
                try:
                    await publish(AlertEvent.model_validate(row["payload"]))
                except Exception as exc:  # noqa: BLE001 - Kafka away: the rest waits for the next round
                    failure = exc
                    break
                published.append(row["event_id"])
            if published:
                await conn.execute(
                    "UPDATE alert_events SET published_at = now() WHERE event_id = ANY($1::uuid[])", published
                )
        return len(published), failure
