"""The alert-event outbox: alert events are stored with their transition (PostgreSQL, ``alert_events``) and
published to ``governance.alerts.v1`` from there, so a Kafka outage delays them and loses none."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from faststream.kafka import KafkaBroker

from consumers.alerts.partitions import AlertingStats
from consumers.alerts.settings import AlertingSettings
from consumers.alerts.store import RETRYABLE_ERRORS, AlertStore
from schemas import topics
from schemas.alert_event import AlertEvent

log = logging.getLogger("consumers.alerts")


class AlertOutbox:
    def __init__(
        self, store: AlertStore, broker: KafkaBroker, settings: AlertingSettings, stats: AlertingStats
    ) -> None:
        self.store = store
        self.broker = broker
        self.settings = settings
        self.stats = stats

    async def publish_pending(self) -> int:
        """Publish alert events not yet on Kafka; returns how many were published."""
        published, failure = await self.store.publish_pending(self.publish)
        self.stats.events_published += published
        if failure is not None:
            self.stats.publish_failures += 1
            log.warning("alert events wait for Kafka: %s", type(failure).__name__)
        return published

    async def publish(self, event: AlertEvent) -> None:
        async with asyncio.timeout(5):
            await self.broker.publish(
                event.model_dump_json().encode(),
                topic=self.settings.alerts_topic,
                key=event.subject.encode(),
                headers={
                    topics.HEADER_EVENT_TYPE: "alert",
                    topics.HEADER_SCHEMA_VERSION: str(event.schema_version),
                    topics.HEADER_CONTENT_TYPE: "application/json",
                },
            )

    async def publish_forever(self, now: asyncio.Event, stopping: asyncio.Event) -> None:
        """Publish every ``ALERTS_PUBLISH_INTERVAL_S``, or at once when ``now`` is set, until ``stopping``."""
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(now.wait(), timeout=self.settings.alerts_publish_interval_s)
            now.clear()
            if stopping.is_set():
                return
            try:
                await self.publish_pending()
            except RETRYABLE_ERRORS as exc:
                self.stats.database_failures += 1
                log.warning("alert events not published this round: %s", type(exc).__name__)
            except Exception:
                log.exception("alert event publishing failed")
