"""Consumer lag measured from outside the group (consumers/lag.py): end offset minus committed offset, per group,
topic and partition, also while none of the group's consumers runs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import REGISTRY

from consumers.lag import ConsumerLagMonitor, lag_of
from infra.kafka_topics import TopicSettings, delete_topics, ensure_topics
from ingress.settings import IngressSettings
from tests.conftest import run_topic


def test_lag_counts_from_the_commit_or_from_the_start() -> None:
    assert lag_of(end=120, committed=100, beginning=0) == 20
    assert lag_of(end=120, committed=None, beginning=30) == 90  # never committed: everything retained is unread
    assert lag_of(end=120, committed=-1, beginning=0) == 120
    assert lag_of(end=100, committed=100, beginning=0) == 0
    assert lag_of(end=100, committed=105, beginning=0) == 0  # a commit past a truncated end is never negative


@pytest.fixture
async def topic(settings: IngressSettings) -> AsyncIterator[str]:
    name = run_topic(f"lag.{uuid.uuid4().hex[:10]}")
    await ensure_topics(settings.kafka_bootstrap_servers, [name], TopicSettings(KAFKA_TOPIC_PARTITIONS=3))
    yield name
    await delete_topics(settings.kafka_bootstrap_servers, [name])


def gauge(group: str, topic: str, partition: int) -> float | None:
    labels = {"group": group, "topic": topic, "partition": str(partition)}
    return REGISTRY.get_sample_value("governance_consumer_lag", labels)


async def test_lag_per_partition_for_a_group_with_no_consumer_running(settings: IngressSettings, topic: str) -> None:
    bootstrap = settings.kafka_bootstrap_servers
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for _ in range(10):
            await producer.send_and_wait(topic, b"x", partition=0)
        for _ in range(4):
            await producer.send_and_wait(topic, b"x", partition=1)
    finally:
        await producer.stop()
    group, idle = f"test-lag-{uuid.uuid4().hex[:8]}", f"test-lag-idle-{uuid.uuid4().hex[:8]}"
    # The group read 7 of partition 0 and all of partition 1, committed, and stopped.
    committer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await committer.start()
    try:
        committer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        await committer.commit(
            {TopicPartition(topic, 0): OffsetAndMetadata(7, ""), TopicPartition(topic, 1): OffsetAndMetadata(4, "")}
        )
    finally:
        await committer.stop()

    monitor = ConsumerLagMonitor(bootstrap, {group: [topic], idle: [topic]})
    try:
        measured = {(m.group, m.partition): m.lag for m in await monitor.measure()}
    finally:
        await monitor.stop()
    assert measured == {(group, 0): 3, (group, 1): 0, (group, 2): 0, (idle, 0): 10, (idle, 1): 4, (idle, 2): 0}
    assert gauge(group, topic, 0) == 3
    assert gauge(group, topic, 1) == 0
    assert gauge(idle, topic, 0) == 10
