"""Helpers for the audit and analytics tests: decision events, producing them, storing them, waiting.

(A module of helpers, not tests.)
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from clickhouse_connect.driver.client import Client
from fastapi import FastAPI

from consumers.audit.authenticity import receipt_body_for
from consumers.audit.transform import Accepted, Origin, decision_row, deduplication_token
from consumers.audit.writer import AuditWriter
from consumers.settings import AuditSettings
from infra.decisions_table import DecisionStore, run_query
from infra.kafka_topics import ensure_topics
from infra.receipt_keys import ReceiptKeyring
from ingress.check.receipts import ReceiptSigner
from ingress.settings import IngressSettings
from schemas import topics
from schemas.decision_event import DecisionEvent, Factor, OperationSummary, PersonalDataFinding, PolicyRef, Violation
from schemas.receipt import new_request_salt, request_digest
from tests.conftest import run_topic, running_apps
from tests.support.receipt_keyring import RECEIPT_KEYS_DIR

DATABASE = "governance"


def make_event(
    customer_id: uuid.UUID,
    *,
    allowed: bool = True,
    risk: int = 10,
    reason: str = "Within policy limits",
    rules: Sequence[str] = (),
    decided_at: datetime | None = None,
    request_id: str | None = None,
    pii: Sequence[str] = (),
) -> DecisionEvent:
    """A decision event with a receipt signed as ingress signs one (the audit writer stores no other), by the
    run's receipt keyring (``tests/support/receipt_keyring.py``)."""
    return signed(
        DecisionEvent(
            event_id=uuid.uuid4(),
            request_id=request_id or f"req_{uuid.uuid4().hex[:12]}",
            customer_id=customer_id,
            key_id="kid_test",
            decided_at=decided_at or datetime.now(UTC),
            allowed=allowed,
            risk_score=risk,
            threshold=70,
            reason=reason,
            factors=[Factor(name="base", points=risk, detail="test")],
            violations=[Violation(rule=r, policy_id="pol_1", policy_version=1, detail="d") for r in rules],
            policies=[PolicyRef(policy_id="pol_1", version=1)],
            operations=[OperationSummary(index=0, type="llm_call", model="gpt-4", provider="openai", tokens=500)],
            personal_data=[PersonalDataFinding(category=c, path="context.note") for c in pii],
            latency_ms=1.5,
            request_digest=request_digest({"test": True}, new_request_salt()),
        )
    )


_SIGNER: list[ReceiptSigner] = []


def signed(event: DecisionEvent) -> DecisionEvent:
    """``event`` with a receipt over its own fields (as ``ingress.check.route.build_event`` signs one)."""
    if not _SIGNER:
        _SIGNER.append(ReceiptSigner(ReceiptKeyring(RECEIPT_KEYS_DIR)))
    return event.model_copy(update={"receipt": _SIGNER[0].sign(receipt_body_for(event))})


DECISION_HEADERS = [
    (topics.HEADER_EVENT_TYPE, b"decision"),
    (topics.HEADER_SCHEMA_VERSION, b"1"),
    (topics.HEADER_CONTENT_TYPE, b"application/json"),
]


async def produce(bootstrap: str, topic: str, records: Iterable[DecisionEvent | bytes]) -> list[tuple[int, int]]:
    """Publish like ingress does (key = customer_id, the contract headers); raw bytes go as they are.

    Returns (partition, offset) per record: topics have several partitions, spread by key.
    """
    await ensure_topics(bootstrap, [topic])  # the broker creates no topic on its own
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    offsets = []
    try:
        for record in records:
            if isinstance(record, DecisionEvent):
                meta = await producer.send_and_wait(
                    topic,
                    record.model_dump_json().encode(),
                    key=str(record.customer_id).encode(),
                    headers=DECISION_HEADERS,
                )
            else:
                meta = await producer.send_and_wait(topic, record, key=b"poison")
            offsets.append((meta.partition, meta.offset))
    finally:
        await producer.stop()
    return offsets


