"""Run the consumers: ``python -m consumers`` (the audit writer), ``python -m consumers asyncapi [--yaml]``.

The audit writer runs here only against a ClickHouse server (``CLICKHOUSE_URL=http(s)://…``). The embedded
ClickHouse can be opened by one process, and that process is ingress, which then runs the writer itself
(``AUDIT_IN_PROCESS``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys

from consumers.audit.spec import asyncapi_yaml, build_asyncapi
from consumers.audit.store import DecisionStore
from consumers.audit.writer import AuditWriter
from consumers.settings import AuditSettings
from infra.clickhouse import build_clickhouse_client

log = logging.getLogger("consumers")

EXIT_FAILED = 1
EXIT_MISCONFIGURED = 2


async def run_audit_writer(settings: AuditSettings) -> int:
    if settings.clickhouse_embedded:
        log.error(
            "the audit writer needs a ClickHouse server here (CLICKHOUSE_URL=http://...): the embedded ClickHouse "
            "belongs to the ingress process, which runs the writer itself (AUDIT_IN_PROCESS=auto)"
        )
        return EXIT_MISCONFIGURED
    client = await asyncio.to_thread(
        build_clickhouse_client, settings.clickhouse_dsn, database=settings.clickhouse_database
    )
    applied = await DecisionStore(client, settings.clickhouse_database).prepare(settings.audit_retention_days)
    if applied:
        log.info("clickhouse migrations applied: %s", applied)
    writer = AuditWriter(settings, client)
    loop = asyncio.get_running_loop()
    stopping: set[asyncio.Task[None]] = set()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, lambda: stopping.add(loop.create_task(writer.stop())))
    try:
        writer.start_in_background()  # retries until Kafka answers
        await writer.wait_stopped()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    if writer.failure is not None:
        log.critical("audit writer exited after: %s", writer.failure)
        return EXIT_FAILED
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["asyncapi"]:
        document = build_asyncapi()
        sys.stdout.write(asyncapi_yaml(document) if "--yaml" in args else json.dumps(document, indent=2) + "\n")
        return 0
    if args and args[:1] != ["audit"]:
        sys.stderr.write("usage: python -m consumers [audit | asyncapi [--yaml]]\n")
        return EXIT_MISCONFIGURED
    settings = AuditSettings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return asyncio.run(run_audit_writer(settings))


if __name__ == "__main__":
    sys.exit(main())
