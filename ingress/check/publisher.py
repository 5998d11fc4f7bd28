"""Publishing decision events: the response waits until Kafka acknowledged the event or it is spooled on disk.

``publish`` gives Kafka a deadline to acknowledge (idempotent producer, ``acks=all``): ``ack_timeout_s``, or, while
the broker is acknowledging (an ack within the last ``healthy_s``), three times the p99 of its recent acks, at most
``max_ack_wait_s``: the spool is for a broker that is really down, not for a slow ack on a busy box (where acks of
0.5-1 s were measured at 200 checks/s and spooled a large share of decisions, each an fsync). When Kafka errors or
misses the deadline, the event goes to the durable spool and the relay sends it later. When the spool cannot take it
either (full, or its disk failing), ``PublishUnavailable`` is raised and the caller answers 503: no decision is
ever returned without a durable record of it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
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
        max_ack_wait_s: float = 5.0,
        healthy_s: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._broker = broker
        self.spool = spool
        self.topic = topic
        self._ack_timeout = ack_timeout_s
        self._max_wait = max(max_ack_wait_s, ack_timeout_s)
        self._healthy_s = healthy_s
        self._mono = monotonic
        self._recent: deque[float] = deque(maxlen=512)  # seconds each of the latest acks took
        self._last_ack = -float("inf")
        self._stretched: float | None = None
        self._acks_seen = 0
        self.stats = PublishStats()

    def observe_ack(self, seconds: float) -> None:
        """Note how long an acknowledgement took (the deadline is worked out again from time to time)."""
        self._recent.append(seconds)
        self._last_ack = self._mono()
        self._acks_seen += 1
        if self._acks_seen < 64 or self._acks_seen % 64 == 0:
            self._stretched = None

    def deadline_s(self) -> float:
        """How long this publish waits for Kafka: longer only while the broker is acknowledging, to fit its acks."""
        if not self._recent or self._mono() - self._last_ack > self._healthy_s:
            return self._ack_timeout
        if self._stretched is None:  # worked out again every 64 acks, not on every publish
            ordered = sorted(self._recent)
            p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
            self._stretched = min(self._max_wait, max(self._ack_timeout, 3 * p99))
        return self._stretched

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
            deadline = self.deadline_s()
            try:
                async with asyncio.timeout(deadline):
                    await broker.publish(value, topic=self.topic, key=key, headers=headers)
            except Exception as exc:  # noqa: BLE001 - any failure to get an ack means: spool it
                log.warning("Kafka did not acknowledge within %.2fs (%s); spooling", deadline, type(exc).__name__)
            else:
                took = time.perf_counter() - started
                self.observe_ack(took)
                self.stats.acked += 1
                self.stats.last_latency_ms = took * 1000
                return "kafka"
        try:
            await asyncio.to_thread(self.spool.write, self.topic, key, headers, value)
        except (SpoolFull, OSError) as exc:
            self.stats.failed += 1
            log.exception("event could not be spooled: %s", type(exc).__name__)
            raise PublishUnavailable(str(exc)) from exc
        self.stats.spooled += 1
        return "spool"
