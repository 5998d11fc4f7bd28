"""The request digest is keyed per request: a reader of the log cannot confirm a guessed request offline, while the
caller, holding the salt its receipt carries, can prove what it sent.

A real check through HTTP; the decision event read back from the real Kafka topic, exactly as the audit writer
(and so ClickHouse) and any other subscriber receive it.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from ingress.settings import IngressSettings
from schemas.decision_event import DecisionEvent
from schemas.receipt import b64url_decode, canonical_json, digest_matches, request_digest
from tests.conftest import SeededCustomer
from tests.ingress.check.test_check import auth

SSN = "123-45-6789"


def _request(ssn: str) -> dict[str, Any]:
    return {
        "operations": [{"type": "llm_call", "model": "gpt-4", "tokens": 50}],
        "context": {"user_id": "user_123", "note": f"customer ssn {ssn}"},
    }


async def _event_bytes(settings: IngressSettings, event_id: str, timeout: float = 20.0) -> bytes:
    consumer = AIOKafkaConsumer(
        settings.decisions_topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if record.value and event_id.encode() in record.value:
                        value: bytes = record.value
                        return value
    finally:
        await consumer.stop()
    raise AssertionError(f"event {event_id} not on {settings.decisions_topic} within {timeout} s")


async def test_the_logged_digest_cannot_confirm_a_guess_and_the_salt_proves_the_request(
    client: httpx.AsyncClient, customer: SeededCustomer, settings: IngressSettings
) -> None:
    sent = _request(SSN)
    response = await client.post("/v1/check", json=sent, headers=auth(customer))
    assert response.status_code == 200, response.text
    receipt = response.json()["receipt"]
    salt_text = receipt["request_salt"]
    raw = await _event_bytes(settings, response.json()["event_id"])
    event = DecisionEvent.model_validate_json(raw)

    # What the log holds: the receipt's digest, keyed, and nowhere the salt (nor the value that was sent).
    assert event.request_digest == receipt["signed"]["request_digest"]
    assert event.request_digest.startswith("hmac-sha256:")
    assert salt_text.encode() not in raw
    assert b"request_salt" not in raw
    assert SSN.encode() not in raw
    assert event.receipt is not None
    assert event.receipt.signed.request_digest == event.request_digest

    # A reader of the log guessing exactly right cannot confirm it: neither the old unsalted digest nor a digest
    # under any salt but the caller's matches.
    digest_hex = event.request_digest.removeprefix("hmac-sha256:")
    assert hashlib.sha256(canonical_json(sent)).hexdigest() != digest_hex
    assert hashlib.sha256(json.dumps(sent).encode()).hexdigest() != digest_hex
    assert not digest_matches(event.request_digest, sent, None)
    assert not digest_matches(event.request_digest, sent, bytes(32))

    # The caller, holding the salt from its receipt, proves what it sent, and only that.
    salt = b64url_decode(salt_text)
    assert digest_matches(event.request_digest, sent, salt)
    assert request_digest(sent, salt) == event.request_digest
    assert not digest_matches(event.request_digest, _request("987-65-4321"), salt)

    # Keyed per request: the very same request again has another salt and another digest.
    again = (await client.post("/v1/check", json=sent, headers=auth(customer))).json()["receipt"]
    assert again["request_salt"] != salt_text
    assert again["signed"]["request_digest"] != event.request_digest
