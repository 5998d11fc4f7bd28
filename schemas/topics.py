"""Kafka topic names. Breaking a payload means a new ``.v2`` topic, never a silent change."""

from __future__ import annotations

DECISIONS = "governance.decisions.v1"
ALERTS = "governance.alerts.v1"
DECISIONS_DLQ = "governance.decisions.dlq"
SIGNALS = "governance.signals.v1"  # authentication failures and rate-limit rejections, for alerting

# Headers every event carries.
HEADER_EVENT_TYPE = "event-type"
HEADER_SCHEMA_VERSION = "schema-version"
HEADER_CONTENT_TYPE = "content-type"
