"""Admin API, customers: create, list, show, update (rate limit override and reset), delete, duplicates."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from ingress.auth.deps import CustomerDep
from tests.conftest import SeededCustomer


@pytest.fixture
def api(app: FastAPI) -> FastAPI:
    """The app with cheap bcrypt for the keys it hashes (verification cost follows the stored hash)."""
    app.state.settings = app.state.settings.model_copy(update={"bcrypt_rounds": 4})
    return app


@pytest.fixture
def admin(admin_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_key}"}


def _name() -> str:
    return f"Customer {uuid.uuid4().hex[:8]}"


async def test_create_show_list(api: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    name = _name()
    created = await client.post("/admin/customers", json={"name": name, "tier": "pro"}, headers=admin)
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"id", "name", "tier", "rate_limit", "created_at", "updated_at"}
    assert (body["name"], body["tier"], body["rate_limit"]) == (name, "pro", None)
    uuid.UUID(body["id"])

    shown = await client.get(f"/admin/customers/{body['id']}", headers=admin)
    assert shown.status_code == 200
    assert shown.json() == body

    default_tier = await client.post("/admin/customers", json={"name": _name()}, headers=admin)
    assert default_tier.json()["tier"] == "free"

    listed = await client.get("/admin/customers", params={"limit": 500}, headers=admin)
    assert listed.status_code == 200
    page = listed.json()
    assert set(page) == {"items", "total", "limit", "offset"}
    assert body in page["items"]
    assert page["total"] >= 2

    one = (await client.get("/admin/customers", params={"limit": 1, "offset": 1}, headers=admin)).json()
    assert len(one["items"]) == 1
    assert (one["limit"], one["offset"], one["total"]) == (1, 1, page["total"])
    assert one["items"][0] == page["items"][1]


async def test_names_are_unique_among_live_customers(
    api: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    name = _name()
    first = await client.post("/admin/customers", json={"name": name}, headers=admin)
    assert first.status_code == 201
    duplicate = await client.post("/admin/customers", json={"name": name.upper()}, headers=admin)
    assert duplicate.status_code == 409
    assert duplicate.json()["error"] == "conflict"
    assert "already exists" in duplicate.json()["message"]
    assert duplicate.json()["request_id"] == duplicate.headers["x-request-id"]

    other = await client.post("/admin/customers", json={"name": _name()}, headers=admin)
    renamed = await client.patch(f"/admin/customers/{other.json()['id']}", json={"name": name}, headers=admin)
    assert renamed.status_code == 409

    # Once deleted, the name is free again.
    assert (await client.delete(f"/admin/customers/{first.json()['id']}", headers=admin)).status_code == 200
    again = await client.post("/admin/customers", json={"name": name}, headers=admin)
    assert again.status_code == 201


async def test_update_name_tier_and_rate_limit(api: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    created = (await client.post("/admin/customers", json={"name": _name()}, headers=admin)).json()
    url = f"/admin/customers/{created['id']}"

    new_name = _name()
    renamed = await client.patch(url, json={"name": new_name, "tier": "pro"}, headers=admin)
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["tier"]) == (new_name, "pro")

    limited = await client.patch(url, json={"rate_limit": {"capacity": 500, "window_s": 30}}, headers=admin)
    assert limited.json()["rate_limit"] == {"capacity": 500, "window_s": 30}
    assert limited.json()["name"] == new_name  # left-out fields stay

    unchanged = await client.patch(url, json={}, headers=admin)
    assert unchanged.json() == limited.json()

    reset = await client.patch(url, json={"rate_limit": None}, headers=admin)
    assert reset.status_code == 200
    assert reset.json()["rate_limit"] is None
    assert reset.json()["tier"] == "pro"


async def test_delete_revokes_keys_deactivates_policies_and_keeps_history(
    api: FastAPI,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    customer: SeededCustomer,
    pg_pool: asyncpg.Pool,
) -> None:
    @api.get("/test/customer-only")
    async def customer_only(principal: CustomerDep) -> dict[str, str]:
        return {"customer_id": str(principal.customer_id)}

    live = {"Authorization": f"Bearer {customer.key}"}
    assert (await client.get("/test/customer-only", headers=live)).status_code == 200
    policy = await client.post(
        "/policies", json={"customer_id": str(customer.id), "name": "p", "rules": {"max_tokens": 10}}, headers=admin
    )
    assert policy.status_code == 201

    deleted = await client.delete(f"/admin/customers/{customer.id}", headers=admin)
    assert deleted.status_code == 200
    summary = deleted.json()
    assert summary["id"] == str(customer.id)
    assert (summary["keys_revoked"], summary["policies_deactivated"]) == (1, 1)

    refused = await client.get("/test/customer-only", headers=live)
    assert refused.status_code == 401
    assert refused.json()["details"]["reason"] == "revoked"

    assert (await client.get(f"/admin/customers/{customer.id}", headers=admin)).status_code == 404
    assert (await client.delete(f"/admin/customers/{customer.id}", headers=admin)).status_code == 404
    assert (await client.patch(f"/admin/customers/{customer.id}", json={}, headers=admin)).status_code == 404
    listed = (await client.get("/admin/customers", params={"limit": 500}, headers=admin)).json()
    assert str(customer.id) not in {c["id"] for c in listed["items"]}

    key = await pg_pool.fetchrow("SELECT active, revoked_at FROM api_keys WHERE key_id = $1", customer.key_id)
    assert key["active"] is False
    assert key["revoked_at"] is not None
    stored = await pg_pool.fetchrow("SELECT active, deleted_at FROM policies WHERE id = $1", policy.json()["id"])
    assert stored["active"] is False
    assert stored["deleted_at"] is None  # deactivated, not deleted: it is the customer that is gone
    assert (await pg_pool.fetchval("SELECT deleted_at FROM customers WHERE id = $1", customer.id)) is not None

    history = await client.get(f"/policies/{policy.json()['id']}/versions", headers=admin)
    assert [(v["version"], v["active"]) for v in history.json()] == [(1, True), (2, False)]
    assert (await client.get(f"/policies/{policy.json()['id']}", headers=admin)).status_code == 404


async def test_unknown_and_malformed_ids_are_not_found(
    api: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for raw in (str(uuid.uuid4()), "not-a-uuid", "1"):
        for method in ("GET", "PATCH", "DELETE"):
            response = await client.request(
                method, f"/admin/customers/{raw}", json={} if method == "PATCH" else None, headers=admin
            )
            assert response.status_code == 404, (method, raw, response.text)
            assert response.json()["error"] == "not_found"
            assert response.json()["message"] == "customer not found"
