"""What each documentation example gets (tests/support/docs_examples.py): a fresh customer, keys and a policy, and a
folder with the files the examples read."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import httpx
import pytest

from ingress.auth.keys import parse_key
from tests.conftest import LiveServer, insert_admin_key, insert_customer
from tests.support.docs_examples import CHECK_BODY, POLICY_RULES, Fixtures


@pytest.fixture
async def fixtures(live_server: LiveServer, pg_pool: asyncpg.Pool) -> Fixtures:
    # The guide's customer name is unique among live customers; every example that creates it starts afresh.
    await pg_pool.execute("UPDATE customers SET deleted_at = now() WHERE lower(name) = 'acme ai inc'")
    customer = await insert_customer(pg_pool, tier="pro")
    spare = await insert_customer(pg_pool)  # a second key of the same customer, for rotate and revoke examples
    spare_key_id = await pg_pool.fetchval(
        "UPDATE api_keys SET customer_id = $1, name = 'spare' WHERE key_id = $2 RETURNING key_id",
        customer.id,
        spare.key_id,
    )
    admin_key = await insert_admin_key(pg_pool, "docs")
    spare_admin = await insert_admin_key(pg_pool, "docs-spare")
    spare_admin_key_id = parse_key(spare_admin).key_id
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        policy = await http.post(
            "/policies",
            json={"customer_id": str(customer.id), "name": "docs", "rules": {}, "mode": "shadow"},
            headers={"Authorization": f"Bearer {admin_key}"},
        )
    assert policy.status_code == 201, policy.text
    return Fixtures(live_server.url, admin_key, spare_admin_key_id, customer, spare_key_id, policy.json()["id"])


@pytest.fixture
def workdir(tmp_path: Path, fixtures: Fixtures) -> Path:
    """The folder an example runs in: what the examples read from files is there."""
    state = tmp_path / ".state"
    state.mkdir()
    (state / "admin-key").write_text(fixtures.admin_key + "\n")
    (tmp_path / "request.json").write_text(json.dumps(CHECK_BODY))
    (tmp_path / "policy.json").write_text(json.dumps(POLICY_RULES))
    return tmp_path
