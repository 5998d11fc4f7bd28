"""Alerting: rules over the decision and signal streams, alert events, webhook deliveries queued in PostgreSQL.

``AlertingConsumer`` (``consumer.py``) runs it; ``python -m consumers.alerts`` runs it standalone.
"""

from __future__ import annotations

from consumers.alerts.consumer import AlertingConsumer
from consumers.alerts.settings import AlertingSettings

__all__ = ["AlertingConsumer", "AlertingSettings"]
