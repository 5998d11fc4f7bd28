"""Admin API, policies: create, read, replace, patch, delete, version history; rules validated on write."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import SeededCustomer

POLICY_FIELDS = {"id", "customer_id", "name", "rules", "active", "mode", "version", "created_at", "updated_at"}
VERSION_FIELDS = {"policy_id", "version", "name", "rules", "active", "mode", "created_at"}


@pytest.fixture
def admin(admin_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_key}"}


async def _create(
    client: httpx.AsyncClient, admin: dict[str, str], customer_id: uuid.UUID, prefix: str = "", **fields: Any
) -> httpx.Response:
    body = {"customer_id": str(customer_id), "name": "policy", "rules": {"max_tokens": 1000}} | fields
    return await client.post(f"{prefix}/policies", json=body, headers=admin)


@pytest.mark.parametrize("prefix", ["", "/admin"])
async def test_lifecycle_and_history(
    prefix: str, client: httpx.AsyncClient, admin: dict[str, str], customer: SeededCustomer
) -> None:
    rules = {"max_external_calls": 2, "allowed_models": ["gpt-4"], "risk_weights": {"personal_data": 90}}
    created = await _create(client, admin, customer.id, prefix, name="Strict", rules=rules, mode="shadow")
    assert created.status_code == 201, created.text
    policy = created.json()
    assert set(policy) == POLICY_FIELDS
    assert policy["rules"] == rules  # as written: no defaults filled in
    assert (policy["active"], policy["mode"], policy["version"]) == (True, "shadow", 1)
    url = f"{prefix}/policies/{policy['id']}"

    assert (await client.get(url, headers=admin)).json() == policy
    listed = await client.get(f"{prefix}/policies", params={"customer_id": str(customer.id)}, headers=admin)
    assert listed.json()["items"] == [policy]
    assert listed.json()["total"] == 1

    patched = await client.patch(url, json={"active": False}, headers=admin)
    assert patched.status_code == 200
    assert (patched.json()["active"], patched.json()["version"], patched.json()["rules"]) == (False, 2, rules)

    same = await client.patch(url, json={"active": False}, headers=admin)
    assert same.json()["version"] == 2  # no change, no new version

    replaced = await client.put(url, json={"name": "Strict v2", "rules": {"block_personal_data": True}}, headers=admin)
    assert replaced.status_code == 200
    after = replaced.json()
    assert (after["name"], after["rules"], after["version"]) == ("Strict v2", {"block_personal_data": True}, 3)
    assert (after["active"], after["mode"]) == (True, "enforce")  # PUT: what is left out takes its default
    assert after["created_at"] == policy["created_at"]
    assert after["updated_at"] > policy["updated_at"]

    history = await client.get(f"{url}/versions", headers=admin)
    assert history.status_code == 200
    versions = history.json()
    assert all(set(v) == VERSION_FIELDS for v in versions)
    assert [(v["version"], v["name"], v["active"], v["mode"]) for v in versions] == [
        (1, "Strict", True, "shadow"),
        (2, "Strict", False, "shadow"),
        (3, "Strict v2", True, "enforce"),
    ]
    assert versions[0]["rules"] == rules
    assert versions[2]["rules"] == {"block_personal_data": True}

    deleted = await client.delete(url, headers=admin)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert (await client.get(url, headers=admin)).status_code == 404
    assert (await client.patch(url, json={"active": True}, headers=admin)).status_code == 404
    assert (await client.delete(url, headers=admin)).status_code == 404
    gone = await client.get(f"{prefix}/policies", params={"customer_id": str(customer.id)}, headers=admin)
    assert gone.json()["items"] == []
    history_after = (await client.get(f"{url}/versions", headers=admin)).json()
    assert [(v["version"], v["active"]) for v in history_after][-1] == (4, False)  # audit history stays

    # The name is free again once deleted.
    assert (await _create(client, admin, customer.id, prefix, name="Strict v2")).status_code == 201


async def test_stored_row_and_version_one(
    client: httpx.AsyncClient, admin: dict[str, str], customer: SeededCustomer, pg_pool: asyncpg.Pool
) -> None:
    policy = (await _create(client, admin, customer.id, rules={})).json()
    row = await pg_pool.fetchrow("SELECT rules, version, active, mode FROM policies WHERE id = $1", policy["id"])
    assert dict(row) == {"rules": {}, "version": 1, "active": True, "mode": "enforce"}
    assert await pg_pool.fetchval("SELECT count(*) FROM policy_versions WHERE policy_id = $1", policy["id"]) == 1


async def test_duplicate_names_conflict_per_customer(
    client: httpx.AsyncClient, admin: dict[str, str], customer: SeededCustomer, pg_pool: asyncpg.Pool
) -> None:
    from tests.conftest import insert_customer

    first = await _create(client, admin, customer.id, name="Same")
    assert first.status_code == 201
    duplicate = await _create(client, admin, customer.id, name="same")
    assert duplicate.status_code == 409
    assert duplicate.json()["error"] == "conflict"
    other = await insert_customer(pg_pool)
    assert (await _create(client, admin, other.id, name="Same")).status_code == 201

    second = (await _create(client, admin, customer.id, name="Second")).json()
    rename = await client.patch(f"/policies/{second['id']}", json={"name": "SAME"}, headers=admin)
    assert rename.status_code == 409


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ({"max_tokens": "lots"}, "body.rules.max_tokens"),
        ({"max_tokens": 0}, "body.rules.max_tokens"),
        ({"max_tokens": 1.5}, "body.rules.max_tokens"),
        ({"block_personal_data": "yes"}, "body.rules.block_personal_data"),
        ({"allowed_models": "gpt-4"}, "body.rules.allowed_models"),
        ({"risk_threshold": 101}, "body.rules.risk_threshold"),
        # Beyond 64 bits: stored as JSON, it could no longer be written back in an answer.
        ({"max_tokens": 2**64}, "body.rules.max_tokens"),
        ({"large_dataset_bytes": 10**30}, "body.rules.large_dataset_bytes"),
        (
            {
                "session_budgets": [
                    {"name": "b", "scope": "user_id", "counts": "operations", "limit": 2**70, "window_s": 60}
                ]
            },
            "body.rules.session_budgets.0.limit",
        ),
        ({"risk_weights": {"personal_data": -1}}, "body.rules.risk_weights.personal_data"),
        ({"risk_weights": {"gravity": 1}}, "body.rules.risk_weights.gravity"),
        ({"no_such_rule": True}, "body.rules.no_such_rule"),
        ({"allowed_models": ["gpt-4\u0000"]}, "body.rules"),
        ([1, 2], "body.rules"),
        ("max_tokens=5", "body.rules"),
    ],
)
async def test_invalid_rules_name_the_field(
    rules: Any, field: str, client: httpx.AsyncClient, admin: dict[str, str], customer: SeededCustomer
) -> None:
    for response in (
        await _create(client, admin, customer.id, rules=rules),
        await _create(client, admin, customer.id, "/admin", rules=rules),
    ):
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["error"] == "validation_error"
        assert body["details"][0]["field"] == field
        assert body["message"].startswith(f"{field}:")
        assert body["request_id"] == response.headers["x-request-id"]

    policy = (await _create(client, admin, customer.id, name=f"valid-{uuid.uuid4().hex[:6]}")).json()
    for method in ("PUT", "PATCH"):
        response = await client.request(
            method, f"/policies/{policy['id']}", json={"name": "x", "rules": rules}, headers=admin
        )
        assert response.status_code == 422
        assert response.json()["details"][0]["field"] == field
    assert (await client.get(f"/policies/{policy['id']}", headers=admin)).json()["version"] == 1


async def test_policies_need_a_live_customer(
    client: httpx.AsyncClient, admin: dict[str, str], customer: SeededCustomer
) -> None:
    unknown = await _create(client, admin, uuid.uuid4())
    assert unknown.status_code == 404
    assert unknown.json()["message"] == "customer not found"
    assert (await client.get("/policies", params={"customer_id": str(uuid.uuid4())}, headers=admin)).status_code == 404

    policy = (await _create(client, admin, customer.id)).json()
    await client.delete(f"/admin/customers/{customer.id}", headers=admin)
    assert (await _create(client, admin, customer.id, name="later")).status_code == 404
    assert (await client.get(f"/policies/{policy['id']}", headers=admin)).status_code == 404
    put = await client.put(f"/policies/{policy['id']}", json={"name": "n", "rules": {}}, headers=admin)
    assert put.status_code == 404


async def test_unknown_and_malformed_policy_ids_are_not_found(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for raw in (str(uuid.uuid4()), "policy_xxx"):
        for method, suffix, body in (
            ("GET", "", None),
            ("PUT", "", {"name": "n", "rules": {}}),
            ("PATCH", "", {}),
            ("DELETE", "", None),
            ("GET", "/versions", None),
        ):
            response = await client.request(method, f"/policies/{raw}{suffix}", json=body, headers=admin)
            assert response.status_code == 404, (method, raw, suffix, response.text)
            assert response.json()["message"] == "policy not found"


async def test_listing_all_policies_pages(
    client: httpx.AsyncClient, admin: dict[str, str], customer: SeededCustomer
) -> None:
    for i in range(3):
        assert (await _create(client, admin, customer.id, name=f"page-{i}")).status_code == 201
    everything = (await client.get("/policies", params={"limit": 500}, headers=admin)).json()
    assert everything["total"] >= 3
    page = (await client.get("/policies", params={"limit": 2, "offset": 1}, headers=admin)).json()
    assert page["items"] == everything["items"][1:3]
