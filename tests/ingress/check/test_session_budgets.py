"""Session risk budgets: the (N+1)th call in a window is blocked, a blocked call uses nothing, the window resets."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import httpx

from tests.conftest import LiveServer, SeededCustomer, insert_customer
from tests.ingress.check.test_check import add_policy, auth

EXTERNAL_CALL = {"type": "llm_call", "model": "gpt-4", "provider": "openai", "tokens": 10}


def _request(session: str, **context: Any) -> dict[str, Any]:
    return {"operations": [EXTERNAL_CALL], "context": {"session_id": session, **context}}


async def _budget_customer(pg_pool: asyncpg.Pool, window_s: int) -> SeededCustomer:
    customer = await insert_customer(pg_pool, tier="pro")
    rules = {
        "risk_threshold": 100,  # let the external call through on score; only the budget limits it
        "session_budgets": [
            {
                "name": "external per session",
                "scope": "session_id",
                "counts": "external_model_calls",
                "limit": 3,
                "window_s": window_s,
            }
        ],
    }
    await add_policy(pg_pool, customer.id, rules, "budgets")
    return customer


async def test_fourth_external_call_in_a_session_is_blocked_then_resets(
    live_server: LiveServer, pg_pool: asyncpg.Pool
) -> None:
    window_s = 3
    customer = await _budget_customer(pg_pool, window_s)
    session = f"s-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        # start right after a window boundary, so the four calls share one window
        await asyncio.sleep(window_s - time.time() % window_s + 0.05)
        results = [
            (await http.post("/v1/check", json=_request(session), headers=auth(customer))).json() for _ in range(4)
        ]
        other_session = (await http.post("/v1/check", json=_request(f"o-{session}"), headers=auth(customer))).json()
        await asyncio.sleep(window_s - time.time() % window_s + 0.05)
        after_reset = (await http.post("/v1/check", json=_request(session), headers=auth(customer))).json()
    assert [r["allowed"] for r in results] == [True, True, True, False]
    blocked = results[3]
    assert [v["rule"] for v in blocked["violations"]] == ["session_budget"]
    assert "3 of 3" in blocked["reason"]
    assert any(f["name"] == "session_budget" for f in blocked["factors"])
    assert other_session["allowed"] is True
    assert after_reset["allowed"] is True


async def test_a_check_blocked_for_another_reason_uses_no_budget(
    live_server: LiveServer, pg_pool: asyncpg.Pool
) -> None:
    customer = await insert_customer(pg_pool, tier="pro")
    rules = {
        "risk_threshold": 100,
        "block_personal_data": True,
        "session_budgets": [{"name": "ops", "scope": "user_id", "counts": "operations", "limit": 2, "window_s": 3600}],
    }
    await add_policy(pg_pool, customer.id, rules, "budgets")
    user = f"u-{uuid.uuid4().hex}"
    body_ok = {"operations": [{"type": "tool_call", "tool": "search"}], "context": {"user_id": user}}
    body_pii = {
        "operations": [{"type": "tool_call", "tool": "search"}],
        "context": {"user_id": user, "email": "a.person@example.com"},
    }
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        blocked = [(await http.post("/v1/check", json=body_pii, headers=auth(customer))).json() for _ in range(3)]
        allowed = [(await http.post("/v1/check", json=body_ok, headers=auth(customer))).json() for _ in range(3)]
    assert [r["allowed"] for r in blocked] == [False, False, False]
    assert [r["allowed"] for r in allowed] == [True, True, False]


async def test_budget_rules_are_validated(client: httpx.AsyncClient, admin_key: str, customer: SeededCustomer) -> None:
    response = await client.post(
        "/policies",
        headers={"Authorization": f"Bearer {admin_key}"},
        json={
            "customer_id": str(customer.id),
            "name": f"b-{uuid.uuid4().hex[:6]}",
            "rules": {
                "session_budgets": [
                    {"name": "x", "scope": "device_id", "counts": "operations", "limit": 1, "window_s": 60}
                ]
            },
        },
    )
    assert response.status_code == 422
    assert "session_budgets" in response.text
