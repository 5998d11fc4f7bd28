"""Scenario 18: two alerting consumers in one group share the partitions; one is SIGKILLed in the middle of a stream.

Each of 24 customers sends a handful of ordinary decisions and one decision at risk 95, which is a `high_risk`
condition (default: any decision at or above 90 in the window). The stream is split in two: the first half while
both consumers run (each owns some of the 6 partitions), the second half while one of them is killed with
SIGKILL once half of that half's risky decisions are on the topic and the first of them raised, so the survivor
takes over partitions whose records the dead one had read, perhaps stored and not committed. Counted in
PostgreSQL and on the alerts topic: every condition raised exactly once (one alert, one `opened` event per
customer), none missed, no other alert.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from infra.kafka_topics import TopicSettings, delete_topics, ensure_topics
from ingress.settings import IngressSettings
from schemas import topics
from tests.conftest import insert_customer, run_topic
from tests.support.alerts import decision
from tests.support.reliability import figures
from tests.support.roles import Topics, run_role

PARTITIONS = 6
CUSTOMERS = 24
ORDINARY_PER_CUSTOMER = 5


async def _members(bootstrap: str, group: str) -> int:
    """How many consumers the group has now, as its coordinator says."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_consumer_groups([group])
        groups = described.groups  # (error_code, group_id, state, protocol_type, protocol, members[, ...])
        return len(groups[0][5]) if groups and groups[0][2] == "Stable" else -1
    finally:
        await admin.close()


