"""Answers carrying secrets shown once (a new key, a rotated key, a webhook's signing secret) are never cached: every
JSON answer is ``Cache-Control: no-store`` (ingress/http/responses.py)."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import SeededCustomer


async def test_secrets_shown_once_are_not_stored_by_any_cache(
    client: httpx.AsyncClient, admin_key: str, customer: SeededCustomer
) -> None:
    admin = {"Authorization": f"Bearer {admin_key}"}
    name = f"No Store {uuid.uuid4().hex[:8]}"
    created_customer = await client.post("/admin/customers", json={"name": name, "tier": "pro"}, headers=admin)
    assert created_customer.status_code == 201, created_customer.text
    key = await client.post(
        "/admin/keys", json={"customer_id": created_customer.json()["id"], "name": "no-store-key"}, headers=admin
    )
    assert key.status_code == 201, key.text
    assert key.json()["key"].startswith("sk_live_")
    rotated = await client.post(f"/admin/keys/{customer.key_id}/rotate", headers=admin)
    assert rotated.status_code == 201, rotated.text
    assert rotated.json()["key"].startswith("sk_live_")
    webhook = await client.post(
        "/admin/webhooks",
        json={"customer_id": str(customer.id), "url": "https://example.com/hooks", "description": "no-store"},
        headers=admin,
    )
    assert webhook.status_code == 201, webhook.text
    assert webhook.json()["secret"].startswith("whsec_")
    for answer in (key, rotated, webhook):
        assert answer.headers["Cache-Control"] == "no-store", answer.request.url


async def test_every_json_answer_and_error_is_no_store(client: httpx.AsyncClient, customer: SeededCustomer) -> None:
    check = await client.post(
        "/v1/check",
        json={"operations": [{"type": "llm_call", "model": "gpt-4", "tokens": 5}], "context": {}},
        headers={"Authorization": f"Bearer {customer.key}"},
    )
    refused = await client.get("/admin/customers")
    missing = await client.get("/no/such/path")
    for answer in (check, refused, missing):
        assert answer.headers["Cache-Control"] == "no-store", answer.request.url
    assert refused.status_code == 401
    assert missing.status_code == 404
