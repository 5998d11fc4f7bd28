"""Run the background workers: ``python -m workers``.

Today: the spool relay, which drains decision events spooled by any ingress process on this host (including
one that crashed) into Kafka, and the webhook delivery worker, which sends alert events to customers' endpoints
from the PostgreSQL outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from infra.kafka import build_kafka_broker
from infra.kafka_topics import ensure_project_topics
from infra.logs import configure_logging
from infra.pipeline_metrics import WORKERS_METRICS_PORT, start_metrics_server
from infra.priority import lower_cpu_priority
from infra.sentry import init_sentry
from infra.service import stop_signals
from infra.spool import DiskSpool
from workers.settings import WorkersSettings
from workers.spool_relay import SpoolRelay
from workers.webhooks import WebhookDeliveryWorker, WebhookSettings

log = logging.getLogger("workers")


async def run(settings: WorkersSettings) -> None:
    """Until SIGTERM or SIGINT."""
    async with stop_signals() as stop:
        await _serve(settings, stop)


async def _serve(settings: WorkersSettings, stop: asyncio.Event) -> None:
    broker = build_kafka_broker(settings.kafka_bootstrap_servers, client_id="governance-workers")
    connected = False
    relay = SpoolRelay(
        DiskSpool(settings.spool_dir), lambda: broker if connected else None, interval_s=settings.relay_interval_s
    )
    relay.start()
    webhooks = WebhookDeliveryWorker(WebhookSettings.derive(settings))
    await webhooks.start()
    while not stop.is_set():
        if not connected:
            try:
                await ensure_project_topics(settings)
                await asyncio.wait_for(broker.start(), timeout=10)
                connected = True
                log.info("workers connected to Kafka")
            except Exception as exc:  # noqa: BLE001 - keep retrying; the relay waits
                log.warning("Kafka unavailable: %s", type(exc).__name__)
                with contextlib.suppress(Exception):
                    await broker.stop()
                broker = build_kafka_broker(settings.kafka_bootstrap_servers, client_id="governance-workers")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=2)
    await webhooks.stop()
    await relay.stop()
    if connected:
        await broker.stop()


def main() -> None:
    settings = WorkersSettings()
    configure_logging("workers", settings.log_level)
    init_sentry("workers", settings)
    lower_cpu_priority(settings.background_nice, "workers")
    start_metrics_server(WORKERS_METRICS_PORT, addr=settings.metrics_host)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
