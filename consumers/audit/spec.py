"""The event contract as FastStream declarations, and the AsyncAPI document generated from them.

The audit writer's broker declares the same publishers (it publishes to the DLQ through one), so the document
describes what actually runs; the alerts and signals channels (published by the alerting consumer and by ingress
with plain ``broker.publish`` calls) are declared here beside them, so the document lists every topic the service
publishes. FastStream does not know our headers or keys, so those are added to the generated document here: they
are part of the contract (``schemas/topics.py``).
"""

from __future__ import annotations

from typing import Any, get_args

from faststream.kafka import KafkaBroker
from faststream.kafka.publisher import DefaultPublisher
from faststream.specification import AsyncAPI

from infra.kafka import build_kafka_broker
from infra.settings import CommonSettings
from schemas import topics
from schemas.alert_event import AlertEvent
from schemas.decision_event import DecisionEvent
from schemas.signal_event import SignalEvent

from .transform import (
    DLQ_HEADER_CONSUMER_GROUP,
    DLQ_HEADER_ORIGIN_OFFSET,
    DLQ_HEADER_ORIGIN_PARTITION,
    DLQ_HEADER_ORIGIN_TOPIC,
    DLQ_HEADER_REASON,
    DeadLetterRecord,
    InvalidReason,
)

DECISIONS_DESCRIPTION = (
    "One DecisionEvent v1 per decision returned by POST /v1/check, published by ingress before it answers "
    "(idempotent producer, acks=all; or spooled and relayed). Keyed by customer_id, so one customer's decisions "
    "stay in order within a partition. Delivery is at-least-once: deduplicate on event_id. Subscribe with a "
    "consumer group of your own; see docs/topics.md."
)
DLQ_DESCRIPTION = (
    "Records of governance.decisions.v1 that could not be decoded, failed the DecisionEvent schema or carry no "
    "receipt that verifies against the published receipt keys and signs the event (unverified_receipt), one "
    "DeadLetterRecord each: origin topic, partition, offset and key, the consumer group that rejected it, the "
    "reason, and the raw value (base64). Keyed like the original record."
)
ALERTS_DESCRIPTION = (
    "One AlertEvent v1 per change of an alert's state (opened, renotified, resolved), published by the alerting "
    "consumer from its outbox after the change is stored. Keyed by the alert's subject (the customer_id, or "
    "'unknown' for authentication failures of no known key). The same JSON is the body of every webhook call. "
    "Delivery is at-least-once: deduplicate on event_id."
)
SIGNALS_DESCRIPTION = (
    "SignalEvent v1: authentication failures and rate-limit rejections, which never reach a decision, counted by "
    "each ingress process per (kind, customer, key id, reason) and published once a second per group (count says "
    "how many). Keyed by customer_id, or 'unknown' when the key did not verify. Best effort: a signal is not "
    "spooled while Kafka is away. Read by the alerting consumer."
)


def declare_contract(broker: KafkaBroker, *, decisions_topic: str, dlq_topic: str) -> DefaultPublisher:
    """Declare the decisions and DLQ channels on ``broker``; returns the DLQ publisher."""
    broker.publisher(
        decisions_topic,
        title=decisions_topic,
        description=DECISIONS_DESCRIPTION,
        schema=DecisionEvent,
    )
    return broker.publisher(
        dlq_topic,
        title=dlq_topic,
        description=DLQ_DESCRIPTION,
        schema=DeadLetterRecord,
    )


def _string_header(description: str, const: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "description": description}
    if const is not None:
        schema["const"] = const
    return schema


def _event_headers(event_type: str, description: str) -> dict[str, Any]:
    return {
        topics.HEADER_EVENT_TYPE: _string_header(f"always '{event_type}'", event_type),
        topics.HEADER_SCHEMA_VERSION: _string_header(description, "1"),
        topics.HEADER_CONTENT_TYPE: _string_header("payload encoding", "application/json"),
    }


