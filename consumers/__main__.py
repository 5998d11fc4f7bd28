"""Run the consumers.

- ``python -m consumers``: the alerting consumer, and beside it the audit writer when ClickHouse is a server
  (``CLICKHOUSE_URL=http(s)://…``). The embedded ClickHouse can be opened by one process only, and that process
  is the audit read side (``python -m ingress.audit``), which then runs the audit writer itself
  (``AUDIT_IN_PROCESS``).
- ``python -m consumers audit`` or ``python -m consumers alerts``: one of them alone.
- ``python -m consumers asyncapi [--yaml]``: print the AsyncAPI document of the decision stream.

Metrics are served on ``CONSUMERS_METRICS_PORT`` (9101), with the lag of the audit and alerting groups measured
from outside them (``consumers/lag.py``).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import sys

from consumers.alerts.consumer import AlertingConsumer
from consumers.alerts.settings import AlertingSettings
from consumers.audit.spec import asyncapi_yaml, build_asyncapi
from consumers.audit.writer import AuditWriter
from consumers.lag import ConsumerLagMonitor
from consumers.settings import AuditSettings
from infra.clickhouse import build_clickhouse_client
from infra.decisions_table import DecisionStore
from infra.logs import configure_logging
from infra.migrate import migrate_postgres
from infra.pipeline_metrics import CONSUMERS_METRICS_PORT, start_metrics_server
from infra.priority import lower_cpu_priority
from infra.sentry import init_sentry
from infra.service import run_until_stopped

log = logging.getLogger("consumers")

EXIT_FAILED = 1
EXIT_MISCONFIGURED = 2


async def start_audit_writer(settings: AuditSettings) -> AuditWriter:
    client = await asyncio.to_thread(
        build_clickhouse_client, settings.clickhouse_dsn, database=settings.clickhouse_database
    )
    applied = await DecisionStore(client, settings.clickhouse_database).prepare(settings.audit_retention_days)
    if applied:
        log.info("clickhouse migrations applied: %s", applied)
    writer = AuditWriter(settings, client)
    writer.start_in_background()  # retries until Kafka answers
    return writer


async def start_alerting(settings: AuditSettings) -> AlertingConsumer:
    alerting_settings = AlertingSettings.derive(settings)
    await migrate_postgres(alerting_settings.database_url)
    consumer = AlertingConsumer(alerting_settings)
    await consumer.start()
    return consumer


def lag_monitor(settings: AuditSettings) -> ConsumerLagMonitor:
    """The lag of both groups, whichever of them this process runs (the audit writer may run in ingress)."""
    alerting = AlertingSettings.derive(settings)
    groups = {
        settings.audit_group_id: [settings.decisions_topic],
        alerting.alerts_group_id: [settings.decisions_topic, settings.signals_topic],
    }
    return ConsumerLagMonitor(settings.kafka_bootstrap_servers, groups, interval_s=settings.consumer_lag_interval_s)


async def run(settings: AuditSettings, *, audit: bool, alerts: bool) -> int:
    """Run the chosen consumers until SIGTERM or SIGINT, or until one of them stops on an error (which stops
    the others too)."""
    if audit and settings.clickhouse_embedded:
        log.error(
            "the audit writer needs a ClickHouse server here (CLICKHOUSE_URL=http://...): the embedded ClickHouse "
            "belongs to the audit read side (python -m ingress.audit), which runs the writer itself "
            "(AUDIT_IN_PROCESS=auto)"
        )
        return EXIT_MISCONFIGURED
    writer: AuditWriter | None = None
    alerting: AlertingConsumer | None = None
    try:
        if alerts:
            alerting = await start_alerting(settings)
        if audit:
            writer = await start_audit_writer(settings)
    except Exception as exc:  # noqa: BLE001 - reported with its type, then a clean exit status
        log.critical("consumers could not start: %s: %s", type(exc).__name__, exc)
        if alerting is not None:
            await alerting.stop()
        return EXIT_MISCONFIGURED

    lag = lag_monitor(settings)
    lag.start()
    # What start-up allocated lives as long as the process: out of the collector's sight, as in ingress.
    gc.collect()
    gc.freeze()
    # until SIGTERM or SIGINT, or until one of them stops on an error (which stops the others too)
    await run_until_stopped([c for c in (alerting, writer) if c is not None], helpers=[lag])
    failed = False
    if writer is not None and writer.failure is not None:
        log.critical("audit writer exited after: %s", writer.failure)
        failed = True
    if alerting is not None and alerting.failure is not None:
        log.critical("alerting consumer exited after: %s", alerting.failure)
        failed = True
    return EXIT_FAILED if failed else 0


async def run_audit_writer(settings: AuditSettings) -> int:
    """The audit writer alone (``python -m consumers audit``)."""
    return await run(settings, audit=True, alerts=False)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["asyncapi"]:
        document = build_asyncapi()
        sys.stdout.write(asyncapi_yaml(document) if "--yaml" in args else json.dumps(document, indent=2) + "\n")
        return 0
    if args[:1] not in ([], ["audit"], ["alerts"]):
        sys.stderr.write("usage: python -m consumers [audit | alerts | asyncapi [--yaml]]\n")
        return EXIT_MISCONFIGURED
    settings = AuditSettings()
    configure_logging("consumers", settings.log_level)
    init_sentry("consumers", settings)
    lower_cpu_priority(settings.background_nice, "consumers")
    start_metrics_server(CONSUMERS_METRICS_PORT, addr=settings.metrics_host)
    if args[:1] == ["audit"]:
        return asyncio.run(run_audit_writer(settings))
    if args[:1] == ["alerts"]:
        return asyncio.run(run(settings, audit=False, alerts=True))
    return asyncio.run(run(settings, audit=not settings.clickhouse_embedded, alerts=True))


if __name__ == "__main__":
    sys.exit(main())
