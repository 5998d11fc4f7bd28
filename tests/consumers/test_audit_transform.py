"""The audit writer's pure core: decoding, rows, dedup tokens, DLQ records and the DLQ limit; and its settings."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from consumers.audit.transform import (
    Accepted,
    DlqLimit,
    InvalidMessage,
    Origin,
    Rejected,
    classify,
    dead_letter,
    decision_row,
    decode_decision,
    deduplication_token,
)
from consumers.settings import AuditSettings
from infra.decisions_table import COLUMNS
from infra.settings import CommonSettings
from tests.support.audit import DECISION_HEADERS, make_event


def test_decodes_a_published_event() -> None:
    event = make_event(uuid.uuid4(), allowed=False, risk=80, rules=["block_personal_data"], pii=["email"])
    assert decode_decision(event.model_dump_json().encode(), DECISION_HEADERS) == event


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (b"", DECISION_HEADERS, "empty_value"),
        (None, DECISION_HEADERS, "empty_value"),
        (b"{not json", DECISION_HEADERS, "invalid_json"),
        (b'{"event_id": "x"}', DECISION_HEADERS, "schema_violation"),
        (b"{}", [("event-type", b"alert")], "unexpected_event_type"),
        (b"{}", [("schema-version", b"2")], "unsupported_schema_version"),
    ],
)
def test_rejections_name_their_reason(value: bytes | None, headers: list[tuple[str, bytes]], reason: str) -> None:
    with pytest.raises(InvalidMessage) as caught:
        decode_decision(value, headers)
    assert caught.value.reason == reason


def test_schema_violation_detail_names_fields_not_values() -> None:
    payload = json.loads(make_event(uuid.uuid4()).model_dump_json())
    payload["risk_score"] = 555
    payload["request_id"] = None
    payload["note"] = "jane@example.com"
    with pytest.raises(InvalidMessage) as caught:
        decode_decision(json.dumps(payload).encode())
    assert "risk_score" in caught.value.detail
    assert "note" in caught.value.detail
    assert "jane@example.com" not in caught.value.detail
    assert "555" not in caught.value.detail


def test_row_follows_the_column_order() -> None:
    event = make_event(uuid.uuid4(), allowed=False, risk=75, rules=["max_tokens", "block_personal_data"], pii=["email"])
    row = dict(zip(COLUMNS, decision_row(event, Origin("t", 3, 42)), strict=True))
    assert row["event_id"] == event.event_id
    assert row["decision"] == "block"
    assert row["violated_rules"] == ["max_tokens", "block_personal_data"]
    assert row["pii_categories"] == ["email"]
    assert row["models"] == ["gpt-4"]
    assert row["total_tokens"] == 500
    assert row["decided_at"].tzinfo is not None
    assert (row["kafka_topic"], row["kafka_partition"], row["kafka_offset"]) == ("t", 3, 42)
    assert json.loads(row["event"])["event_id"] == str(event.event_id)


def test_dedup_token_is_stable_for_the_same_batch_and_differs_otherwise() -> None:
    customer = uuid.uuid4()
    batch = [Accepted(Origin("t", p, o), make_event(customer)) for p, o in [(0, 10), (0, 11), (1, 5)]]
    token = deduplication_token(batch)
    assert token.startswith("audit:t/0/10-11,t/1/5-5:")
    assert deduplication_token(list(reversed(batch))) == token
    # Same offsets, other records (a recreated topic): another token.
    other = [Accepted(a.origin, make_event(customer)) for a in batch]
    assert deduplication_token(other) != token


def test_dead_letter_explains_itself() -> None:
    origin = Origin("governance.decisions.v1", 2, 77, 1_700_000_000_000, b"cust-1")
    item = classify(origin, b"\xff\xfe garbage", [("x-trace", b"abc")])
    assert isinstance(item, Rejected)
    value, headers, key = dead_letter(item, "governance-audit")
    record = json.loads(value)
    assert record["origin"] == {
        "topic": "governance.decisions.v1",
        "partition": 2,
        "offset": 77,
        "timestamp_ms": 1_700_000_000_000,
        "key": "cust-1",
    }
    assert record["consumer_group"] == "governance-audit"
    assert record["reason"] == "invalid_json"
    assert base64.b64decode(record["raw_value_base64"]) == b"\xff\xfe garbage"
    assert record["raw_headers"] == {"x-trace": "abc"}
    assert headers["dlq-origin-topic"] == "governance.decisions.v1"
    assert headers["dlq-origin-partition"] == "2"
    assert headers["dlq-origin-offset"] == "77"
    assert headers["dlq-consumer-group"] == "governance-audit"
    assert headers["dlq-reason"] == "invalid_json"
    assert key == b"cust-1"


def test_dlq_limit_trips_on_more_than_n_of_the_last_m() -> None:
    limit = DlqLimit(limit=2, window=5)
    for invalid in (True, False, True, False, False, False, False):
        limit.record(invalid)
    assert not limit.exceeded
    for invalid in (True, True):
        limit.record(invalid)
    assert limit.invalid_in_window == 2
    assert not limit.exceeded
    limit.record(True)
    assert limit.exceeded


def test_audit_settings_derive_from_common_and_refuse_a_limit_that_cannot_trip() -> None:
    common = CommonSettings.model_validate({"DECISIONS_TOPIC": "x.decisions", "CLICKHOUSE_URL": "http://ch:8123"})
    derived = AuditSettings.derive(common, AUDIT_BATCH_SIZE=7)
    assert derived.decisions_topic == "x.decisions"
    assert derived.audit_batch_size == 7
    assert derived.audit_group_id == "governance-audit"
    assert not derived.audit_runs_in_ingress  # a server: python -m consumers writes
    embedded = AuditSettings.derive(CommonSettings.model_validate({"CLICKHOUSE_URL": "chdb:///tmp/x"}))
    assert embedded.audit_runs_in_ingress
    with pytest.raises(ValidationError, match="AUDIT_DLQ_LIMIT"):
        AuditSettings.derive(common, AUDIT_DLQ_LIMIT=10, AUDIT_DLQ_WINDOW=10)


def test_decided_at_without_zone_is_stored_as_utc() -> None:
    event = make_event(uuid.uuid4(), decided_at=datetime(2026, 1, 2, 3, 4, 5))
    row = dict(zip(COLUMNS, decision_row(event, Origin("t", 0, 0)), strict=True))
    assert row["decided_at"] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
