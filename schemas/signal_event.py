"""``SignalEvent`` v1 on ``governance.signals.v1``: counted refusals that never reach a decision.

Authentication failures and rate-limit rejections are not decisions, but alerting needs them. Each ingress
process aggregates them per (kind, customer, key id, reason) and publishes one event per group each second
(``count`` says how many), so a flood of bad keys costs Kafka one message a second per group, not one per
request. Best effort: a signal lost while Kafka is down is not spooled (unlike decisions).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from schemas.event_schema import every_field_required

SIGNAL_EVENT_TYPE: Literal["signal"] = "signal"


class SignalEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=every_field_required)

    schema_version: Literal[1] = 1
    event_type: Literal["signal"] = SIGNAL_EVENT_TYPE
    event_id: UUID
    kind: Literal["auth_failure", "rate_limited"]
    customer_id: UUID | None = None  # unknown for keys that did not verify
    key_id: str | None = None
    reason: str = ""  # auth: missing, malformed, unknown, revoked, expired
    count: int = Field(ge=1)
    window_start: datetime
    window_end: datetime
