"""Run only the webhook delivery worker: ``python -m workers.webhooks`` (``python -m workers`` runs it too)."""

from __future__ import annotations

import asyncio
import signal

from infra.logs import configure_logging
from workers.webhooks.delivery import WebhookDeliveryWorker
from workers.webhooks.settings import WebhookSettings


async def run(settings: WebhookSettings) -> None:
    worker = WebhookDeliveryWorker(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await worker.start()
    await stop.wait()
    await worker.stop()


def main() -> None:
    settings = WebhookSettings()
    configure_logging("webhooks", settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
