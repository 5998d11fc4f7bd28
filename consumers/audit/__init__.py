"""The audit pipeline: decisions from Kafka into ClickHouse, once (``writer``), its pure core (``transform``), the
ClickHouse side (``store``) and the published contract (``spec``)."""

from consumers.audit.batch import AuditStats, DlqLimitExceeded, WriterState
from consumers.audit.writer import AuditWriter, start_in_process

__all__ = ["AuditStats", "AuditWriter", "DlqLimitExceeded", "WriterState", "start_in_process"]
