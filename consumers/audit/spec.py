"""The event contract as FastStream declarations, and the AsyncAPI document generated from them.

The audit writer's broker declares the same publishers (it publishes to the DLQ through one), so the document
describes what actually runs. FastStream does not know our headers or key, so those are added to the generated
document here: they are part of the contract (``schemas/topics.py``).
"""

from __future__ import annotations

from typing import Any

from faststream.kafka import KafkaBroker
from faststream.kafka.publisher import DefaultPublisher
from faststream.specification import AsyncAPI

from infra.kafka import build_kafka_broker
from infra.settings import CommonSettings
from schemas import topics
from schemas.decision_event import DecisionEvent

from .transform import (
    DLQ_HEADER_CONSUMER_GROUP,
    DLQ_HEADER_ORIGIN_OFFSET,
    DLQ_HEADER_ORIGIN_PARTITION,
    DLQ_HEADER_ORIGIN_TOPIC,
    DLQ_HEADER_REASON,
    DeadLetterRecord,
)

DECISIONS_DESCRIPTION = (
    "One DecisionEvent v1 per decision returned by POST /v1/check, published by ingress before it answers "
    "(idempotent producer, acks=all; or spooled and relayed). Keyed by customer_id, so one customer's decisions "
    "stay in order within a partition. Delivery is at-least-once: deduplicate on event_id. Subscribe with a "
    "consumer group of your own; see docs/topics.md."
)
DLQ_DESCRIPTION = (
    "Records of governance.decisions.v1 that could not be decoded or failed the DecisionEvent schema, one "
    "DeadLetterRecord each: origin topic, partition, offset and key, the consumer group that rejected it, the "
    "reason, and the raw value (base64). Keyed like the original record."
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


def _headers(channel_title: str, decisions_topic: str) -> dict[str, Any]:
    if channel_title == decisions_topic:
        properties = {
            topics.HEADER_EVENT_TYPE: _string_header("always 'decision'", "decision"),
            topics.HEADER_SCHEMA_VERSION: _string_header("payload schema version (breaking = new topic)", "1"),
            topics.HEADER_CONTENT_TYPE: _string_header("payload encoding", "application/json"),
        }
    else:
        properties = {
            topics.HEADER_EVENT_TYPE: _string_header("always 'dead-letter'", "dead-letter"),
            topics.HEADER_SCHEMA_VERSION: _string_header("DeadLetterRecord version", "1"),
            topics.HEADER_CONTENT_TYPE: _string_header("payload encoding", "application/json"),
            DLQ_HEADER_ORIGIN_TOPIC: _string_header("topic the rejected record was read from"),
            DLQ_HEADER_ORIGIN_PARTITION: _string_header("its partition (decimal)"),
            DLQ_HEADER_ORIGIN_OFFSET: _string_header("its offset (decimal)"),
            DLQ_HEADER_CONSUMER_GROUP: _string_header("consumer group that rejected it"),
            DLQ_HEADER_REASON: _string_header("why: invalid_json, schema_violation, empty_value, ..."),
        }
    return {"type": "object", "properties": properties, "required": list(properties)[:3]}


def build_asyncapi(
    *,
    decisions_topic: str = topics.DECISIONS,
    dlq_topic: str = topics.DECISIONS_DLQ,
    bootstrap_servers: str = "localhost:9092",
    version: str = "1.0.0",
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the decision stream, as a JSON-ready dict."""
    broker = build_kafka_broker(bootstrap_servers, client_id="governance-asyncapi")
    declare_contract(broker, decisions_topic=decisions_topic, dlq_topic=dlq_topic)
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
    key_binding = {
        "kafka": {
            "key": {"type": "string", "format": "uuid", "description": "customer_id"},
            "bindingVersion": "0.5.0",
        }
    }
    for name, message in document.get("components", {}).get("messages", {}).items():
        channel_title = name.split(":", 1)[0]
        message["headers"] = _headers(channel_title, decisions_topic)
        message["bindings"] = key_binding
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
        bootstrap_servers=settings.kafka_bootstrap_servers,
    )
