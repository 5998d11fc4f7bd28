"""Publishing decision events: the response waits until Kafka acknowledged the event or it is spooled on disk.

``publish`` gives Kafka ``ack_timeout_s`` to acknowledge (idempotent producer, ``acks=all``). When Kafka errors
or is slower, the event goes to the durable spool and the relay sends it later. When the spool cannot take it
either (full, or its disk failing), ``PublishUnavailable`` is raised and the caller answers 503: no decision is
ever returned without a durable record of it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from faststream.kafka import KafkaBroker

from infra.spool import DiskSpool, SpoolFull
from schemas import topics

log = logging.getLogger("ingress.check.publisher")


class PublishUnavailable(Exception):
    """Neither Kafka nor the spool could take the event."""


@dataclass
class PublishStats:
    acked: int = 0
    spooled: int = 0
    failed: int = 0
    last_latency_ms: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)


class DecisionPublisher:
    def __init__(
        self,
        broker: Callable[[], KafkaBroker | None],
        spool: DiskSpool,
        *,
        topic: str = topics.DECISIONS,
        ack_timeout_s: float = 0.5,
    ) -> None:
        self._broker = broker
        self.spool = spool
        self.topic = topic
        self._ack_timeout = ack_timeout_s
        self.stats = PublishStats()

    @staticmethod
    def headers(event_type: str = "decision", schema_version: int = 1) -> dict[str, str]:
        return {
            topics.HEADER_EVENT_TYPE: event_type,
            topics.HEADER_SCHEMA_VERSION: str(schema_version),
            topics.HEADER_CONTENT_TYPE: "application/json",
        }

    async def publish(self, key: bytes, value: bytes, headers: dict[str, str]) -> str:
        """Return "kafka" or "spool" once the event is durable; raise PublishUnavailable otherwise."""
        started = time.perf_counter()
        broker = self._broker()
        if broker is not None:
            try:
                async with asyncio.timeout(self._ack_timeout):
                    await broker.publish(value, topic=self.topic, key=key, headers=headers)
            except Exception as exc:  # noqa: BLE001 - any failure to get an ack means: spool it
                log.warning(
                    "Kafka did not acknowledge within %.2fs (%s); spooling", self._ack_timeout, type(exc).__name__
                )
            else:
                self.stats.acked += 1
                self.stats.last_latency_ms = (time.perf_counter() - started) * 1000
                return "kafka"
        try:
            await asyncio.to_thread(self.spool.write, self.topic, key, headers, value)
        except (SpoolFull, OSError) as exc:
            self.stats.failed += 1
            log.exception("event could not be spooled: %s", type(exc).__name__)
            raise PublishUnavailable(str(exc)) from exc
        self.stats.spooled += 1
        return "spool"
