"""Sentry (``infra/sentry.py``): off without ``SENTRY_DSN``; an event's bodies, credentials and personal data are
scrubbed and keys masked; an error in a request of a real app reaches a stand-in for sentry.io tagged with its
role, request id and customer."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
import sentry_sdk
from fastapi import Request

from infra.logs import customer_id_var, mask_secrets
from infra.sentry import init_sentry, scrub_event
from ingress.app import create_app
from ingress.auth.keys import generate_key
from ingress.settings import IngressSettings
from tests.support.sentry_receiver import EnvelopeReceiver

EMAIL = "jane.doe@example.com"


def test_scrub_event_drops_bodies_credentials_and_masks_keys() -> None:
    key = generate_key("live").key
    admin = generate_key("admin").key
    event = {
        "message": f"failed for {key}",
        "exception": {"values": [{"type": "RuntimeError", "value": f"admin {admin} and Bearer tok3n.abc"}]},
        "request": {
            "url": "http://testserver/v1/check",
            "method": "POST",
            "query_string": f"api_key={key}",
            "headers": {"Authorization": f"Bearer {key}", "Cookie": "session=abc", "X-Api-Key": key, "Accept": "*/*"},
            "cookies": {"session": "abc"},
            "data": {"context": {"email": EMAIL}},
            "env": {"REMOTE_ADDR": "10.0.0.7"},
        },
        "breadcrumbs": {"values": [{"message": f"Authorization: Bearer {key}"}]},
        "tags": {"existing": "kept"},
    }
    scrubbed = scrub_event(event, role="workers", request_id="req_abc", customer_id="c-1")
    text = json.dumps(scrubbed)
    for secret in (key, admin, key.rsplit("_", 1)[1], admin.rsplit("_", 1)[1], "tok3n.abc", EMAIL, "10.0.0.7"):
        assert secret not in text
    assert "session=abc" not in text
    assert scrubbed["request"]["headers"] == {"Accept": "*/*"}
    assert scrubbed["tags"] == {"existing": "kept", "role": "workers", "request_id": "req_abc", "customer_id": "c-1"}
    assert scrubbed["message"] == f"failed for {mask_secrets(key)}"


def test_sentry_is_off_without_a_dsn(tmp_path: Path) -> None:
    settings = IngressSettings.model_validate({"ENVIRONMENT": "test", "GOVERNANCE_STATE_DIR": str(tmp_path)})
    assert settings.sentry_dsn == ""
    assert init_sentry("ingress", settings) is False
    assert not sentry_sdk.get_client().is_active()


@pytest.mark.usefixtures("sentry_off_afterwards")
async def test_error_in_a_request_reaches_sentry_tagged_and_scrubbed(
    sentry_receiver: EnvelopeReceiver, tmp_path: Path
) -> None:
    settings = IngressSettings.model_validate(
        {"ENVIRONMENT": "test", "GOVERNANCE_STATE_DIR": str(tmp_path), "SENTRY_DSN": sentry_receiver.dsn}
    )
    assert init_sentry("ingress", settings) is True
    key = generate_key("live").key
    customer_id = str(uuid.uuid4())
    marker = f"body-marker-{uuid.uuid4().hex}"

    app = create_app(settings)

    async def fail(request: Request) -> None:  # a test-only route: no real endpoint fails on purpose
        payload = await request.json()
        customer_id_var.set(customer_id)
        assert payload["note"] == marker  # read, so the framework holds the body: it must still not be sent
        raise RuntimeError(f"engine failed for {request.headers['authorization']} (key {request.headers['x-api-key']})")

    app.add_api_route("/test-only/fail", fail, methods=["POST"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.post(
            "/test-only/fail",
            json={"note": marker, "context": {"email": EMAIL}},
            headers={"Authorization": f"Bearer {key}", "Cookie": "session=s3cr3t-cookie", "X-Api-Key": key},
        )
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]

    events = sentry_receiver.wait_for_events()
    assert events, "no event reached the Sentry receiver"
    ours = [e for e in events if e.get("tags", {}).get("request_id") == request_id]
    assert ours, [e.get("tags") for e in events]
    event = ours[0]
    assert event["tags"]["role"] == "ingress"
    assert event["tags"]["customer_id"] == customer_id
    assert event["environment"] == "test"
    assert event["release"].startswith("governance@")
    assert "RuntimeError" in json.dumps(event.get("exception", {}))
    headers = {k.lower() for k in event.get("request", {}).get("headers", {})}
    assert not headers & {"authorization", "cookie", "x-api-key"}
    assert "data" not in event.get("request", {})

    everything = sentry_receiver.text()
    for secret in (key, key.rsplit("_", 1)[1], "s3cr3t-cookie", marker, EMAIL):
        assert secret not in everything, secret
    # The exception text arrived, masked as the logs mask it.
    assert "engine failed for Bearer" in everything
    assert f"(key {mask_secrets(key)[:-1]}" in everything
