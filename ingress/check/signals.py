"""Aggregates refusals (authentication failures, rate-limit rejections) and publishes them as ``SignalEvent``s.

Recording is a dict increment on the request path; a background task flushes one event per group every
``interval_s`` to the signals topic (keyed by customer id, or "unknown"), best effort.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from faststream.kafka import KafkaBroker

from schemas import topics
from schemas.signal_event import SignalEvent

log = logging.getLogger("ingress.check.signals")

GroupKey = tuple[str, str | None, str | None, str]  # kind, customer_id, key_id, reason


class SignalRecorder:
    def __init__(
        self,
        broker: Callable[[], KafkaBroker | None],
        *,
        topic: str = topics.SIGNALS,
        interval_s: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._broker = broker
        self.topic = topic
        self._interval = interval_s
        self._clock = clock
        self._counts: Counter[GroupKey] = Counter()
        self._window_start = clock()
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self.dropped = 0

    def record(self, kind: str, *, customer_id: str | None = None, key_id: str | None = None, reason: str = "") -> None:
        self._counts[(kind, customer_id, key_id, reason)] += 1

    def drain(self) -> list[SignalEvent]:
        counts, self._counts = self._counts, Counter()
        start, end = self._window_start, self._clock()
        self._window_start = end
        return [
            SignalEvent(
                event_id=uuid.uuid4(),
                kind=kind,
                customer_id=uuid.UUID(customer) if customer else None,
                key_id=key_id,
                reason=reason,
                count=count,
                window_start=start,
                window_end=end,
            )
            for (kind, customer, key_id, reason), count in counts.items()
        ]

    async def flush(self) -> None:
        events = self.drain()
        if not events:
            return
        broker = self._broker()
        if broker is None:
            self.dropped += len(events)
            return
        for event in events:
            try:
                async with asyncio.timeout(2):
                    await broker.publish(
                        event.model_dump_json().encode(),
                        topic=self.topic,
                        key=str(event.customer_id or "unknown").encode(),
                        headers={
                            topics.HEADER_EVENT_TYPE: "signal",
                            topics.HEADER_SCHEMA_VERSION: "1",
                            topics.HEADER_CONTENT_TYPE: "application/json",
                        },
                    )
                self.published += 1
            except Exception as exc:  # noqa: BLE001 - best effort
                self.dropped += 1
                log.warning("signal not published: %s", type(exc).__name__)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="signals")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.flush()
