"""Scenario 19: the broker leading the decisions partition is SIGKILLed under load, in a three-broker cluster.

A KRaft cluster of the test's own (``infra/local/kafka_cluster.py``: three nodes, each broker and controller, on
loopback ports of their own), the project's topics created on it with 3 replicas and ``min.insync.replicas=2``,
and the real processes of ``harness.ingress`` pointed at all three brokers. A steady load of checks runs for
``DURATION_S``; a third of the way in, the node leading the partition the customer's decisions go to is killed
(SIGKILL: no controlled shutdown, no leader handover), and the load goes on against the two that are left. Then:
every decision answered 200 is in ClickHouse exactly once (lost = 0, dup = 0), and no check got a 5xx; a 503 or
429 would be allowed only with the caller told (``Retry-After``), and is counted.

``make test`` runs it (``GOVERNANCE_CLUSTER_TESTS=1``; about 80 s); ``make test-cluster`` runs it alone, and a plain
``pytest`` skips it unless given ``-m cluster``: three more JVMs are heavy beside other work.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from infra.kafka_topics import TopicSettings, ensure_topics
from infra.local.kafka_cluster import KafkaCluster, kafka_cluster
from ingress.settings import IngressSettings
from tests.conftest import insert_admin_key, insert_customer
from tests.support.reliability import (
    background,
    figures,
    ingress,
    isolated_env,
    metric,
    settle,
    steady_load,
    wait_ready,
)

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.slow,
    pytest.mark.skipif(
        "'cluster' not in (config.getoption('markexpr') or '') and os.environ.get('GOVERNANCE_CLUSTER_TESTS') != '1'",
        reason="three-broker cluster scenario: run with -m cluster (make test-cluster)",
    ),
]

RATE = 50  # checks per second, from one client
DURATION_S = 30
KILL_AT_S = 10  # a third of the way in
REPLICAS = 3
MIN_INSYNC = 2
PARTITIONS = 6
TOPIC_ENV = {
    "KAFKA_TOPIC_PARTITIONS": str(PARTITIONS),
    "KAFKA_REPLICATION_FACTOR": str(REPLICAS),
    "KAFKA_MIN_INSYNC_REPLICAS": str(MIN_INSYNC),
}


async def _publish_outcomes(url: str) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        text = (await http.get("/metrics")).text
    return {
        o: metric(text, "governance_decision_publish_total", f'outcome="{o}"') for o in ("kafka", "spool", "failed")
    }


async def _spool_depth(url: str) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        return int((await http.get("/ready")).json()["components"]["kafka"]["spool_depth"])


async def _records_per_partition(bootstrap: str, topic: str) -> dict[int, int]:
    """partition -> records on it (end offsets), for the partitions that hold any."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {tp.partition: end for tp, end in ends.items() if end > 0}


async def _busy_partition(cluster: KafkaCluster, topic: str, timeout_s: float = 30.0) -> int:
    """The partition the load's decisions go to (one customer: one key, one partition)."""
    deadline = time.monotonic() + timeout_s
    while not (counts := await _records_per_partition(cluster.bootstrap, topic)):
        assert time.monotonic() < deadline, f"no decision on {topic} within {timeout_s:.0f} s"
        await asyncio.sleep(0.5)
    return max(counts, key=lambda p: counts[p])


async def _first_ack_after(url: str, acked_at_kill: float, timeout_s: float = 60.0) -> float:
    """Seconds until the ingress's producer is acknowledged by Kafka again (its ``kafka`` outcome grows)."""
    started = time.monotonic()
    while (await _publish_outcomes(url))["kafka"] <= acked_at_kill:
        assert time.monotonic() - started < timeout_s, f"no Kafka acknowledgement {timeout_s:.0f} s after the kill"
        await asyncio.sleep(0.2)
    return time.monotonic() - started


@pytest.mark.timeout(600)
async def test_19_leader_broker_killed_under_load_every_200_stored_once(
    settings: IngressSettings, migrated: str, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    customer = await insert_customer(pg_pool, tier="pro")
    admin_key = await insert_admin_key(pg_pool)
    async with kafka_cluster(tmp_path / "cluster") as cluster:
        env = isolated_env(KAFKA_BOOTSTRAP_SERVERS=cluster.bootstrap, **TOPIC_ENV)
        topic = env["DECISIONS_TOPIC"]
        names = [env["DECISIONS_TOPIC"], env["DLQ_TOPIC"], env["ALERTS_TOPIC"], env["SIGNALS_TOPIC"]]
        await ensure_topics(
            cluster.bootstrap,
            names,
            TopicSettings(
                KAFKA_TOPIC_PARTITIONS=PARTITIONS,
                KAFKA_REPLICATION_FACTOR=REPLICAS,
                KAFKA_MIN_INSYNC_REPLICAS=MIN_INSYNC,
            ),
        )
        layout = await cluster.partitions(topic)
        assert len(layout) == PARTITIONS
        assert all(len(p["replicas"]) == REPLICAS and len(p["isr"]) == REPLICAS for p in layout.values()), layout
        assert (await cluster.topic_config(topic))["min.insync.replicas"] == str(MIN_INSYNC)

        with ingress(settings, tmp_path / "server", **env) as server:
            await wait_ready(server.url)
            async with background(steady_load(server.url, customer.key, rate=RATE, duration_s=DURATION_S)) as load:
                await asyncio.sleep(KILL_AT_S)
                partition = await _busy_partition(cluster, topic)
                at_kill = await _publish_outcomes(server.url)
                killed = await cluster.kill_leader(topic, partition)
                killed_at = time.monotonic()
                new_leader = await cluster.wait_for_new_leader(topic, partition, killed)
                leader_moved_s = time.monotonic() - killed_at
                acks_back_s = await _first_ack_after(server.url, at_kill["kafka"]) + leader_moved_s
                tally = await load
            after_load = await _publish_outcomes(server.url)
            count = await settle(server.url, admin_key, customer.id, tally.event_ids, timeout=120)
            left_in_spool = await _spool_depth(server.url)
            isr_after = (await cluster.partitions(topic))[partition]["isr"]

    told = tally.retry_after.get("with", 0)
    figures(
        19,
        "three-broker cluster, the decisions partition's leader SIGKILLed under load",
        load=f"{RATE}/s x {DURATION_S}s",
        cluster=f"{len(cluster.nodes)} KRaft nodes, topics RF={REPLICAS} min.insync.replicas={MIN_INSYNC}",
        faults=f"SIGKILL of node {killed}, leader of the customer's decisions partition {partition}, at {KILL_AT_S}s",
        answered=tally.answered(),
        answered_503_with_retry_after=told,
        new_leader=new_leader,
        isr_after=isr_after,
        leader_moved_s=round(leader_moved_s, 1),
        kafka_acks_back_s=round(acks_back_s, 1),
        acked_by_kafka=f"{after_load['kafka']:.0f}",
        spooled=f"{after_load['spool']:.0f}",
        p50_ms=round(tally.percentile(50)),
        p99_ms=round(tally.percentile(99)),
        max_ms=round(max(tally.latencies_ms, default=0)),
        lost=count.lost,
        dup=count.dup,
        settled_s=count.settle_s,
    )
    assert set(tally.statuses) <= {"200", "503", "429"}, tally.answered()  # no 5xx, no cut connection
    assert tally.server_errors() == 0, tally.answered()
    assert tally.of(503) == told, tally.retry_after  # a 503 only with Retry-After: the caller was told
    assert tally.of(200) > 0
    assert killed != new_leader
    assert left_in_spool == 0
    assert count.lost == 0, count
    assert count.dup == 0, count