def _dlq_headers() -> dict[str, Any]:
    reasons = ", ".join(get_args(InvalidReason))
    return {
        **_event_headers("dead-letter", "DeadLetterRecord version"),
        DLQ_HEADER_ORIGIN_TOPIC: _string_header("topic the rejected record was read from"),
        DLQ_HEADER_ORIGIN_PARTITION: _string_header("its partition (decimal)"),
        DLQ_HEADER_ORIGIN_OFFSET: _string_header("its offset (decimal)"),
        DLQ_HEADER_CONSUMER_GROUP: _string_header("consumer group that rejected it"),
        DLQ_HEADER_REASON: {**_string_header(f"why: one of {reasons}"), "enum": list(get_args(InvalidReason))},
    }


_UUID_KEY = {"type": "string", "format": "uuid", "description": "customer_id"}
_SUBJECT_KEY = {"type": "string", "description": "customer_id, or 'unknown' when no customer is known"}
_VERSIONED = "payload schema version (breaking = new topic)"


def _contract(decisions: str, alerts: str, signals: str, dlq: str) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Per channel title: (headers, key schema)."""
    return {
        decisions: (_event_headers("decision", _VERSIONED), _UUID_KEY),
        alerts: (_event_headers("alert", _VERSIONED), _SUBJECT_KEY),
        signals: (_event_headers("signal", _VERSIONED), _SUBJECT_KEY),
        dlq: (_dlq_headers(), _UUID_KEY),
    }


def _headers_schema(properties: dict[str, Any]) -> dict[str, Any]:
    # The three event headers are on every record; the DLQ's own headers too, but they describe the origin.
    return {"type": "object", "properties": properties, "required": list(properties)}


def build_asyncapi(
    *,
    decisions_topic: str = topics.DECISIONS,
    dlq_topic: str = topics.DECISIONS_DLQ,
    alerts_topic: str = topics.ALERTS,
    signals_topic: str = topics.SIGNALS,
    bootstrap_servers: str = "localhost:9092",
    version: str = "1.0.0",
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every topic the service publishes, as a JSON-ready dict."""
    broker = build_kafka_broker(bootstrap_servers, client_id="governance-asyncapi")
    declare_contract(broker, decisions_topic=decisions_topic, dlq_topic=dlq_topic)
    broker.publisher(alerts_topic, title=alerts_topic, description=ALERTS_DESCRIPTION, schema=AlertEvent)
    broker.publisher(signals_topic, title=signals_topic, description=SIGNALS_DESCRIPTION, schema=SignalEvent)
    contract = _contract(decisions_topic, alerts_topic, signals_topic, dlq_topic)
    document: dict[str, Any] = (
        AsyncAPI(
            broker,
            title="Governance decision stream",
            version=version,
            description=(
                "Kafka topics of the AI governance check service. Payloads are JSON; keys are the customer_id "
                "(UUID string, UTF-8). Guarantees and how to subscribe: docs/topics.md."
            ),
        )
        .to_specification()
        .to_jsonable()
    )
    for name, message in document.get("components", {}).get("messages", {}).items():
        headers, key = contract[name.split(":", 1)[0]]
        message["headers"] = _headers_schema(headers)
        message["bindings"] = {"kafka": {"key": dict(key), "bindingVersion": "0.5.0"}}
        message.pop("correlationId", None)
    # FastStream's ordering varies between processes; a committed document must not.
    for section in ("channels", "operations"):
        if section in document:
            document[section] = dict(sorted(document[section].items()))
    for section in ("messages", "schemas"):
        if section in document.get("components", {}):
            document["components"][section] = dict(sorted(document["components"][section].items()))
    return document


def asyncapi_yaml(document: dict[str, Any]) -> str:
    import yaml

    return str(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))


def asyncapi_for(settings: CommonSettings) -> dict[str, Any]:
    """The document for the topics ``settings`` point at (what a deployment actually uses)."""
    return build_asyncapi(
        decisions_topic=settings.decisions_topic,
        dlq_topic=settings.dlq_topic,
        alerts_topic=settings.alerts_topic,
        signals_topic=settings.signals_topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
    )
