"""Policy backtesting over recorded decisions: unchanged rules reproduce every decision, and candidate rules give
exactly the flips computed by hand."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import LiveServer, insert_admin_key, insert_customer
from tests.ingress.check.test_check import GUIDE_RULES, GUIDE_STEP4, auth

ALLOWED = GUIDE_STEP4
WRONG_MODEL = {"operations": [{"type": "llm_call", "model": "gpt-5", "tokens": 100}], "context": {"user_id": "u"}}
PERSONAL = {**GUIDE_STEP4, "context": {"user_id": "u", "email": "someone@example.com"}}
LARGE = {"operations": [{"type": "data_access", "dataset": "sales", "rows": 20000}], "context": {}}


async def _recorded(http: httpx.AsyncClient, admin: dict[str, str], customer_id: str, expected: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        response = await http.get("/logs", params={"customer_id": customer_id, "limit": 100}, headers=admin)
        if response.status_code == 200 and len(response.json()["items"]) >= expected:
            return
        await asyncio.sleep(0.3)
    pytest.fail("decisions did not reach the audit log")


async def test_backtest_reproduces_and_counts_flips(live_server: LiveServer, pg_pool: asyncpg.Pool) -> None:
    admin = {"Authorization": f"Bearer {await insert_admin_key(pg_pool)}"}
    customer = await insert_customer(pg_pool, tier="pro")
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        created = await http.post(
            "/policies",
            headers=admin,
            json={"customer_id": str(customer.id), "name": "Allow Internal Data Only", "rules": GUIDE_RULES},
        )
        assert created.status_code == 201, created.text
        policy_id = created.json()["id"]
        await asyncio.sleep(0.3)  # the policy reaches the check path's cache through NOTIFY
        plan: list[tuple[dict[str, Any], bool]] = (
            [(ALLOWED, True)] * 4 + [(WRONG_MODEL, False)] * 3 + [(PERSONAL, False)] * 2 + [(LARGE, True)]
        )
        for body, expected in plan:
            result = (await http.post("/v1/check", json=body, headers=auth(customer))).json()
            assert result["allowed"] is expected, result
        await _recorded(http, admin, str(customer.id), len(plan))

        unchanged = await http.post(f"/admin/policies/{policy_id}/backtest", headers=admin, json={"rules": GUIDE_RULES})
        assert unchanged.status_code == 200, unchanged.text
        report = unchanged.json()
        assert report["decisions"] == 10
        assert report["reproduced"] == 10
        assert report["not_reproduced"] == []
        assert report["flips"] == {"allow_to_block": 0, "block_to_allow": 0}

        candidate = {
            **GUIDE_RULES,
            "allowed_models": ["gpt-4", "claude-3", "gpt-5"],
            "block_personal_data": False,
            "risk_weights": {"large_dataset": 60},
        }
        changed = (
            await http.post(
                f"/admin/policies/{policy_id}/backtest", headers=admin, json={"rules": candidate, "samples": 2}
            )
        ).json()
    # by hand: the 3 gpt-5 checks become allowed (the model is approved, so not external either); the 2 personal-data
    # checks stay blocked on score (70 >= 50); the large dataset now scores 60 and is blocked; the 4 others stay.
    assert changed["flips"] == {"allow_to_block": 1, "block_to_allow": 3}
    assert changed["by_rule"] == {
        "allowed_models": {"allow_to_block": 0, "block_to_allow": 3},
        "risk_score": {"allow_to_block": 1, "block_to_allow": 0},
    }
    assert changed["by_operation_type"] == {
        "data_access": {"allow_to_block": 1, "block_to_allow": 0},
        "llm_call": {"allow_to_block": 0, "block_to_allow": 3},
    }
    assert len(changed["samples"]["block_to_allow"]) == 2
    assert all(rid.startswith("req_") for rid in changed["samples"]["block_to_allow"])


async def test_backtest_refuses_invalid_rules_naming_the_field(live_server: LiveServer, pg_pool: asyncpg.Pool) -> None:
    admin = {"Authorization": f"Bearer {await insert_admin_key(pg_pool)}"}
    customer = await insert_customer(pg_pool)
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        created = await http.post(
            "/policies", headers=admin, json={"customer_id": str(customer.id), "name": "p", "rules": {}}
        )
        response = await http.post(
            f"/admin/policies/{created.json()['id']}/backtest", headers=admin, json={"rules": {"max_tokens": "lots"}}
        )
    assert response.status_code == 422
    assert "rules.max_tokens" in response.text


async def test_cli_backtest_prints_the_flips(live_server: LiveServer, pg_pool: asyncpg.Pool) -> None:
    import os
    import subprocess
    import sys

    key = await insert_admin_key(pg_pool)
    admin = {"Authorization": f"Bearer {key}"}
    customer = await insert_customer(pg_pool, tier="pro")
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        created = await http.post(
            "/policies", headers=admin, json={"customer_id": str(customer.id), "name": "p", "rules": GUIDE_RULES}
        )
        await asyncio.sleep(0.3)
        assert (await http.post("/v1/check", json=WRONG_MODEL, headers=auth(customer))).json()["allowed"] is False
        await _recorded(http, admin, str(customer.id), 1)
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "ingress.cli.main",
            "policies",
            "backtest",
            created.json()["id"],
            "--rules",
            '{"allowed_models": ["gpt-5"]}',
            "--api-url",
            live_server.url,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "GOVERNANCE_ADMIN_KEY": key},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "block→allow 1" in result.stdout
