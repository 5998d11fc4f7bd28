"""The audit pipeline inside ingress: one machine, one ClickHouse owner.

The embedded ClickHouse (chdb) opens in one process only, so when ingress holds it, ingress applies its
migrations and retention at start and, with ``AUDIT_IN_PROCESS=auto|true``, runs the audit writer on the same
client; the analytics routes read through that client too. Against a ClickHouse server, ``python -m consumers``
writes and ingress only reads (unless ``AUDIT_IN_PROCESS=true``).
"""

from __future__ import annotations

import logging

from consumers.audit.writer import AuditWriter, start_in_process
from consumers.settings import AuditSettings
from infra.decisions_table import DecisionStore
from infra.settings import CommonSettings
from ingress.audit.resources import AuditResources

log = logging.getLogger("ingress.audit")


async def start_audit(settings: CommonSettings, resources: AuditResources) -> AuditWriter | None:
    """Prepare ClickHouse when this process owns it and start the in-process writer when configured to.

    A ClickHouse that cannot be opened does not stop ingress from serving checks: the analytics routes answer
    503 until it can be. Invalid ``AUDIT_*`` settings do stop it (they name the variable).
    """
    audit = AuditSettings.derive(settings)
    if not (audit.clickhouse_embedded or audit.audit_runs_in_ingress):
        return None
    try:
        client = await resources.clickhouse_client()
        if audit.audit_runs_in_ingress:
            writer = await start_in_process(audit, client)
            log.info("audit writer running in this process (AUDIT_IN_PROCESS=%s)", audit.audit_in_process)
            return writer
        await DecisionStore(client, audit.clickhouse_database).prepare(audit.audit_retention_days)
    except Exception:
        log.exception("audit store could not be prepared; analytics answers 503 until it can")
    return None


async def stop_audit(writer: AuditWriter | None) -> None:
    """Flush and commit what the writer holds, then leave the consumer group."""
    if writer is not None:
        await writer.stop()
