"""Shadow policies: evaluated on live traffic, recorded, never changing a response; disagreements are counted."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
import pytest

from tests.conftest import LiveServer, insert_admin_key, insert_customer
from tests.ingress.check.test_check import GUIDE_RULES, GUIDE_STEP4, auth


async def test_shadow_policy_never_changes_a_response_and_disagreements_are_counted(
    live_server: LiveServer, pg_pool: asyncpg.Pool
) -> None:
    admin = {"Authorization": f"Bearer {await insert_admin_key(pg_pool)}"}
    customer = await insert_customer(pg_pool, tier="pro")
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        for name, rules, mode in (
            ("live", GUIDE_RULES, "enforce"),
            ("stricter", {**GUIDE_RULES, "allowed_models": ["claude-3"]}, "shadow"),
        ):
            created = await http.post(
                "/policies",
                headers=admin,
                json={"customer_id": str(customer.id), "name": name, "rules": rules, "mode": mode},
            )
            assert created.status_code == 201, created.text
            if mode == "shadow":
                shadow_id = created.json()["id"]
        await asyncio.sleep(0.3)
        responses = [(await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))).json() for _ in range(5)]
        blocked = (
            await http.post(
                "/v1/check", json={**GUIDE_STEP4, "context": {"email": "x.y@example.com"}}, headers=auth(customer)
            )
        ).json()
        for response in responses:
            assert response["allowed"] is True
            assert response["reason"] == "Within policy limits"
            assert response["violations"] == []
        assert blocked["allowed"] is False
        assert all(v["policy_id"] != shadow_id for v in blocked["violations"])

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            summary = (
                await http.get("/admin/analytics/summary", headers=admin, params={"customer_id": str(customer.id)})
            ).json()
            shadows = {s["policy_id"]: s for s in summary.get("shadow_policies", [])}
            if shadows.get(shadow_id, {}).get("evaluated") == 6:
                break
            await asyncio.sleep(0.3)
        else:
            pytest.fail(f"shadow outcomes not summarised: {summary}")
    entry = shadows[shadow_id]
    # the 5 allowed gpt-4 checks would be blocked by the shadow policy; the blocked one is blocked by both
    assert entry["would_block_live_allowed"] == 5
    assert entry["would_allow_live_blocked"] == 0
    assert entry["disagreements"] == 5
