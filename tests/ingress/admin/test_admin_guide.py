"""The onboarding guide, Part 3 Steps 1-3: its request bodies, verbatim, against our API.

The guide's example customer id (550e8400-…) stands for the id Step 1 returned, so Steps 2 and 3 send their
bodies with that id replaced, exactly as an operator following the guide does.
"""

from __future__ import annotations

import asyncpg
import httpx
from fastapi import FastAPI

from ingress.auth.deps import CustomerDep
from ingress.auth.keys import parse_key

GUIDE_CUSTOMER_ID = "550e8400-e29b-41d4-a716-446655440000"

STEP_1 = """{
    "name": "Acme AI Inc",
    "tier": "pro"
  }"""

STEP_2 = """{
    "customer_id": "550e8400-e29b-41d4-a716-446655440000",
    "name": "prod-api-key-001"
  }"""

STEP_3 = """{
    "customer_id": "550e8400-e29b-41d4-a716-446655440000",
    "name": "Allow Internal Data Only",
    "rules": {
      "max_external_calls": 5,
      "block_personal_data": true,
      "allowed_models": ["gpt-4", "claude-3"],
      "max_tokens": 10000
    },
    "active": true
  }"""


async def test_guide_steps_1_to_3(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pg_pool: asyncpg.Pool
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"bcrypt_rounds": 4})

    @app.get("/test/guide-whoami")
    async def whoami(principal: CustomerDep) -> dict[str, str]:
        return {"customer_id": str(principal.customer_id)}

    # Another test of this run may have onboarded Acme already; the name is unique among live customers.
    await pg_pool.execute("UPDATE customers SET deleted_at = now() WHERE lower(name) = 'acme ai inc'")
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {admin_key}"}

    step1 = await client.post("/admin/customers", content=STEP_1, headers=headers)
    assert step1.status_code == 201, step1.text
    customer = step1.json()
    assert {"id", "name", "tier", "created_at"} <= set(customer)
    assert (customer["name"], customer["tier"]) == ("Acme AI Inc", "pro")
    customer_id = customer["id"]

    step2 = await client.post("/admin/keys", content=STEP_2.replace(GUIDE_CUSTOMER_ID, customer_id), headers=headers)
    assert step2.status_code == 201, step2.text
    key = step2.json()
    assert {"id", "key_id", "key", "name", "created_at"} <= set(key)
    assert key["name"] == "prod-api-key-001"
    assert key["key"].startswith("sk_live_")
    assert parse_key(key["key"]).key_id == key["key_id"]
    # "They will use: Authorization: Bearer sk_live_..."
    used = await client.get("/test/guide-whoami", headers={"Authorization": f"Bearer {key['key']}"})
    assert used.json() == {"customer_id": customer_id}

    step3 = await client.post("/policies", content=STEP_3.replace(GUIDE_CUSTOMER_ID, customer_id), headers=headers)
    assert step3.status_code == 201, step3.text
    policy = step3.json()
    assert {"id", "customer_id", "name", "rules", "active", "created_at"} <= set(policy)
    assert (policy["customer_id"], policy["name"], policy["active"]) == (
        customer_id,
        "Allow Internal Data Only",
        True,
    )
    assert policy["rules"] == {
        "max_external_calls": 5,
        "block_personal_data": True,
        "allowed_models": ["gpt-4", "claude-3"],
        "max_tokens": 10000,
    }
    assert (policy["version"], policy["mode"]) == (1, "enforce")
