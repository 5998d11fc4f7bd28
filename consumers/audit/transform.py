"""The pure core of the audit writer: a Kafka record in, a ClickHouse row (or the reason it is invalid) out.

No I/O, no clock, no settings: the writer (``consumers.audit.writer``) adapts; everything here is data in, data out.
"""

from __future__ import annotations

import base64
import hashlib
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas import topics
from schemas.decision_event import EVENT_TYPE, SCHEMA_VERSION, DecisionEvent

InvalidReason = Literal[
    "empty_value",
    "invalid_json",
    "schema_violation",
    "unexpected_event_type",
    "unsupported_schema_version",
    "unverified_receipt",  # no receipt, or one that does not verify or does not sign this event (authenticity.py)
]


@dataclass(frozen=True)
class Origin:
    """Where a record came from: enough to find it again in Kafka."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None
    key: bytes | None = None


@dataclass(frozen=True)
class Accepted:
    origin: Origin
    event: DecisionEvent


@dataclass(frozen=True)
class Rejected:
    origin: Origin
    reason: InvalidReason
    detail: str
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


class InvalidMessage(Exception):
    def __init__(self, reason: InvalidReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: InvalidReason = reason
        self.detail = detail


def _header(headers: Sequence[tuple[str, bytes]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("utf-8", errors="replace")
    return None


def _describe(exc: ValidationError, limit: int = 5) -> str:
    # Field paths and messages only: a malformed event must not copy its values into logs or the DLQ reason.
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False)[:limit]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def decode_decision(value: bytes | None, headers: Sequence[tuple[str, bytes]] = ()) -> DecisionEvent:
    """Decode one record of ``governance.decisions.v1``; raise :class:`InvalidMessage` naming why it is not one.

    Missing headers are tolerated (the payload carries its type and version too); wrong ones are not.
    """
    event_type = _header(headers, topics.HEADER_EVENT_TYPE)
    if event_type is not None and event_type != EVENT_TYPE:
        raise InvalidMessage("unexpected_event_type", f"header {topics.HEADER_EVENT_TYPE}={event_type!r}")
    version = _header(headers, topics.HEADER_SCHEMA_VERSION)
    if version is not None and version != str(SCHEMA_VERSION):
        raise InvalidMessage("unsupported_schema_version", f"header {topics.HEADER_SCHEMA_VERSION}={version!r}")
    if not value:
        raise InvalidMessage("empty_value", "the record has no value")
    try:
        return DecisionEvent.model_validate_json(value)
    except ValidationError as exc:
        not_json = any(err.get("type") == "json_invalid" for err in exc.errors(include_input=False))
        raise InvalidMessage("invalid_json" if not_json else "schema_violation", _describe(exc)) from None


def classify(origin: Origin, value: bytes | None, headers: Sequence[tuple[str, bytes]] = ()) -> Accepted | Rejected:
    try:
        return Accepted(origin, decode_decision(value, headers))
    except InvalidMessage as exc:
        return Rejected(origin, exc.reason, exc.detail, value, tuple(headers))


def _distinct(values: Iterable[str | None]) -> list[str]:
    return sorted({v for v in values if v})


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def decision_row(event: DecisionEvent, origin: Origin) -> tuple[Any, ...]:
    """One ``decisions`` row, in :data:`COLUMNS` order."""
    operations = event.operations
    return (
        event.event_id,
        event.schema_version,
        event.request_id,
        event.customer_id,
        event.key_id,
        _utc(event.decided_at),
        event.allowed,
        event.decision,
        event.risk_score,
        event.threshold,
        event.reason,
        [f.name for f in event.factors],
        [f.points for f in event.factors],
        [v.rule for v in event.violations],
        [v.policy_id for v in event.violations],
        [p.policy_id for p in event.policies],
        [p.version for p in event.policies],
        [p.mode for p in event.policies],
        _distinct(f.category for f in event.personal_data),
        [f.path for f in event.personal_data],
        min(len(operations), 65_535),
        _distinct(op.type for op in operations),
        _distinct(op.model for op in operations),
        _distinct(op.provider for op in operations),
        sum(op.tokens or 0 for op in operations),
        min(sum(1 for op in operations if op.external), 65_535),
        min(sum(1 for op in operations if not op.known_type), 65_535),
        [s.policy_id for s in event.shadow if not s.allowed],
        event.latency_ms,
        event.model_dump_json(),
        origin.topic,
        origin.partition,
        origin.offset,
    )


def deduplication_token(batch: Iterable[Accepted]) -> str:
    """The insert deduplication token of a batch: its offset range per topic-partition, and a digest of its events.

    A redelivered batch with the same records yields the same token, so ClickHouse skips the repeated block. The
    digest keeps a topic recreated with restarted offsets from colliding with a batch of the old one.
    """
    ranges: dict[tuple[str, int], tuple[int, int]] = {}
    ids = []
    for item in batch:
        o = item.origin
        key = (o.topic, o.partition)
        low, high = ranges.get(key, (o.offset, o.offset))
        ranges[key] = (min(low, o.offset), max(high, o.offset))
        ids.append(item.event.event_id.bytes)
    digest = hashlib.sha256(b"".join(sorted(ids)))
    spans = ",".join(f"{t}/{p}/{lo}-{hi}" for (t, p), (lo, hi) in sorted(ranges.items()))
    return f"audit:{spans}:{digest.hexdigest()[:16]}"


class DeadLetterOrigin(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None
    key: str | None = Field(None, description="the record key as UTF-8 (customer_id), when it decodes")


class DeadLetterRecord(BaseModel):
    """What ``governance.decisions.dlq`` carries: the rejected record and why, readable without other context."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dead_letter_version: Literal[1] = 1
    origin: DeadLetterOrigin
    consumer_group: str
    reason: InvalidReason
    detail: str
    raw_value_base64: str | None = Field(None, description="the record value exactly as consumed, base64")
    raw_headers: dict[str, str] = Field(default_factory=dict)


