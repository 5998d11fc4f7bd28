"""Recorded once, through the audit writer's own failures: killed between insert and commit, ClickHouse refusing
writes for 20 s, a poison record on the topic. Scenarios 4, 5 and 6 of docs/reliability.md.

Each runs a real ingress process (its embedded ClickHouse and in-process audit writer) on topics and an audit group
of its own on the shared Kafka. Faults are injected at the writer's ClickHouse client by
``tests/reliability/faulty_read_side.py``, a test-side launcher of ``python -m ingress.audit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from ingress.settings import IngressSettings
from schemas import topics
from tests.conftest import insert_admin_key, insert_customer
from tests.support.audit import read_topic
from tests.support.reliability import (
    background,
    ensure_topics,
    figures,
    group_lag,
    ingress,
    isolated_env,
    settle,
    steady_load,
    wait_ready,
)

pytestmark = pytest.mark.slow

RATE = 20
FAULTY = "tests.reliability.faulty_read_side"


@pytest.mark.timeout(180)
async def test_04_writer_killed_between_insert_and_commit_stores_each_decision_once(
    settings: IngressSettings, migrated: str, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    customer = await insert_customer(pg_pool, tier="pro")
    admin_key = await insert_admin_key(pg_pool)
    bootstrap = settings.kafka_bootstrap_servers
    trigger = tmp_path / "exit-before-commit"
    env = isolated_env(FAULT_EXIT_BEFORE_COMMIT_FILE=str(trigger))
    await ensure_topics(bootstrap, env["DECISIONS_TOPIC"], env["DLQ_TOPIC"])
    state = tmp_path / "server"
    stop = asyncio.Event()
    with ingress(settings, state, audit_module=FAULTY, **env) as doomed:
        await wait_ready(doomed.url)
        async with background(
            steady_load(doomed.url, customer.key, rate=RATE, duration_s=60, stop=stop, timeout_s=5)
        ) as load:
            await asyncio.sleep(4)
            trigger.touch()  # the next commit, right after an insert, ends the process
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(doomed.read_side.wait, 20)
            stop.set()
            first = await load
        assert doomed.read_side.poll() == 137, "the writer never reached a commit"
    inserted_before_kill = int(await asyncio.to_thread(Path(f"{trigger}.fired").read_text))
    total, uncommitted = await group_lag(bootstrap, env["AUDIT_GROUP_ID"], env["DECISIONS_TOPIC"])
    trigger.unlink()
    # Restarted on the same state folder (its ClickHouse) and group: the uncommitted batch is delivered again.
    with ingress(settings, state, **env) as restarted:
        second = await steady_load(restarted.url, customer.key, rate=RATE, duration_s=5)
        count = await settle(restarted.url, admin_key, customer.id, first.event_ids + second.event_ids, timeout=60)
        _, lag_after = await group_lag(bootstrap, env["AUDIT_GROUP_ID"], env["DECISIONS_TOPIC"])
    tally = first.add(second)
    figures(
        4,
        "audit writer killed between insert and commit",
        load=f"{RATE}/s x {tally.seconds:.0f}s (before and after the kill)",
        faults="os._exit(137) in the writer's commit, right after its insert; ingress restarted on the same state",
        answered=tally.answered(),
        rows_inserted_before_kill=inserted_before_kill,
        uncommitted_at_kill=f"{uncommitted} of {total}",
        rows=count.rows,
        unique_event_ids=count.stored,
        lost=count.lost,
        dup=count.dup,
        lag_after=lag_after,
    )
    assert inserted_before_kill > 0
    assert uncommitted > 0, "the kill came after a commit: nothing to redeliver"
    assert count.lost == 0, count
    assert count.dup == 0, count
    assert lag_after == 0


@pytest.mark.timeout(180)
async def test_05_clickhouse_refusing_writes_20s_nothing_committed_lag_drains_dlq_empty_none_lost(
    settings: IngressSettings, migrated: str, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    customer = await insert_customer(pg_pool, tier="pro")
    admin_key = await insert_admin_key(pg_pool)
    bootstrap = settings.kafka_bootstrap_servers
    fault = tmp_path / "clickhouse-down"
    # Backoff capped at 2 s so the drain after the fault is quick to observe (the default cap is 30 s).
    env = isolated_env(FAULT_CLICKHOUSE_DOWN_FILE=str(fault), AUDIT_BACKOFF_INITIAL_S="0.2", AUDIT_BACKOFF_MAX_S="2")
    topic, group = env["DECISIONS_TOPIC"], env["AUDIT_GROUP_ID"]
    await ensure_topics(bootstrap, topic, env["DLQ_TOPIC"])
    before_s, down_s, total_s = 5, 20, 30
    samples: list[tuple[float, int, int]] = []  # (seconds into the fault, committed, lag)
    with ingress(settings, tmp_path / "server", audit_module=FAULTY, **env) as server:
        await wait_ready(server.url)
        async with background(steady_load(server.url, customer.key, rate=RATE, duration_s=total_s)) as load:
            await asyncio.sleep(before_s)
            fault.touch()
            began = time.monotonic()
            while time.monotonic() - began < down_s:
                await asyncio.sleep(2)
                total, lag = await group_lag(bootstrap, group, topic)
                samples.append((round(time.monotonic() - began, 1), total - lag, lag))
            fault.unlink()
            recovered_at = time.monotonic()
            tally = await load
        drained_in = None
        for _ in range(120):  # bounded: 60 s
            _, lag = await group_lag(bootstrap, group, topic)
            if lag == 0:
                drained_in = round(time.monotonic() - recovered_at, 1)
                break
            await asyncio.sleep(0.5)
        count = await settle(server.url, admin_key, customer.id, tally.event_ids, timeout=60)
    dlq_total, _ = await group_lag(bootstrap, group, env["DLQ_TOPIC"])
    # The first sample may still see the commit of a batch inserted just before the fault began.
    steady = [committed for at, committed, _ in samples if at >= 3]
    figures(
        5,
        "ClickHouse refusing writes for 20 s (injected at the writer's client)",
        load=f"{RATE}/s x {total_s}s",
        faults=f"every insert raises DatabaseError for {down_s}s",
        answered=tally.answered(),
        committed_during_fault=f"{min(steady)}..{max(steady)}",
        lag_during_fault=[lag for _, _, lag in samples],
        drained_s_after_fault=drained_in,
        dlq=dlq_total,
        lost=count.lost,
        dup=count.dup,
    )
    assert tally.statuses == {"200": tally.sent}, tally.answered()  # checks never wait for ClickHouse
    assert max(steady) == min(steady), f"offsets committed while ClickHouse refused writes: {samples}"
    assert samples[-1][2] > samples[0][2], f"lag did not grow: {samples}"
    assert drained_in is not None, "lag did not drain"
    assert dlq_total == 0
    assert count.lost == 0, count
    assert count.dup == 0, count


async def test_06_poison_record_goes_to_the_dlq_with_its_origin_and_the_stream_continues(
    settings: IngressSettings, migrated: str, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    customer = await insert_customer(pg_pool, tier="pro")
    admin_key = await insert_admin_key(pg_pool)
    bootstrap = settings.kafka_bootstrap_servers
    env = isolated_env()
    topic, dlq = env["DECISIONS_TOPIC"], env["DLQ_TOPIC"]
    await ensure_topics(bootstrap, topic, dlq)
    headers = [(topics.HEADER_EVENT_TYPE, b"decision"), (topics.HEADER_SCHEMA_VERSION, b"1")]
    poison = [
        b"{definitely not json",
        json.dumps({"event_id": str(uuid.uuid4()), "risk_score": 900}).encode(),  # JSON, not a DecisionEvent
    ]
    with ingress(settings, tmp_path / "server", **env) as server:
        await wait_ready(server.url)
        async with background(steady_load(server.url, customer.key, rate=RATE, duration_s=10)) as load:
            await asyncio.sleep(3)
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
            await producer.start()
            try:
                # Keyed like the customer's decisions: the same partition must keep flowing after it.
                origins = [
                    await producer.send_and_wait(topic, value, key=str(customer.id).encode(), headers=headers)
                    for value in poison
                ]
            finally:
                await producer.stop()
            tally = await load
        count = await settle(server.url, admin_key, customer.id, tally.event_ids, timeout=60)
    dead = await read_topic(bootstrap, dlq, expected=len(poison))
    found = {}
    for record in dead:
        record_headers = {k: v.decode() for k, v in record.headers}
        body = json.loads(record.value)
        found[(int(record_headers["dlq-origin-partition"]), int(record_headers["dlq-origin-offset"]))] = (
            record_headers,
            body,
        )
    expected = {(meta.partition, meta.offset) for meta in origins}
    figures(
        6,
        "poison records on the decisions topic",
        load=f"{RATE}/s x 10s",
        faults="2 records (invalid JSON, schema violation) produced mid-load on the customer's partition",
        answered=tally.answered(),
        dlq=len(dead),
        reasons=sorted(body["reason"] for _, body in found.values()),
        lost=count.lost,
        dup=count.dup,
    )
    assert set(found) == expected
    for record_headers, body in found.values():
        assert record_headers["dlq-origin-topic"] == topic
        assert record_headers["dlq-consumer-group"] == env["AUDIT_GROUP_ID"]
        assert body["origin"]["topic"] == topic
    assert sorted(body["reason"] for _, body in found.values()) == ["invalid_json", "schema_violation"]
    assert tally.statuses == {"200": tally.sent}
    assert count.lost == 0, count  # decisions after the poison, on its partition, were written too
    assert count.dup == 0, count