def store_events(clickhouse: Client, events: Sequence[DecisionEvent], topic: str = "test.direct") -> None:
    """Insert straight into ClickHouse as the writer would (for read-side tests that need no Kafka)."""
    accepted = [Accepted(Origin(topic, 0, i), e) for i, e in enumerate(events)]
    DecisionStore(clickhouse, DATABASE).insert_sync(
        [decision_row(a.event, a.origin) for a in accepted], deduplication_token(accepted)
    )


def rows(clickhouse: Client, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    return run_query(clickhouse, sql, params)


def counts(clickhouse: Client, customer_id: uuid.UUID) -> tuple[int, int, int]:
    """(raw rows, distinct event ids, decisions in the minute rollup) for one customer."""
    (total, distinct), *_ = rows(
        clickhouse,
        f"SELECT count(), uniqExact(event_id) FROM {DATABASE}.decisions WHERE customer_id = {{c:UUID}}",
        c=customer_id,
    )
    (rolled,), *_ = rows(
        clickhouse,
        f"SELECT sum(decisions) FROM {DATABASE}.decisions_per_minute WHERE customer_id = {{c:UUID}}",
        c=customer_id,
    )
    return int(total), int(distinct), int(rolled or 0)


def stored_ids(clickhouse: Client, customer_id: uuid.UUID) -> set[uuid.UUID]:
    found = rows(clickhouse, f"SELECT event_id FROM {DATABASE}.decisions WHERE customer_id = {{c:UUID}}", c=customer_id)
    return {r[0] if isinstance(r[0], uuid.UUID) else uuid.UUID(str(r[0])) for r in found}


async def wait_until(
    check: Callable[[], Awaitable[bool] | bool], *, timeout: float = 15.0, interval: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


def audit_settings(settings: IngressSettings, **overrides: Any) -> AuditSettings:
    """Audit settings on a topic and group of the test's own (and a DLQ of its own)."""
    suffix = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "DECISIONS_TOPIC": run_topic(f"audit.{suffix}.decisions.v1"),
        "DLQ_TOPIC": run_topic(f"audit.{suffix}.decisions.dlq"),
        "AUDIT_GROUP_ID": f"test-audit-{suffix}",
        "AUDIT_FLUSH_INTERVAL_S": 0.3,
        "AUDIT_BACKOFF_INITIAL_S": 0.05,
        "AUDIT_BACKOFF_MAX_S": 0.2,
        "RECEIPT_KEYS_DIR": str(RECEIPT_KEYS_DIR),
    }
    values.update(overrides)
    return AuditSettings.derive(settings, **values)


async def committed_offset(bootstrap: str, group: str, topic: str, partition: int = 0) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        offset: int | None = await consumer.committed(TopicPartition(topic, partition))
        return offset
    finally:
        await consumer.stop()


async def read_topic(
    bootstrap: str, topic: str, expected: int, timeout: float = 60.0
) -> list[ConsumerRecord[Any, Any]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    found: list[ConsumerRecord[Any, Any]] = []
    try:
        deadline = time.monotonic() + timeout
        while len(found) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                found.extend(records)
    finally:
        await consumer.stop()
    return found


def ends(topic: str, produced: Iterable[tuple[int, int]]) -> dict[str, int]:
    """The offset to commit after the records produced, per "topic:partition"."""
    last: dict[str, int] = {}
    for partition, offset in produced:
        key = f"{topic}:{partition}"
        last[key] = max(last.get(key, 0), offset + 1)
    return last


def caught_up(writer: AuditWriter, topic: str, produced: Iterable[tuple[int, int]]) -> bool:
    committed = writer.stats.last_committed
    return all(committed.get(key) == end for key, end in ends(topic, produced).items())


def hours_ago(hours: int) -> datetime:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return now - timedelta(hours=hours)


async def running_app(settings: IngressSettings, monkeypatch: pytest.MonkeyPatch, **env: str) -> AsyncIterator[FastAPI]:
    """The ingress app with ``AUDIT_*`` set for this test (the shared ``app`` fixture reads the defaults)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    async with running_apps(settings) as application:
        yield application