# Headers of a DLQ record, so tools can route on them without parsing the value.
DLQ_HEADER_ORIGIN_TOPIC = "dlq-origin-topic"
DLQ_HEADER_ORIGIN_PARTITION = "dlq-origin-partition"
DLQ_HEADER_ORIGIN_OFFSET = "dlq-origin-offset"
DLQ_HEADER_CONSUMER_GROUP = "dlq-consumer-group"
DLQ_HEADER_REASON = "dlq-reason"


def dead_letter(rejected: Rejected, consumer_group: str) -> tuple[bytes, dict[str, str], bytes | None]:
    """The DLQ record for ``rejected``: (value, headers, key). The key is the original key, so ordering holds."""
    origin = rejected.origin
    key_text = origin.key.decode("utf-8", errors="replace") if origin.key is not None else None
    record = DeadLetterRecord(
        origin=DeadLetterOrigin(
            topic=origin.topic,
            partition=origin.partition,
            offset=origin.offset,
            timestamp_ms=origin.timestamp_ms,
            key=key_text,
        ),
        consumer_group=consumer_group,
        reason=rejected.reason,
        detail=rejected.detail,
        raw_value_base64=base64.b64encode(rejected.value).decode() if rejected.value is not None else None,
        raw_headers={k: v.decode("utf-8", errors="replace") for k, v in rejected.headers},
    )
    headers = {
        topics.HEADER_CONTENT_TYPE: "application/json",
        topics.HEADER_EVENT_TYPE: "dead-letter",
        topics.HEADER_SCHEMA_VERSION: "1",
        DLQ_HEADER_ORIGIN_TOPIC: origin.topic,
        DLQ_HEADER_ORIGIN_PARTITION: str(origin.partition),
        DLQ_HEADER_ORIGIN_OFFSET: str(origin.offset),
        DLQ_HEADER_CONSUMER_GROUP: consumer_group,
        DLQ_HEADER_REASON: rejected.reason,
    }
    return record.model_dump_json().encode(), headers, origin.key


class DlqLimit:
    """Trips when more than ``limit`` of the last ``window`` messages were invalid (arroyo's ``DlqLimit``).

    A consumer that dead-letters everything has a broken upstream, not bad luck: it must stop rather than drain
    the topic into the DLQ.
    """

    def __init__(self, limit: int, window: int) -> None:
        self.limit = limit
        self.window = window
        self._seen: deque[bool] = deque()
        self._invalid = 0

    def record(self, invalid: bool) -> None:
        self._seen.append(invalid)
        self._invalid += invalid
        if len(self._seen) > self.window:
            self._invalid -= self._seen.popleft()

    @property
    def invalid_in_window(self) -> int:
        return self._invalid

    @property
    def exceeded(self) -> bool:
        return self._invalid > self.limit
