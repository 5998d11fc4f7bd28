"""Run only the webhook delivery worker: ``python -m workers.webhooks`` (``python -m workers`` runs it too)."""

from __future__ import annotations

import asyncio

from infra.logs import configure_logging
from infra.service import stop_signals
from workers.webhooks.delivery import WebhookDeliveryWorker
from workers.webhooks.settings import WebhookSettings


async def run(settings: WebhookSettings) -> None:
    worker = WebhookDeliveryWorker(settings)
    async with stop_signals() as stopping:
        await worker.start()
        await stopping.wait()
    await worker.stop()


def main() -> None:
    settings = WebhookSettings()
    configure_logging("webhooks", settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
