"""The project's Kafka topics, created by the project: every producing or consuming process calls
:func:`ensure_topics` at start, before its first publish or subscription.

A topic created by the broker on first use gets the broker's ``num.partitions`` (often 1), and a group can never
have more busy consumers than the topic has partitions. So the decisions, alerts, signals and dead-letter topics
are created here with ``KAFKA_TOPIC_PARTITIONS`` partitions (default 6), ``KAFKA_REPLICATION_FACTOR`` replicas
(default 1, the single local broker; 3 in production) and, with more than one replica,
``min.insync.replicas=KAFKA_MIN_INSYNC_REPLICAS`` (default 2), so an ``acks=all`` write survives the loss of a
broker.

A topic that already exists with fewer partitions is grown to the configured count. Kafka cannot shrink a topic,
and growing one changes which partition a key hashes to: a customer's events written before the change stay in
the old partition, those after it may go to another, so ordering per customer holds before and after the change
but not across it (docs/topics.md, "Partitions"). A topic with more partitions than configured is left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.errors import KafkaError
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.kafka import kafka_client_options
from infra.settings import CommonSettings

log = logging.getLogger("infra.kafka_topics")

# Kafka's error code for "topic already exists", and for "topic's partitions already at that count".
_TOPIC_ALREADY_EXISTS = 36
_INVALID_PARTITIONS = 37
# Topic or cluster authorization failed: the client's account may not create or alter topics.
_NOT_ALLOWED = frozenset({29, 31})


class TopicSettings(BaseSettings):
    """How the project's topics are created (named as the environment variables of docker-compose.yml)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    kafka_topic_partitions: int = Field(6, alias="KAFKA_TOPIC_PARTITIONS", ge=1, le=10_000)
    kafka_replication_factor: int = Field(1, alias="KAFKA_REPLICATION_FACTOR", ge=1, le=32)
    kafka_min_insync_replicas: int = Field(2, alias="KAFKA_MIN_INSYNC_REPLICAS", ge=1, le=32)

    def topic_configs(self) -> dict[str, str]:
        if self.kafka_replication_factor == 1:
            return {}  # one replica: min.insync.replicas above 1 would refuse every acks=all write
        return {"min.insync.replicas": str(min(self.kafka_min_insync_replicas, self.kafka_replication_factor))}


@dataclass(frozen=True)
class TopicState:
    name: str
    partitions: int
    created: bool = False
    grown_from: int | None = None


# Topics this process has already ensured (per bootstrap servers): an app started again in the same process, as
# in tests, does not ask the controller again.
_ensured: set[tuple[str, str, int]] = set()


async def ensure_topics(
    bootstrap_servers: str,
    names: Iterable[str],
    settings: TopicSettings | None = None,
    *,
    timeout_s: float = 15.0,
) -> list[TopicState]:
    """Create the missing topics among ``names`` and grow those with fewer partitions than configured.

    Idempotent, and safe when several processes run it at once. Raises ``KafkaError`` (or ``TimeoutError``) when
    Kafka does not answer; the caller treats that as Kafka being unavailable.
    """
    settings = settings or TopicSettings()
    wanted = settings.kafka_topic_partitions
    pending = sorted({n for n in names if (bootstrap_servers, n, wanted) not in _ensured})
    if not pending:
        return []
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers.split(","),
        client_id="governance-topics",
        request_timeout_ms=int(timeout_s * 1000),
        **kafka_client_options(),
    )
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            states = await _ensure(admin, pending, settings)
    finally:
        with contextlib.suppress(Exception):  # also after a start that failed half-way
            await admin.close()
    for state in states:
        _ensured.add((bootstrap_servers, state.name, wanted))
        if state.created:
            log.info("created topic %s with %d partitions", state.name, state.partitions)
        elif state.grown_from is not None:
            log.warning(
                "grew topic %s from %d to %d partitions; per-customer ordering holds within each side of the change",
                state.name,
                state.grown_from,
                state.partitions,
            )
    return states


