"""Admin API refusals: 401 without (or with a bad) admin key, 403 for a customer key, 422 naming the field for
bad input, always the JSON error shape with the request id, never a 500."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from ingress.auth.keys import generate_key
from tests.conftest import SeededCustomer, insert_admin_key

ENDPOINTS = [
    ("POST", "/admin/customers"),
    ("GET", "/admin/customers"),
    ("GET", "/admin/customers/{customer}"),
    ("PATCH", "/admin/customers/{customer}"),
    ("DELETE", "/admin/customers/{customer}"),
    ("POST", "/admin/keys"),
    ("GET", "/admin/keys"),
    ("GET", "/admin/keys/{key}"),
    ("POST", "/admin/keys/{key}/rotate"),
    ("POST", "/admin/keys/{key}/revoke"),
    ("POST", "/policies"),
    ("GET", "/policies"),
    ("GET", "/policies/{policy}"),
    ("PUT", "/policies/{policy}"),
    ("PATCH", "/policies/{policy}"),
    ("DELETE", "/policies/{policy}"),
    ("GET", "/policies/{policy}/versions"),
    ("POST", "/admin/policies"),
    ("GET", "/admin/policies/{policy}/versions"),
]


@dataclass(frozen=True)
class Targets:
    customer: str
    key: str
    policy: str

    def fill(self, path: str) -> str:
        return path.format(customer=self.customer, key=self.key, policy=self.policy)


@pytest.fixture
def admin(admin_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_key}"}


@pytest.fixture
async def targets(client: httpx.AsyncClient, admin: dict[str, str], customer: SeededCustomer) -> Targets:
    policy = await client.post(
        "/policies", json={"customer_id": str(customer.id), "name": "p", "rules": {}}, headers=admin
    )
    return Targets(str(customer.id), customer.key_id, policy.json()["id"])


def _assert_error_shape(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["error"] == code
    assert body["message"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_every_endpoint_needs_an_admin_key(
    client: httpx.AsyncClient, targets: Targets, customer: SeededCustomer, pg_pool: asyncpg.Pool
) -> None:
    revoked = await insert_admin_key(pg_pool, "revoked")
    await pg_pool.execute(
        "UPDATE admin_keys SET revoked_at = now(), active = false WHERE key_id = $1",
        "keyid_" + revoked.split("_")[2],
    )
    for method, path in ENDPOINTS:
        url = targets.fill(path)
        missing = await client.request(method, url, json={})
        body = _assert_error_shape(missing, 401, "unauthorized")
        assert body["details"]["reason"] == "missing"
        assert missing.headers["www-authenticate"] == "Bearer"

        as_customer = await client.request(method, url, json={}, headers={"Authorization": f"Bearer {customer.key}"})
        _assert_error_shape(as_customer, 403, "forbidden")
        assert customer.key not in as_customer.text

        for header, reason in (
            ("Bearer sk_admin_forged", "malformed"),
            (f"Bearer {generate_key('admin').key}", "unknown"),
            (f"Bearer {revoked}", "revoked"),
            ("Basic dXNlcjpwYXNz", "malformed"),
        ):
            response = await client.request(method, url, json={}, headers={"Authorization": header})
            assert _assert_error_shape(response, 401, "unauthorized")["details"]["reason"] == reason, (url, header)
    # Nothing was changed by any refused call.
    assert await pg_pool.fetchval("SELECT deleted_at FROM customers WHERE id = $1", customer.id) is None


BAD_INPUT: list[tuple[str, str, Any, str]] = [
    # fields the server owns
    ("POST", "/admin/customers", {"name": "n", "id": str(uuid.uuid4())}, "body.id"),
    ("POST", "/admin/customers", {"name": "n", "created_at": "2025-01-01T00:00:00Z"}, "body.created_at"),
    ("POST", "/admin/customers", {"name": "n", "deleted_at": None}, "body.deleted_at"),
    ("PATCH", "/admin/customers/{customer}", {"updated_at": "2025-01-01T00:00:00Z"}, "body.updated_at"),
    ("POST", "/admin/keys", {"customer_id": "{customer}", "name": "k", "key_hash": "x"}, "body.key_hash"),
    ("POST", "/admin/keys", {"customer_id": "{customer}", "name": "k", "key": "sk_live_x"}, "body.key"),
    ("POST", "/admin/keys/{key}/rotate", {"expires_at": "2030-01-01T00:00:00Z"}, "body.expires_at"),
    ("POST", "/policies", {"customer_id": "{customer}", "name": "x", "rules": {}, "version": 7}, "body.version"),
    ("PUT", "/policies/{policy}", {"name": "x", "rules": {}, "id": "{policy}"}, "body.id"),
    ("PUT", "/policies/{policy}", {"name": "x", "rules": {}, "customer_id": "{customer}"}, "body.customer_id"),
    ("PATCH", "/policies/{policy}", {"version": 2}, "body.version"),
    ("PATCH", "/policies/{policy}", {"deleted_at": None}, "body.deleted_at"),
    # missing, wrong type, out of range
    ("POST", "/admin/customers", {}, "body.name"),
    ("POST", "/admin/customers", {"name": ""}, "body.name"),
    ("POST", "/admin/customers", {"name": "   "}, "body.name"),
    ("POST", "/admin/customers", {"name": "x" * 201}, "body.name"),
    ("POST", "/admin/customers", {"name": "bad\u0000name"}, "body.name"),
    ("POST", "/admin/customers", {"name": 42}, "body.name"),
    ("POST", "/admin/customers", {"name": "n", "tier": "enterprise"}, "body.tier"),
    (
        "POST",
        "/admin/customers",
        {"name": "n", "rate_limit": {"capacity": 0, "window_s": 60}},
        "body.rate_limit.capacity",
    ),
    ("PATCH", "/admin/customers/{customer}", {"name": None}, "body.name"),
    ("PATCH", "/admin/customers/{customer}", {"tier": None}, "body.tier"),
    ("PATCH", "/admin/customers/{customer}", {"rate_limit": {"capacity": 10}}, "body.rate_limit.window_s"),
    (
        "PATCH",
        "/admin/customers/{customer}",
        {"rate_limit": {"capacity": 10, "window_s": -1}},
        "body.rate_limit.window_s",
    ),
    (
        "PATCH",
        "/admin/customers/{customer}",
        {"rate_limit": {"capacity": 2**40, "window_s": 1}},
        "body.rate_limit.capacity",
    ),
    (
        "PATCH",
        "/admin/customers/{customer}",
        {"rate_limit": {"capacity": 1, "window_s": 1, "burst": 2}},
        "body.rate_limit.burst",
    ),
    ("POST", "/admin/keys", {"customer_id": "not-a-uuid", "name": "k"}, "body.customer_id"),
    ("POST", "/admin/keys", {"customer_id": "{customer}"}, "body.name"),
    ("POST", "/admin/keys", {"name": "k"}, "body.customer_id"),
    ("POST", "/admin/keys/{key}/rotate", {"grace_period_s": -1}, "body.grace_period_s"),
    ("POST", "/admin/keys/{key}/rotate", {"grace_period_s": "soon"}, "body.grace_period_s"),
    ("POST", "/admin/keys/{key}/rotate", {"grace_period_s": 10**12}, "body.grace_period_s"),
    ("POST", "/policies", {"customer_id": "{customer}", "name": "x"}, "body.rules"),
    ("POST", "/policies", {"customer_id": "{customer}", "name": "x", "rules": {}, "mode": "audit"}, "body.mode"),
    ("POST", "/policies", {"customer_id": "{customer}", "name": "x", "rules": {}, "active": "maybe"}, "body.active"),
    # JSON types are strict: 0 is not false, true is not 1
    ("POST", "/policies", {"customer_id": "{customer}", "name": "x", "rules": {}, "active": 0}, "body.active"),
    ("PUT", "/policies/{policy}", {"name": "x", "rules": {}, "active": 1}, "body.active"),
    ("PATCH", "/policies/{policy}", {"active": "true"}, "body.active"),
    (
        "PATCH",
        "/admin/customers/{customer}",
        {"rate_limit": {"capacity": True, "window_s": 60}},
        "body.rate_limit.capacity",
    ),
    ("POST", "/admin/keys/{key}/rotate", {"grace_period_s": 60.0}, "body.grace_period_s"),
    ("POST", "/policies", {"customer_id": "{customer}", "name": "x", "rules": None}, "body.rules"),
    ("PUT", "/policies/{policy}", {"rules": {}}, "body.name"),
    ("PATCH", "/policies/{policy}", {"rules": None}, "body.rules"),
    ("PATCH", "/policies/{policy}", {"mode": None}, "body.mode"),
    # query parameters
    ("GET", "/admin/customers?limit=0", None, "query.limit"),
    ("GET", "/admin/customers?limit=501", None, "query.limit"),
    ("GET", "/admin/customers?offset=-1", None, "query.offset"),
    ("GET", "/admin/keys?customer_id=nope", None, "query.customer_id"),
    ("GET", "/policies?customer_id=nope", None, "query.customer_id"),
    # not an object
    ("POST", "/admin/customers", [{"name": "n"}], "body"),
    ("POST", "/policies", "just a string", "body"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), BAD_INPUT)
async def test_bad_input_is_422_naming_the_field(
    *,
    method: str,
    path: str,
    body: Any,
    field: str,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    targets: Targets,
    pg_pool: asyncpg.Pool,
) -> None:
    if isinstance(body, dict):
        body = {k: targets.fill(v) if isinstance(v, str) else v for k, v in body.items()}
    before = await pg_pool.fetchval("SELECT count(*) FROM customers")
    response = await client.request(method, targets.fill(path), json=body, headers=admin)
    payload = _assert_error_shape(response, 422, "validation_error")
    fields = [d["field"] for d in payload["details"]]
    assert field in fields, fields
    assert payload["message"].startswith(fields[0])
    assert await pg_pool.fetchval("SELECT count(*) FROM customers") == before
    version = await pg_pool.fetchval("SELECT version FROM policies WHERE id = $1", uuid.UUID(targets.policy))
    assert version == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/admin/customers"), ("POST", "/admin/keys"), ("POST", "/policies"), ("PATCH", "/policies/{policy}")],
)
@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"name": "Acme",', "application/json"),
        (b"{'name': 'Acme'}", "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"", "application/json"),
        (b"name=Acme", "application/x-www-form-urlencoded"),
    ],
)
async def test_malformed_bodies_are_422(
    *,
    method: str,
    path: str,
    content: bytes,
    content_type: str,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    targets: Targets,
) -> None:
    response = await client.request(
        method, targets.fill(path), content=content, headers=admin | {"Content-Type": content_type}
    )
    payload = _assert_error_shape(response, 422, "validation_error")
    assert payload["details"][0]["field"].startswith("body")


async def test_customer_key_cannot_reach_other_customers_through_admin_routes(
    client: httpx.AsyncClient, customer: SeededCustomer
) -> None:
    response = await client.post(
        "/admin/keys",
        json={"customer_id": str(customer.id), "name": "escalate"},
        headers={"Authorization": f"Bearer {customer.key}"},
    )
    _assert_error_shape(response, 403, "forbidden")


async def test_database_unavailable_is_503_not_500(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    await client.get("/admin/customers", headers=admin)  # the admin key is now cached: auth needs no database

    async def unreachable() -> asyncpg.Pool:
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(app.state.resources, "postgres", unreachable)
    for method, path in (("GET", "/admin/customers"), ("POST", "/admin/customers"), ("GET", "/policies")):
        response = await client.request(method, path, json={"name": "n"}, headers=admin)
        _assert_error_shape(response, 503, "unavailable")
        assert response.headers["retry-after"] == "2"


async def test_keys_never_reach_the_logs(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    customer: SeededCustomer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"bcrypt_rounds": 4})
    caplog.set_level(logging.DEBUG)
    issued = await client.post("/admin/keys", json={"customer_id": str(customer.id), "name": "l"}, headers=admin)
    rotated = await client.post(f"/admin/keys/{issued.json()['id']}/rotate", headers=admin)
    assert "key.create" in caplog.text
    for secret in (issued.json()["key"], rotated.json()["key"], admin["Authorization"].split()[1]):
        assert secret not in caplog.text
        for record in caplog.records:
            assert secret not in str(record.__dict__)


async def test_openapi_lists_the_admin_routes(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/admin/customers", "/admin/keys/{key_ref}/rotate", "/policies/{policy_id}", "/admin/policies"):
        assert path in paths
