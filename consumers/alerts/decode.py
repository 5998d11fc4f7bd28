"""Decode one record of the decisions or signals topic into what the windows take: pure, no I/O, no clock."""

from __future__ import annotations

from typing import Any

import pydantic
from aiokafka import ConsumerRecord, TopicPartition

from consumers.alerts.partitions import Decoded, StreamName
from schemas.alerting import UNKNOWN_SUBJECT
from schemas.decision_event import DecisionEvent
from schemas.signal_event import SignalEvent


class Invalid(str):
    """Why a record could not be read (its first validation message); the record is skipped."""


def decode_record(
    stream: StreamName, tp: TopicPartition, record: ConsumerRecord[Any, Any], now: float
) -> Decoded | Invalid:
    """A decision counts for its customer at its decision time, a signal at the end of its window (never later
    than ``now``). A signal naming only a key id leaves the owner to be looked up (``owner_of_key``)."""
    try:
        if stream == "decisions":
            decision = DecisionEvent.model_validate_json(record.value or b"")
            at = min(decision.decided_at.timestamp(), now)
            return Decoded(tp, record.offset, str(decision.customer_id), at, decision=decision)
        signal = SignalEvent.model_validate_json(record.value or b"")
    except pydantic.ValidationError as exc:
        errors = exc.errors()
        return Invalid(errors[0].get("msg", "invalid") if errors else "invalid")
    at = min(signal.window_end.timestamp(), now)
    if signal.customer_id is not None:
        return Decoded(tp, record.offset, str(signal.customer_id), at, signal=signal)
    if signal.kind == "auth_failure" and signal.key_id:
        return Decoded(tp, record.offset, UNKNOWN_SUBJECT, at, signal=signal, owner_of_key=signal.key_id)
    return Decoded(tp, record.offset, UNKNOWN_SUBJECT, at, signal=signal)
