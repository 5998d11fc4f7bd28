"""The audit writer end to end: real Kafka, the embedded ClickHouse, DecisionEvents produced as ingress does.

Every writer here reads a topic and a consumer group of its test's own; they all write the run's one ClickHouse,
told apart by customer id.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError
from fastapi import FastAPI

import consumers.__main__ as consumers_main
from consumers.audit.batch import DlqLimitExceeded, WriterState
from consumers.audit.writer import AuditWriter
from infra.decisions_table import DecisionStore
from ingress.settings import IngressSettings
from tests.support.audit import (
    DATABASE,
    audit_settings,
    caught_up,
    committed_offset,
    counts,
    ends,
    make_event,
    produce,
    read_topic,
    rows,
    running_app,
    store_events,
    stored_ids,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def writers() -> AsyncIterator[list[AuditWriter]]:
    """Writers a test starts; each is stopped at the end, whatever happened."""
    started: list[AuditWriter] = []
    yield started
    for writer in started:
        await writer.stop()


async def start(writers: list[AuditWriter], writer: AuditWriter) -> AuditWriter:
    writers.append(writer)
    await writer.start()
    return writer


@pytest.fixture
async def audit_app(settings: IngressSettings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FastAPI]:
    # A group of this test's own: a live ingress of another test may hold the shared group's partition.
    async for application in running_app(settings, monkeypatch, AUDIT_GROUP_ID=f"test-audit-{uuid.uuid4().hex[:8]}"):
        yield application.state.read_side


async def test_published_decision_is_visible_through_logs(
    audit_app: FastAPI, settings: IngressSettings, admin_key: str
) -> None:
    writer = audit_app.state.audit_writer
    assert isinstance(writer, AuditWriter)  # embedded ClickHouse: the read side runs the writer itself
    customer = uuid.uuid4()
    event = make_event(customer, allowed=False, risk=88, rules=["block_personal_data"], pii=["email"])
    await produce(settings.kafka_bootstrap_servers, settings.decisions_topic, [event])

    transport = httpx.ASGITransport(app=audit_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        found: list[dict[str, Any]] = []

        async def visible() -> bool:
            response = await http.get(
                "/logs", params={"customer_id": str(customer)}, headers={"Authorization": f"Bearer {admin_key}"}
            )
            assert response.status_code == 200, response.text
            found[:] = response.json()["items"]
            return bool(found)

        await wait_until(visible, timeout=15)
    item = found[0]
    assert item["event_id"] == str(event.event_id)
    assert item["decision"] == "block"
    assert item["risk_score"] == 88
    assert item["violations"][0]["rule"] == "block_personal_data"
    assert item["pii_categories"] == ["email"]
    await wait_until(lambda: writer.stats.batches_written >= 1 and bool(writer.stats.last_committed))
    assert writer.stats.rows_written >= 1


async def test_same_batch_inserted_twice_with_its_token_counts_once_in_table_and_rollups(clickhouse: Client) -> None:
    customer = uuid.uuid4()
    events = [make_event(customer, allowed=i % 2 == 0) for i in range(10)]
    store_events(clickhouse, events)
    store_events(clickhouse, events)  # the same batch, the same token: a skipped block never reaches the views
    assert counts(clickhouse, customer) == (10, 10, 10)
    (hourly,), *_ = rows(
        clickhouse,
        f"SELECT sum(decisions) FROM {DATABASE}.decisions_per_hour WHERE customer_id = {{c:UUID}}",
        c=customer,
    )
    assert hourly == 10


async def test_replaying_the_same_offsets_in_a_fresh_group_stores_each_decision_once(
    settings: IngressSettings, clickhouse: Client, writers: list[AuditWriter]
) -> None:
    config = audit_settings(settings)
    customer = uuid.uuid4()
    events = [make_event(customer) for _ in range(15)]
    produced = await produce(settings.kafka_bootstrap_servers, config.decisions_topic, events)

    first = await start(writers, AuditWriter(config, clickhouse))
    await wait_until(lambda: caught_up(first, config.decisions_topic, produced))
    replay = AuditWriter(config.model_copy(update={"audit_group_id": config.audit_group_id + "-replay"}), clickhouse)
    await start(writers, replay)
    await wait_until(lambda: caught_up(replay, config.decisions_topic, produced))

    assert replay.stats.rows_written == 0
    assert replay.stats.duplicates_skipped == 15
    assert counts(clickhouse, customer) == (15, 15, 15)
    assert stored_ids(clickhouse, customer) == {e.event_id for e in events}


async def test_poison_goes_to_the_dlq_with_its_origin_and_the_stream_continues(
    settings: IngressSettings, clickhouse: Client, writers: list[AuditWriter]
) -> None:
    config = audit_settings(settings)
    customer = uuid.uuid4()
    good = [make_event(customer) for _ in range(3)]
    schema_broken = json.dumps({"event_id": str(uuid.uuid4()), "risk_score": 900}).encode()
    offsets = await produce(
        settings.kafka_bootstrap_servers,
        config.decisions_topic,
        [good[0], b"{definitely not json", good[1], schema_broken, good[2]],
    )
    writer = await start(writers, AuditWriter(config, clickhouse))
    await wait_until(lambda: caught_up(writer, config.decisions_topic, offsets))

    assert stored_ids(clickhouse, customer) == {e.event_id for e in good}
    assert writer.stats.dlq_count == 2
    dead = await read_topic(settings.kafka_bootstrap_servers, config.dlq_topic, expected=2)
    assert len(dead) == 2
    origins = [json.loads(r.value)["origin"] for r in dead]
    by_origin = {(o["partition"], o["offset"]): r for o, r in zip(origins, dead, strict=True)}
    assert set(by_origin) == {offsets[1], offsets[3]}
    invalid_json = by_origin[offsets[1]]
    record = json.loads(invalid_json.value)
    assert record["origin"]["topic"] == config.decisions_topic
    assert record["origin"]["partition"] == offsets[1][0]
    assert record["consumer_group"] == config.audit_group_id
    assert record["reason"] == "invalid_json"
    headers = {k: v.decode() for k, v in invalid_json.headers}
    assert headers["dlq-origin-topic"] == config.decisions_topic
    assert headers["dlq-origin-partition"] == str(offsets[1][0])
    assert headers["dlq-origin-offset"] == str(offsets[1][1])
    assert headers["dlq-consumer-group"] == config.audit_group_id
    assert headers["dlq-reason"] == "invalid_json"
    assert json.loads(by_origin[offsets[3]].value)["reason"] == "schema_violation"
    group, topic = config.audit_group_id, config.decisions_topic
    for key, end in ends(topic, offsets).items():
        partition = int(key.rsplit(":", 1)[1])
        assert await committed_offset(settings.kafka_bootstrap_servers, group, topic, partition) == end


async def test_killed_between_insert_and_commit_then_restarted_loses_nothing_and_duplicates_nothing(
    settings: IngressSettings, clickhouse: Client, writers: list[AuditWriter], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = audit_settings(settings)
    customer = uuid.uuid4()
    before = [make_event(customer) for _ in range(20)]
    produced = await produce(settings.kafka_bootstrap_servers, config.decisions_topic, before)
    partition = produced[0][0]

    doomed = AuditWriter(config, clickhouse)

    async def killed(offsets: Any) -> None:
        raise RuntimeError("killed between the insert and the commit")

    monkeypatch.setattr(doomed, "_commit", killed)
    await start(writers, doomed)
    await wait_until(lambda: doomed.state is WriterState.FAILED)
    await doomed.wait_stopped()
    assert counts(clickhouse, customer)[0] == 20  # inserted...
    group, topic = config.audit_group_id, config.decisions_topic
    assert await committed_offset(settings.kafka_bootstrap_servers, group, topic, partition) is None  # ...not committed

    # More arrive while it is down, so the redelivered batch has other boundaries than the one inserted.
    after = [make_event(customer) for _ in range(5)]
    produced += await produce(settings.kafka_bootstrap_servers, config.decisions_topic, after)
    restarted = await start(writers, AuditWriter(config, clickhouse))
    await wait_until(lambda: caught_up(restarted, config.decisions_topic, produced))

    total, distinct, rolled_up = counts(clickhouse, customer)
    assert (total, distinct, rolled_up) == (25, 25, 25)
    assert stored_ids(clickhouse, customer) == {e.event_id for e in before + after}
    assert restarted.stats.duplicates_skipped == 20
    assert restarted.stats.rows_written == 5


async def test_clickhouse_errors_are_retried_with_backoff_and_nothing_is_committed_meanwhile(
    settings: IngressSettings, clickhouse: Client, writers: list[AuditWriter], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = audit_settings(settings)
    customer = uuid.uuid4()
    events = [make_event(customer) for _ in range(4)]
    writer = AuditWriter(config, clickhouse)
    journal: list[str] = []
    real_insert, real_commit = writer.store.insert, writer._commit

    async def flaky_insert(batch: Any, token: str) -> None:
        if journal.count("insert failed") < 2:
            journal.append("insert failed")
            raise DatabaseError("Code: 241. MEMORY_LIMIT_EXCEEDED (simulated)")
        await real_insert(batch, token)
        journal.append("inserted")

    async def recorded_commit(offsets: Any) -> None:
        journal.append("commit")
        await real_commit(offsets)

    monkeypatch.setattr(writer.store, "insert", flaky_insert)
    monkeypatch.setattr(writer, "_commit", recorded_commit)
    await start(writers, writer)
    await produce(settings.kafka_bootstrap_servers, config.decisions_topic, events)
    await wait_until(lambda: "commit" in journal)

    assert journal[:4] == ["insert failed", "insert failed", "inserted", "commit"]
    assert writer.stats.insert_failures == 2
    assert writer.state is WriterState.RUNNING
    assert counts(clickhouse, customer) == (4, 4, 4)


async def test_dead_lettering_everything_stops_the_writer_instead_of_draining_the_topic(
    settings: IngressSettings, clickhouse: Client, writers: list[AuditWriter]
) -> None:
    config = audit_settings(settings, AUDIT_DLQ_LIMIT=2, AUDIT_DLQ_WINDOW=5)
    records = [make_event(uuid.uuid4()), *[b"junk"] * 8]
    produced = await produce(settings.kafka_bootstrap_servers, config.decisions_topic, records)
    junk_partition, last_junk = produced[-1]
    writer = await start(writers, AuditWriter(config, clickhouse))
    await wait_until(lambda: writer.state is WriterState.FAILED)
    await writer.wait_stopped()

    assert isinstance(writer.failure, DlqLimitExceeded)
    assert "3 of the last 5" in str(writer.failure)
    group, topic = config.audit_group_id, config.decisions_topic
    committed = await committed_offset(settings.kafka_bootstrap_servers, group, topic, junk_partition)
    assert committed is None or committed < last_junk  # the junk was not drained into the DLQ
    assert writer.stats.dlq_count <= 2


async def test_retention_is_applied_from_the_setting(clickhouse: Client) -> None:
    store = DecisionStore(clickhouse, DATABASE)
    try:
        assert set(await asyncio.to_thread(store.apply_retention_sync, 30)) == {
            "decisions",
            "decisions_per_minute",
            "decisions_per_hour",
        }
        assert await asyncio.to_thread(store.apply_retention_sync, 30) == []  # unchanged: no rewrite
        (engine,), *_ = rows(
            clickhouse,
            "SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = 'decisions'",
            db=DATABASE,
        )
        assert "TTL toDateTime(decided_at) + toIntervalDay(30)" in engine
    finally:
        await asyncio.to_thread(store.apply_retention_sync, 365)


async def test_the_read_side_starts_and_stops_promptly_with_its_writer(
    settings: IngressSettings, migrated: str, clickhouse: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = None
    # Bounded, not timed: a stop that waited out a session timeout or hung would exceed this; the invariant is that
    # the writer started with the app and is stopped when the app is.
    async with asyncio.timeout(60):
        async for application in running_app(
            settings, monkeypatch, AUDIT_GROUP_ID=f"test-audit-{uuid.uuid4().hex[:8]}"
        ):
            writer = application.state.read_side.state.audit_writer
            assert isinstance(writer, AuditWriter)
            assert not hasattr(application.state, "audit_writer")  # never in the check path
    assert writer is not None
    assert writer.state is WriterState.STOPPED


async def test_no_writer_in_the_read_side_when_told_so(
    settings: IngressSettings, migrated: str, clickhouse: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    async for application in running_app(settings, monkeypatch, AUDIT_IN_PROCESS="false"):
        assert application.state.read_side.state.audit_writer is None


async def test_standalone_writer_writes_and_stops_cleanly_on_sigterm(
    settings: IngressSettings, clickhouse: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `python -m consumers` against a ClickHouse server; the server is stood in for by the run's embedded engine.
    config = audit_settings(settings, CLICKHOUSE_URL="http://clickhouse.test:8123")
    assert not config.clickhouse_embedded
    monkeypatch.setattr(consumers_main, "build_clickhouse_client", lambda *_, **__: clickhouse)
    customer = uuid.uuid4()
    await produce(settings.kafka_bootstrap_servers, config.decisions_topic, [make_event(customer)])
    running = asyncio.create_task(consumers_main.run_audit_writer(config))
    await wait_until(lambda: bool(stored_ids(clickhouse, customer)) or running.done())
    assert not running.done()
    os.kill(os.getpid(), signal.SIGTERM)  # the handler is installed before the writer starts
    assert await asyncio.wait_for(running, timeout=15) == 0


def test_standalone_writer_refuses_the_embedded_clickhouse(project_root: Path, tmp_path: Path) -> None:
    env = {**os.environ, "CLICKHOUSE_URL": f"chdb://{tmp_path / 'clickhouse'}", "LOG_LEVEL": "ERROR"}
    result = subprocess.run(
        [sys.executable, "-m", "consumers", "audit"],
        capture_output=True,
        text=True,
        env=env,
        cwd=project_root,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "belongs to the audit read side" in result.stderr