async def _wait(check: Any, what: str, timeout_s: float = 120.0) -> float:
    """Poll ``check()`` until true, bounded; returns the seconds waited (a figure, never asserted)."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < timeout_s, f"{what} not within {timeout_s:.0f} s"
        await asyncio.sleep(0.5)
    return time.monotonic() - started


def _stream(customer_ids: list[uuid.UUID]) -> list[Any]:
    """Round-robin over the customers, so every partition gets records throughout; the risky one in the middle."""
    events = []
    for i in range(ORDINARY_PER_CUSTOMER + 1):
        for customer_id in customer_ids:
            risky = i == ORDINARY_PER_CUSTOMER // 2
            events.append(decision(customer_id, allowed=not risky, risk=95 if risky else 10))
    return events


async def _produce(producer: AIOKafkaProducer, topic: str, events: list[Any]) -> None:
    for event in events:
        await producer.send_and_wait(
            topic,
            event.model_dump_json().encode(),
            key=str(event.customer_id).encode(),
            headers=[(topics.HEADER_EVENT_TYPE, b"decision"), (topics.HEADER_SCHEMA_VERSION, b"1")],
        )
        await asyncio.sleep(0.02)  # a steady stream, not one burst


async def _opened_on_kafka(bootstrap: str, topic: str) -> dict[str, set[str]]:
    """subject -> distinct event ids of its `opened` events on the alerts topic (copies of one id count once)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    found: dict[str, set[str]] = {}
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]  # created with them above
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    event = json.loads(record.value or b"{}")
                    if event.get("transition") == "opened":
                        found.setdefault(event["subject"], set()).add(event["event_id"])
    finally:
        await consumer.stop()
    return found


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_18_alerting_consumers_share_partitions_and_a_sigkill_loses_and_repeats_nothing(
    settings: IngressSettings, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    bootstrap = settings.kafka_bootstrap_servers
    own = Topics(run_topic(f"scale.{uuid.uuid4().hex[:10]}"))
    await ensure_topics(bootstrap, own.env.values(), TopicSettings(KAFKA_TOPIC_PARTITIONS=PARTITIONS))
    group = f"test-alerts-scale-{uuid.uuid4().hex[:8]}"
    env = {
        **own.env,
        "ALERTS_GROUP_ID": group,
        "ALERTS_TICK_S": "0.5",
        "ALERTS_RULES_REFRESH_S": "1",
        "ALERTS_PUBLISH_INTERVAL_S": "0.5",
        "ALERTS_BATCH_SIZE": "20",
        "KAFKA_TOPIC_PARTITIONS": str(PARTITIONS),
        "LOG_LEVEL": "INFO",  # the consumers log their assignments: the test reads who held what
        "PYTHONUNBUFFERED": "1",
    }
    customers = [(await insert_customer(pg_pool, tier="pro")).id for _ in range(CUSTOMERS)]
    first, second = customers[: CUSTOMERS // 2], customers[CUSTOMERS // 2 :]
    subjects = [str(c) for c in customers]

    async def opened(of: list[uuid.UUID]) -> bool:
        count = await pg_pool.fetchval(
            "SELECT count(DISTINCT customer_id) FROM alerts WHERE rule = 'high_risk' AND customer_id = ANY($1)", of
        )
        return bool(count == len(of))

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        with (
            run_role(settings, "consumers", tmp_path / "a", "alerts", **env) as a,
            run_role(settings, "consumers", tmp_path / "b", "alerts", **env) as b,
        ):

            async def both_members() -> bool:
                return await _members(bootstrap, group) == 2

            await _wait(both_members, "two members in the group")
            await _produce(producer, own.env["DECISIONS_TOPIC"], _stream(first))
            await _wait(lambda: opened(first), "the first half's alerts")
            a_owned = a.log().count("alerting assigned")
            b_owned = b.log().count("alerting assigned")

            stream = _stream(second)
            # The cut falls among the risky records: half the second half's conditions are on the topic, and being
            # handled, when one consumer dies.
            cut = (ORDINARY_PER_CUSTOMER // 2) * len(second) + len(second) // 2
            await _produce(producer, own.env["DECISIONS_TOPIC"], stream[:cut])

            async def some_raised() -> bool:
                raised = await pg_pool.fetchval(
                    "SELECT count(*) FROM alerts WHERE rule = 'high_risk' AND customer_id = ANY($1)", second
                )
                return bool(raised > 0)

            await _wait(some_raised, "a first alert of the second half", timeout_s=60)
            a.kill()  # SIGKILL: no leave-group, no commit; the coordinator notices after the session timeout
            killed_at = time.monotonic()
            killed_at_db = await pg_pool.fetchval("SELECT now()")
            await _produce(producer, own.env["DECISIONS_TOPIC"], stream[cut:])

            async def survivor_alone() -> bool:
                return await _members(bootstrap, group) == 1

            await _wait(survivor_alone, "the survivor alone in the group")
            takeover_s = time.monotonic() - killed_at
            await _wait(lambda: opened(second), "the second half's alerts")
            await asyncio.sleep(3)  # ticks and redelivered batches would show a second alert now, if any

            async def published() -> bool:
                left = await pg_pool.fetchval(
                    "SELECT count(*) FROM alert_events WHERE subject = ANY($1) AND published_at IS NULL", subjects
                )
                return bool(left == 0)

            await _wait(published, "every alert event on Kafka")
            survivor_log = b.log()
    finally:
        await producer.stop()

    rows = await pg_pool.fetch(
        "SELECT rule, subject, count(*) AS n FROM alerts WHERE subject = ANY($1) GROUP BY rule, subject", subjects
    )
    before_kill = await pg_pool.fetchval(
        "SELECT count(*) FROM alerts WHERE customer_id = ANY($1) AND opened_at < $2", second, killed_at_db
    )
    opened_events = await pg_pool.fetch(
        "SELECT subject, count(*) AS n FROM alert_events WHERE subject = ANY($1) AND transition = 'opened' "
        "GROUP BY subject",
        subjects,
    )
    on_kafka = await _opened_on_kafka(bootstrap, own.env["ALERTS_TOPIC"])
    await delete_topics(bootstrap, own.env.values())

    high_risk = {r["subject"]: r["n"] for r in rows if r["rule"] == "high_risk"}
    missed = [s for s in subjects if s not in high_risk]
    duplicated = {s: n for s, n in high_risk.items() if n != 1}
    other_rules = [(r["rule"], r["subject"]) for r in rows if r["rule"] != "high_risk"]
    opened_per_subject = {r["subject"]: r["n"] for r in opened_events}
    kafka_ids = {s: len(on_kafka.get(s, set())) for s in subjects}
    figures(
        18,
        "two alerting consumers in one group, one SIGKILLed mid-stream",
        load=f"{CUSTOMERS} customers x {ORDINARY_PER_CUSTOMER + 1} decisions on {PARTITIONS} partitions, 50/s",
        faults=f"SIGKILL of one consumer after {cut} of the second half's {len(stream)} records",
        conditions=len(subjects),
        raised=sum(high_risk.values()),
        missed=len(missed),
        duplicated=len(duplicated),
        other_alerts=len(other_rules),
        opened_events=sum(opened_per_subject.values()),
        opened_event_ids_on_kafka=sum(kafka_ids.values()),
        second_half_raised_before_kill=before_kill,
        takeover_s=round(takeover_s, 1),
        assignments_seen={"a": a_owned, "b": b_owned},
        survivor_assignments=survivor_log.count("alerting assigned"),
    )
    assert a_owned >= 1
    assert b_owned >= 1  # both consumers held partitions before the kill
    assert survivor_log.count("alerting assigned") > b_owned  # the survivor took over the dead one's partitions
    assert missed == []
    assert duplicated == {}
    assert other_rules == []
    assert all(opened_per_subject.get(s) == 1 for s in subjects), opened_per_subject
    assert all(n == 1 for n in kafka_ids.values()), kafka_ids  # each opened event on Kafka, one event id each