async def _ensure(admin: AIOKafkaAdminClient, names: list[str], settings: TopicSettings) -> list[TopicState]:
    wanted = settings.kafka_topic_partitions
    response = await admin.create_topics(
        [
            NewTopic(
                name,
                num_partitions=wanted,
                replication_factor=settings.kafka_replication_factor,
                topic_configs=settings.topic_configs(),
            )
            for name in names
        ]
    )
    created, refused = set(), set()
    for error in response.topic_errors:
        name, code = error[0], error[1]
        if code == 0:
            created.add(name)
        elif code in _NOT_ALLOWED:
            refused.add(name)
        elif code != _TOPIC_ALREADY_EXISTS:
            message = error[2] if len(error) > 2 else ""
            raise KafkaError(f"creating topic {name} failed: error {code} {message}")
    existing = await _described(admin, sorted(set(names) - created - refused))
    if refused:
        # An account without the right to create topics: the operator creates them (docs/topics.md, "Partitions").
        # Not a reason to stop producing to the ones that exist.
        existing.update(await partition_counts(admin, sorted(refused)))
        log.error(
            "not allowed to create or check topics %s; create them with %d partitions",
            sorted(refused - set(existing)) or sorted(refused),
            wanted,
        )
    grow = {name: count for name, count in existing.items() if count < wanted}
    for name in sorted(grow):
        try:
            await admin.create_partitions({name: NewPartitions(wanted)})
        except KafkaError as exc:
            errno = getattr(exc, "errno", None)
            if errno in _NOT_ALLOWED:
                log.error("not allowed to grow topic %s from %d to %d partitions", name, grow[name], wanted)
                del grow[name]
            elif errno != _INVALID_PARTITIONS:  # 37: another process grew it first
                raise
    states = [TopicState(name, wanted, created=True) for name in sorted(created)]
    for name, count in sorted(existing.items()):
        if name in grow:
            states.append(TopicState(name, wanted, grown_from=count))
        else:
            states.append(TopicState(name, count))
    return states


async def _described(admin: AIOKafkaAdminClient, names: list[str], *, wait_s: float = 10.0) -> dict[str, int]:
    """Partition counts of topics known to exist: a topic created moments ago by another process may not be in
    the metadata yet, so ask again, briefly."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    counts = await partition_counts(admin, names)
    while len(counts) < len(names) and loop.time() < deadline:
        await asyncio.sleep(0.2)
        counts = await partition_counts(admin, names)
    missing = sorted(set(names) - set(counts))
    if missing:
        raise KafkaError(f"topics {missing} exist but are not in the cluster metadata")
    return counts


async def partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Partitions per topic, for topics that exist (missing ones are left out)."""
    if not names:
        return {}
    counts = {}
    for topic in await admin.describe_topics(names):
        if topic.get("error_code", 0) == 0:
            counts[topic["topic"]] = len(topic["partitions"])
    return counts


async def delete_topics(bootstrap_servers: str, names: Iterable[str], *, timeout_s: float = 15.0) -> None:
    """Delete topics (tests remove the topics they made); missing ones are ignored."""
    targets = sorted(set(names))
    if not targets:
        return
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers.split(","), client_id="governance-topics", **kafka_client_options()
    )
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            present = set(await admin.list_topics())
            doomed = [t for t in targets if t in present]
            if doomed:
                await admin.delete_topics(doomed)
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    for entry in [e for e in _ensured if e[1] in targets]:
        _ensured.discard(entry)


def project_topics(settings: CommonSettings) -> list[str]:
    """Every topic the project publishes to or reads: decisions, alerts, signals and the dead-letter topic."""
    return [settings.decisions_topic, settings.alerts_topic, settings.signals_topic, settings.dlq_topic]


async def ensure_project_topics(settings: CommonSettings, *, timeout_s: float = 15.0) -> list[TopicState]:
    return await ensure_topics(settings.kafka_bootstrap_servers, project_topics(settings), timeout_s=timeout_s)
