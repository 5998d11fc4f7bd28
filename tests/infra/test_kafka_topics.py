"""The project creates its topics (infra/kafka_topics.py): configured partitions, grown when fewer, never left to the
broker's auto-creation; every process that produces or consumes does it at start."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from consumers.alerts.consumer import AlertingConsumer
from consumers.alerts.settings import AlertingSettings
from consumers.audit.writer import AuditWriter
from consumers.settings import AuditSettings
from infra import kafka_topics
from infra.kafka_topics import TopicSettings, delete_topics, ensure_topics, partition_counts, project_topics
from ingress.resources import Resources
from ingress.settings import IngressSettings
from tests.conftest import run_topic


@pytest.fixture
async def admin(settings: IngressSettings) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await client.start()
    yield client
    await client.close()


@pytest.fixture
async def topic_prefix(settings: IngressSettings) -> AsyncIterator[str]:
    """A prefix for this test's topics; every topic under it is deleted afterwards."""
    prefix = run_topic(f"topics.{uuid.uuid4().hex[:10]}")
    yield prefix
    client = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await client.start()
    try:
        mine = [t for t in await client.list_topics() if t.startswith(prefix)]
    finally:
        await client.close()
    await delete_topics(settings.kafka_bootstrap_servers, mine)


async def settled_counts(admin: AIOKafkaAdminClient, names: list[str], expected: dict[str, int]) -> dict[str, int]:
    """Partition counts once the metadata shows ``expected`` (it follows a change within moments), or after 20 s."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        counts = await partition_counts(admin, names)
        if counts == expected or asyncio.get_running_loop().time() > deadline:
            return counts
        await asyncio.sleep(0.2)


def _names(prefix: str) -> IngressSettings:
    return IngressSettings.model_validate(
        {
            "ENVIRONMENT": "test",
            "DECISIONS_TOPIC": f"{prefix}.decisions.v1",
            "ALERTS_TOPIC": f"{prefix}.alerts.v1",
            "SIGNALS_TOPIC": f"{prefix}.signals.v1",
            "DLQ_TOPIC": f"{prefix}.decisions.dlq",
        }
    )


async def test_missing_topics_are_created_with_the_configured_partitions(
    settings: IngressSettings, admin: AIOKafkaAdminClient, topic_prefix: str
) -> None:
    names = [f"{topic_prefix}.a", f"{topic_prefix}.b"]
    states = await ensure_topics(settings.kafka_bootstrap_servers, names, TopicSettings())
    assert {s.name for s in states if s.created} == set(names)
    expected = dict.fromkeys(names, 6)
    assert await settled_counts(admin, names, expected) == expected


async def test_a_topic_with_fewer_partitions_is_grown_and_a_larger_one_left_alone(
    settings: IngressSettings, admin: AIOKafkaAdminClient, topic_prefix: str
) -> None:
    small, large = f"{topic_prefix}.small", f"{topic_prefix}.large"
    await admin.create_topics([NewTopic(small, 1, 1), NewTopic(large, 8, 1)])
    states = {s.name: s for s in await ensure_topics(settings.kafka_bootstrap_servers, [small, large])}
    assert states[small].grown_from == 1
    assert states[large].grown_from is None
    expected = {small: 6, large: 8}
    assert await settled_counts(admin, [small, large], expected) == expected


async def test_processes_starting_together_all_succeed(
    settings: IngressSettings, admin: AIOKafkaAdminClient, topic_prefix: str
) -> None:
    """Several processes ensure the same topics at once (API_WORKERS, consumers, workers): none fails."""
    names = [f"{topic_prefix}.shared.{n}" for n in range(3)]
    await admin.create_topics([NewTopic(names[0], 2, 1)])
    fresh = TopicSettings(KAFKA_TOPIC_PARTITIONS=4)

    async def one() -> None:
        kafka_topics._ensured.clear()  # as separate processes, each asks the controller itself
        await ensure_topics(settings.kafka_bootstrap_servers, names, fresh)

    await asyncio.gather(*(one() for _ in range(4)))
    expected = dict.fromkeys(names, 4)
    assert await settled_counts(admin, names, expected) == expected


def test_replicated_topics_ask_for_min_insync_replicas() -> None:
    assert TopicSettings().topic_configs() == {}
    replicated = TopicSettings(KAFKA_REPLICATION_FACTOR=3)
    assert replicated.kafka_min_insync_replicas == 2
    assert replicated.topic_configs() == {"min.insync.replicas": "2"}


async def test_ingress_creates_every_project_topic_before_producing(
    admin: AIOKafkaAdminClient, topic_prefix: str, settings: IngressSettings
) -> None:
    names = _names(topic_prefix)
    own = names.model_copy(update={"kafka_bootstrap_servers": settings.kafka_bootstrap_servers})
    resources = await Resources.open(own)
    try:
        assert resources.broker_connected
        expected = dict.fromkeys(project_topics(own), 6)
        counts = await settled_counts(admin, project_topics(own), expected)
    finally:
        await resources.close()
    assert counts == expected


async def test_audit_writer_creates_the_topics_it_reads_and_dead_letters_to(
    admin: AIOKafkaAdminClient, topic_prefix: str, settings: IngressSettings, clickhouse: object
) -> None:
    audit = AuditSettings.derive(
        _names(topic_prefix).model_copy(
            update={
                "kafka_bootstrap_servers": settings.kafka_bootstrap_servers,
                "clickhouse_url": settings.clickhouse_url,
            }
        ),
        AUDIT_GROUP_ID=f"{topic_prefix}.group",
    )
    writer = AuditWriter(audit, clickhouse)  # type: ignore[arg-type]
    await writer.start()
    try:
        expected = {audit.decisions_topic: 6, audit.dlq_topic: 6}
        counts = await settled_counts(admin, list(expected), expected)
    finally:
        await writer.stop()
    assert counts == expected


async def test_alerting_consumer_creates_the_topics_before_joining(
    admin: AIOKafkaAdminClient, topic_prefix: str, settings: IngressSettings, migrated: str
) -> None:
    alerting = AlertingSettings.derive(
        _names(topic_prefix).model_copy(
            update={"kafka_bootstrap_servers": settings.kafka_bootstrap_servers, "database_url": migrated}
        ),
        ALERTS_GROUP_ID=f"{topic_prefix}.alerts-group",
    )
    consumer = AlertingConsumer(alerting)
    await consumer.start()
    try:
        expected = dict.fromkeys(project_topics(alerting), 6)
        counts = await settled_counts(admin, list(expected), expected)
    finally:
        await consumer.stop()
    assert counts == expected
