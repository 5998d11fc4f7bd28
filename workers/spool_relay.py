"""Drains the decision spool into Kafka once Kafka answers again, oldest first, deleting only after an ack."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from faststream.kafka import KafkaBroker

from infra import pipeline_metrics
from infra.spool import DiskSpool

log = logging.getLogger("workers.spool_relay")


class SpoolRelay:
    def __init__(
        self,
        spool: DiskSpool,
        broker: Callable[[], KafkaBroker | None],
        *,
        interval_s: float = 0.5,
        ack_timeout_s: float = 5.0,
    ) -> None:
        self._spool = spool
        self._broker = broker
        self._interval = interval_s
        self._ack_timeout = ack_timeout_s
        self.relayed = 0
        self._task: asyncio.Task[None] | None = None

    async def drain_once(self) -> int:
        """Relay what is in the spool now; stop at the first failure (Kafka still away). Returns the count."""
        broker = self._broker()
        if broker is None:
            return 0
        sent = 0
        for event in await asyncio.to_thread(lambda: list(self._spool.pending())):
            try:
                async with asyncio.timeout(self._ack_timeout):
                    await broker.publish(event.value, topic=event.topic, key=event.key, headers=event.headers)
            except Exception as exc:  # noqa: BLE001 - Kafka not back yet: try again later
                log.info("spool relay paused: %s", type(exc).__name__)
                break
            await asyncio.to_thread(self._spool.remove, event)
            sent += 1
        self.relayed += sent
        pipeline_metrics.spool_relayed(sent)
        if sent:
            log.info("relayed %d spooled events; %d left", sent, self._spool.depth)
        return sent

    async def run(self) -> None:
        while True:
            try:
                if self._spool.refresh_depth():
                    await self.drain_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("spool relay iteration failed")
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="spool-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
