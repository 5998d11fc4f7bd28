"""``AlertEvent`` v1: one change of an alert's state, published to ``governance.alerts.v1`` (keyed by the subject:
the customer id, or ``unknown``) and delivered as the body of every webhook call.

An alert is opened once per (rule, subject), notified again every ``renotify_s`` while its condition holds, and
resolved when it clears. ``sequence`` counts the alert's events from 1 (opened); ``event_id`` is unique per event,
so a consumer that sees the same event twice (at-least-once delivery) can tell.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from schemas.alerting import AlertStatus, AlertTransition, RuleKind, Severity
from schemas.event_schema import every_field_required

ALERT_EVENT_TYPE: Literal["alert"] = "alert"
ALERT_SCHEMA_VERSION: Literal[1] = 1


class AlertEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=every_field_required)

    schema_version: Literal[1] = ALERT_SCHEMA_VERSION
    event_type: Literal["alert"] = ALERT_EVENT_TYPE
    event_id: UUID
    alert_id: UUID
    transition: AlertTransition
    sequence: int = Field(ge=1, description="1 for opened, +1 for each later event of the same alert")
    status: AlertStatus = Field(description="the alert's status after this event")
    rule: RuleKind
    severity: Severity
    customer_id: UUID | None = Field(description="null when the subject is 'unknown'")
    subject: str = Field(description="the customer id, or 'unknown' (authentication failures of no known key)")
    summary: str = Field(description="one line for people; never personal data or keys")
    value: float = Field(description="the measured value when the event was made")
    threshold: float = Field(description="the value the rule compares against")
    window_s: int
    params: dict[str, Any] = Field(description="the rule's parameters in force, defaults filled in")
    opened_at: datetime
    occurred_at: datetime = Field(description="when this event was made")
    resolved_at: datetime | None = None
