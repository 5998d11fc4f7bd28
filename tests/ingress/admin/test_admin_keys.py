"""Admin API, keys: issue (shown once), list (never the secret), rotate with a grace period, revoke."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from ingress.auth.deps import CustomerDep
from ingress.auth.keys import parse_key, verify_key_hash
from ingress.auth.records import AuthFailure
from ingress.auth.store import postgres_record_loader
from ingress.auth.verifier import KeyVerifier
from tests.conftest import SeededCustomer

LISTED_FIELDS = {
    "id",
    "key_id",
    "name",
    "customer_id",
    "active",
    "status",
    "created_at",
    "rotated_at",
    "expires_at",
    "revoked_at",
    "last_used_at",
    "age_days",
    "replaces",
}


@pytest.fixture
def api(app: FastAPI) -> FastAPI:
    app.state.settings = app.state.settings.model_copy(update={"bcrypt_rounds": 4})

    @app.get("/test/customer-only")
    async def customer_only(principal: CustomerDep) -> dict[str, str]:
        return {"customer_id": str(principal.customer_id), "key_id": principal.key_id}

    return app


@pytest.fixture
def admin(admin_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_key}"}


async def _as_customer(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.get("/test/customer-only", headers={"Authorization": f"Bearer {key}"})


async def _issue(client: httpx.AsyncClient, admin: dict[str, str], customer_id: uuid.UUID, name: str) -> httpx.Response:
    return await client.post("/admin/keys", json={"customer_id": str(customer_id), "name": name}, headers=admin)


async def test_issue_once_then_never_again(
    api: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], customer: SeededCustomer, pg_pool: asyncpg.Pool
) -> None:
    issued = await _issue(client, admin, customer.id, "prod-api-key-001")
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert {"id", "key_id", "key", "name", "customer_id", "created_at"} <= set(body)
    assert body["key"].startswith("sk_live_")
    assert parse_key(body["key"]).key_id == body["key_id"]
    assert (body["name"], body["customer_id"]) == ("prod-api-key-001", str(customer.id))

    stored = await pg_pool.fetchval("SELECT key_hash FROM api_keys WHERE key_id = $1", body["key_id"])
    assert stored != body["key"]
    assert verify_key_hash(body["key"], stored)

    works = await _as_customer(client, body["key"])
    assert works.status_code == 200
    assert works.json()["customer_id"] == str(customer.id)

    listed = await client.get("/admin/keys", params={"customer_id": str(customer.id)}, headers=admin)
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert {k["key_id"] for k in items} == {customer.key_id, body["key_id"]}
    for item in items:
        assert set(item) == LISTED_FIELDS
        assert item["status"] == "active"
        assert item["age_days"] == 0
    shown = await client.get(f"/admin/keys/{body['id']}", headers=admin)
    by_key_id = await client.get(f"/admin/keys/{body['key_id']}", headers=admin)
    assert shown.json() == by_key_id.json()
    everything = await client.get("/admin/keys", params={"limit": 500}, headers=admin)
    for response in (listed, shown, by_key_id, everything):
        assert body["key"] not in response.text
        assert stored not in response.text
        assert "key_hash" not in response.text


async def test_duplicate_live_name_conflicts_and_unknown_customers_are_not_found(
    api: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], customer: SeededCustomer
) -> None:
    assert (await _issue(client, admin, customer.id, "ci")).status_code == 201
    duplicate = await _issue(client, admin, customer.id, "CI")
    assert duplicate.status_code == 409
    assert duplicate.json()["error"] == "conflict"

    unknown = await _issue(client, admin, uuid.uuid4(), "x")
    assert unknown.status_code == 404
    assert unknown.json()["message"] == "customer not found"
    listed = await client.get("/admin/keys", params={"customer_id": str(uuid.uuid4())}, headers=admin)
    assert listed.status_code == 404

    await client.delete(f"/admin/customers/{customer.id}", headers=admin)
    assert (await _issue(client, admin, customer.id, "after-delete")).status_code == 404
    assert (await client.get("/admin/keys", params={"customer_id": str(customer.id)}, headers=admin)).status_code == 404
    assert (await client.get(f"/admin/keys/{customer.key_id}", headers=admin)).status_code == 404
    assert (await client.post(f"/admin/keys/{customer.key_id}/rotate", headers=admin)).status_code == 404
    assert (await client.post(f"/admin/keys/{customer.key_id}/revoke", headers=admin)).status_code == 404


async def test_revoke_stops_the_key_at_once(
    api: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], customer: SeededCustomer
) -> None:
    assert (await _as_customer(client, customer.key)).status_code == 200  # now cached in the verifier
    revoked = await client.post(f"/admin/keys/{customer.key_id}/revoke", headers=admin)
    assert revoked.status_code == 200
    assert (revoked.json()["status"], revoked.json()["active"]) == ("revoked", False)
    assert revoked.json()["revoked_at"] is not None
    assert customer.key not in revoked.text

    refused = await _as_customer(client, customer.key)
    assert refused.status_code == 401
    assert refused.json()["details"]["reason"] == "revoked"

    again = await client.post(f"/admin/keys/{customer.key_id}/revoke", headers=admin)
    assert again.status_code == 200
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]

    # A revoked key cannot be rotated, and its name is free for a new key.
    rotate = await client.post(f"/admin/keys/{customer.key_id}/rotate", headers=admin)
    assert rotate.status_code == 409
    assert (await _issue(client, admin, customer.id, "test-key")).status_code == 201


async def test_rotation_grace_window_with_an_injected_clock(
    api: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], customer: SeededCustomer, pg_pool: asyncpg.Pool
) -> None:
    rotated = await client.post(f"/admin/keys/{customer.key_id}/rotate", json={"grace_period_s": 3600}, headers=admin)
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["key"].startswith("sk_live_")
    assert new["key"] != customer.key
    assert (new["name"], new["customer_id"], new["replaces_key_id"]) == ("test-key", str(customer.id), customer.key_id)
    old_expires = datetime.fromisoformat(new["replaced_key_expires_at"])
    created = datetime.fromisoformat(new["created_at"])
    assert abs((old_expires - created) - timedelta(hours=1)) < timedelta(seconds=1)

    old = (await client.get(f"/admin/keys/{customer.key_id}", headers=admin)).json()
    assert (old["status"], old["active"]) == ("rotated", True)
    assert old["rotated_at"] is not None

    async def get_pool() -> asyncpg.Pool:
        return pg_pool

    now = {"t": old_expires - timedelta(seconds=1)}
    verifier = KeyVerifier(postgres_record_loader(get_pool), clock=lambda: now["t"])
    assert (await verifier.verify(f"Bearer {new['key']}", "live")).customer_id == customer.id
    assert (await verifier.verify(f"Bearer {customer.key}", "live")).customer_id == customer.id  # in grace
    now["t"] = old_expires + timedelta(seconds=1)
    assert (await verifier.verify(f"Bearer {new['key']}", "live")).customer_id == customer.id
    with pytest.raises(AuthFailure) as info:
        await verifier.verify(f"Bearer {customer.key}", "live")
    assert info.value.reason == "expired"

    # Through HTTP on the real clock, inside the grace period both keys work.
    assert (await _as_customer(client, customer.key)).status_code == 200
    assert (await _as_customer(client, new["key"])).status_code == 200

    # An already rotated key is not rotated twice; its successor is.
    assert (await client.post(f"/admin/keys/{customer.key_id}/rotate", headers=admin)).status_code == 409
    successor = await client.post(f"/admin/keys/{new['id']}/rotate", json={"grace_period_s": 0}, headers=admin)
    assert successor.status_code == 201
    refused = await _as_customer(client, new["key"])
    assert refused.status_code == 401
    assert refused.json()["details"]["reason"] == "expired"
    assert (await client.get(f"/admin/keys/{new['id']}", headers=admin)).json()["status"] == "expired"
    assert (await _as_customer(client, successor.json()["key"])).status_code == 200


async def test_rotation_defaults_to_seven_days_without_a_body(
    api: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], customer: SeededCustomer
) -> None:
    rotated = await client.post(f"/admin/keys/{customer.key_id}/rotate", headers=admin)
    assert rotated.status_code == 201, rotated.text
    body = rotated.json()
    grace = datetime.fromisoformat(body["replaced_key_expires_at"]) - datetime.fromisoformat(body["created_at"])
    assert abs(grace - timedelta(days=7)) < timedelta(seconds=1)
    assert datetime.fromisoformat(body["replaced_key_expires_at"]) > datetime.now(UTC)


async def test_unknown_and_malformed_key_references_are_not_found(
    api: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for ref in (str(uuid.uuid4()), "keyid_doesnotexist", "nonsense"):
        for method, path in (("GET", ""), ("POST", "/rotate"), ("POST", "/revoke")):
            response = await client.request(method, f"/admin/keys/{ref}{path}", headers=admin)
            assert response.status_code == 404, (method, ref, path)
            assert response.json()["message"] == "key not found"
