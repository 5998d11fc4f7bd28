"""R4: the audit writer (Kafka → ClickHouse, end to end) against a raw insert of the same rows, same batch size.

Both sides run in this process on one embedded ClickHouse (chdb, as ``make up`` runs it), each into a database of
its own with every migration applied, so both pay for the same table and materialised views. The writer side
starts on a topic already holding the events and is timed from its first consumed record to its last row
written: decoding, validating, deduplicating, inserting and committing. The raw side times ``client.insert``
alone, on rows built beforehand, once before and once after the writer; their mean is the baseline.
"""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from clickhouse_connect.driver.client import Client

from bench.workload import GUIDE_STEP4, policy_set
from consumers.audit.authenticity import receipt_body_for
from consumers.audit.transform import Origin, decision_row
from consumers.audit.writer import AuditWriter
from consumers.settings import AuditSettings
from infra.clickhouse import build_clickhouse_client
from infra.decisions_table import COLUMNS
from infra.kafka_topics import ensure_topics
from infra.migrate import migrate_clickhouse
from infra.receipt_keys import ReceiptKeyring
from ingress.check.publisher import DecisionPublisher
from ingress.check.receipts import ReceiptSigner
from ingress.check.route import build_event
from ingress.engine import decide
from schemas.check import CheckRequest
from schemas.decision_event import DecisionEvent

_CUSTOMERS = [uuid.UUID(int=index + 1) for index in range(4)]


def decision_events(count: int, keys_dir: Path) -> list[DecisionEvent]:
    """``count`` decision events as ingress publishes them (one signed template, fresh ids and instants)."""
    decision = decide(CheckRequest.model_validate(GUIDE_STEP4), policy_set(1, distinct=False))
    started = datetime.now(UTC)
    template = build_event(
        request_id="req_bench",
        customer_id=_CUSTOMERS[0],
        key_id="bench",
        decision=decision,
        decided_at=started,
        latency_ms=1.0,
        payload=GUIDE_STEP4,
        signer=ReceiptSigner(ReceiptKeyring(keys_dir)),
    )
    signer = ReceiptSigner(ReceiptKeyring(keys_dir))
    events = [
        template.model_copy(
            update={
                "event_id": uuid.uuid4(),
                "request_id": f"req_bench_{index}",
                "customer_id": _CUSTOMERS[index % len(_CUSTOMERS)],
                "decided_at": started + timedelta(milliseconds=index),
            }
        )
        for index in range(count)
    ]
    # Each signed over its own fields, as ingress signs it: the writer stores no event whose receipt does not.
    return [event.model_copy(update={"receipt": signer.sign(receipt_body_for(event))}) for event in events]


async def _produce(bootstrap: str, topic: str, events: list[DecisionEvent]) -> None:
    await ensure_topics(bootstrap, [topic, f"{topic}.dlq"])  # as every process does at start; nothing auto-creates
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5, max_batch_size=1 << 20
    )
    await producer.start()
    headers = [(k, v.encode()) for k, v in DecisionPublisher.headers().items()]
    try:
        pending = [
            await producer.send(
                topic, event.model_dump_json().encode(), key=str(event.customer_id).encode(), headers=headers
            )
            for event in events
        ]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


def _raw_insert_rows_per_s(client: Client, database: str, rows: list[tuple[Any, ...]], batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        client.insert(f"{database}.decisions", rows[start : start + batch], column_names=list(COLUMNS))
    return len(rows) / (time.perf_counter() - started)


async def _writer_rows_per_s(settings: AuditSettings, client: Client, expected: int, timeout_s: float) -> float:
    writer = AuditWriter(settings, client, client_id="bench-audit")
    await writer.start()
    try:
        deadline = time.monotonic() + timeout_s
        first: float | None = None
        while time.monotonic() < deadline:
            if first is None and writer.stats.messages_consumed:
                first = time.perf_counter()
            if writer.stats.rows_written >= expected:
                break
            if writer.failure is not None:
                raise RuntimeError(f"the audit writer failed: {writer.failure!r}")
            await asyncio.sleep(0.005)
        else:
            raise RuntimeError(
                f"the audit writer wrote {writer.stats.rows_written} of {expected} rows in {timeout_s} s"
            )
        assert first is not None  # noqa: S101 - rows were written, so records were consumed
        return writer.stats.rows_written / (time.perf_counter() - first)
    finally:
        await writer.stop()


async def writer_vs_raw(
    *, bootstrap: str, topic: str, group_id: str, state: Path, count: int, batch_size: int
) -> dict[str, Any]:
    events = decision_events(count, state / "receipt-keys")
    await _produce(bootstrap, topic, events)
    client = build_clickhouse_client(f"chdb://{state / 'writer-clickhouse'}", database="bench_writer")
    for database in ("bench_warm_up", "bench_raw_before", "bench_writer", "bench_raw_after"):
        migrate_clickhouse(client, database)
    # The rows exactly as the writer builds them, with made-up offsets: building them is not the raw side's work.
    rows = [decision_row(event, Origin(topic, 0, offset, None, None)) for offset, event in enumerate(events)]
    # The events and rows held for the raw side are the harness's, not the writer's: a consumer process holds one
    # batch. Frozen, the collector leaves them out of its full passes (as ingress and consumers freeze what they
    # load at start-up), so that the writer is not charged for scanning 50 000 events it never sees.
    del events
    gc.collect()
    gc.freeze()
    # The first inserts into a fresh embedded ClickHouse are twice as slow: warm it up untimed.
    await asyncio.to_thread(_raw_insert_rows_per_s, client, "bench_warm_up", rows[: 10 * batch_size], batch_size)
    # The raw insert runs before and after the writer (each into a table of its own), so that background merges
    # of one side's parts weigh on both sides alike.
    raw_before = await asyncio.to_thread(_raw_insert_rows_per_s, client, "bench_raw_before", rows, batch_size)
    settings = AuditSettings.model_validate(
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DECISIONS_TOPIC": topic,
            "DLQ_TOPIC": f"{topic}.dlq",
            "AUDIT_GROUP_ID": group_id,
            "AUDIT_BATCH_SIZE": batch_size,
            "CLICKHOUSE_DATABASE": "bench_writer",
            "RECEIPT_KEYS_DIR": str(state / "receipt-keys"),
        }
    )
    writer = await _writer_rows_per_s(settings, client, count, timeout_s=max(60.0, count / 200))
    raw_after = await asyncio.to_thread(_raw_insert_rows_per_s, client, "bench_raw_after", rows, batch_size)
    gc.unfreeze()
    raw = (raw_before + raw_after) / 2
    return {
        "rows": count,
        "batch_size": batch_size,
        "writer_rows_per_s": round(writer, 1),
        "raw_insert_rows_per_s": round(raw, 1),
        "raw_insert_before_after": [round(raw_before, 1), round(raw_after, 1)],
        "ratio": round(writer / raw, 3),
    }
