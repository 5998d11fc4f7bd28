"""Run the alerting consumer standalone: ``python -m consumers.alerts``. SIGTERM or SIGINT stops it gracefully.

Pending PostgreSQL migrations are applied first (advisory-locked, so concurrent starts are safe). Exit status:
0 after a requested stop, 1 when the consumer stopped on an error, 2 when it could not start.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from consumers.alerts.consumer import AlertingConsumer
from consumers.alerts.settings import AlertingSettings
from infra.logs import configure_logging
from infra.migrate import migrate_postgres
from infra.service import run_until_stopped

log = logging.getLogger("consumers.alerts")

EXIT_FAILED = 1
EXIT_NOT_STARTED = 2


async def run(settings: AlertingSettings) -> int:
    try:
        await migrate_postgres(settings.database_url)
        consumer = AlertingConsumer(settings)
        await consumer.start()
    except Exception as exc:  # noqa: BLE001 - reported with its type, then a clean exit status
        log.critical("alerting consumer could not start: %s: %s", type(exc).__name__, exc)
        return EXIT_NOT_STARTED
    await run_until_stopped([consumer])
    return EXIT_FAILED if consumer.failure is not None else 0


def main() -> int:
    settings = AlertingSettings()
    configure_logging("alerts", settings.log_level)
    return asyncio.run(run(settings))


if __name__ == "__main__":
    sys.exit(main())
