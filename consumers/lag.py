"""Consumer lag of our groups, measured from outside them: ``governance_consumer_lag{group, topic, partition}``.

Lag is the partition's end offset minus the group's committed offset, read from Kafka itself (the group
coordinator's committed offsets and the partition leaders' end offsets). It is measured by an observer, not by
the consumers of the group, because the case that matters is a group whose consumers are stopped, stuck or
crashed: they cannot report their own lag. A partition the group never committed counts from the partition's
start (the groups read from the earliest offset).

``python -m consumers`` runs one monitor for the audit writer's and the alerting consumer's groups, wherever
those consumers run. With several consumers processes each reports the same values; the dashboard and the alert
take the maximum per partition before summing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from infra import pipeline_metrics
from infra.kafka import kafka_client_options

log = logging.getLogger("consumers.lag")


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    lag: int


def lag_of(end: int, committed: int | None, beginning: int) -> int:
    """Messages between the end of a partition and the group's position in it (never negative)."""
    position = beginning if committed is None or committed < 0 else committed
    return max(end - position, 0)


class ConsumerLagMonitor:
    """Every ``interval_s``, read each group's committed offsets and the end offsets of the topics it reads, and
    set ``governance_consumer_lag``. Run with ``start()`` and ``stop()``; ``measure()`` does one round."""

    def __init__(
        self, bootstrap_servers: str, groups: Mapping[str, Sequence[str]], *, interval_s: float = 10.0
    ) -> None:
        self._bootstrap = bootstrap_servers.split(",")
        self._groups = {group: tuple(topics) for group, topics in groups.items()}
        self._interval = interval_s
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self._bootstrap, client_id="governance-lag", **kafka_client_options()
            )
            await admin.start()
            self._admin = admin
        if self._offsets is None:
            # No group: it only asks partition leaders for their offsets, and never joins or commits.
            offsets = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap, client_id="governance-lag", group_id=None, **kafka_client_options()
            )
            await offsets.start()
            self._offsets = offsets
        return self._admin, self._offsets

    async def measure(self) -> list[PartitionLag]:
        admin, offsets = await self._clients()
        topics = sorted({t for ts in self._groups.values() for t in ts})
        partitions: list[TopicPartition] = []
        for described in await admin.describe_topics(topics):
            if described.get("error_code", 0) == 0:
                partitions += [TopicPartition(described["topic"], p["partition"]) for p in described["partitions"]]
        if not partitions:
            return []
        ends = await offsets.end_offsets(partitions)
        beginnings = await offsets.beginning_offsets(partitions)
        found = []
        for group, group_topics in self._groups.items():
            committed = await admin.list_consumer_group_offsets(group)
            for tp in partitions:
                if tp.topic not in group_topics:
                    continue
                done = committed.get(tp)
                lag = lag_of(ends[tp], done.offset if done is not None else None, beginnings[tp])
                pipeline_metrics.CONSUMER_LAG.labels(group, tp.topic, str(tp.partition)).set(lag)
                found.append(PartitionLag(group, tp.topic, tp.partition, lag))
        return found

    async def _run(self) -> None:
        while True:
            try:
                await self.measure()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Kafka away: keep the last values, try again
                log.warning("consumer lag not measured: %s", type(exc).__name__)
                await self._close_clients()
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="consumer-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._close_clients()

    async def _close_clients(self) -> None:
        admin, offsets = self._admin, self._offsets
        self._admin = self._offsets = None
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()
        if offsets is not None:
            with contextlib.suppress(Exception):
                await offsets.stop()
