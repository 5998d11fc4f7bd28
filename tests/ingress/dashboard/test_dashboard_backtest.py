"""The policy lab in the dashboard (chromium): a backtest of candidate rules run from the policy editor shows the
decisions they would flip, counted by rule."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import httpx
import pytest
from playwright.async_api import expect

from tests.conftest import LiveServer, insert_customer
from tests.support.dashboard_browser import Browser

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


async def test_policy_backtest_from_the_editor(
    browser: Browser, admin_key: str, live_server: LiveServer, pg_pool: asyncpg.Pool
) -> None:
    customer = await insert_customer(pg_pool, tier="pro")
    admin = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        created = await http.post(
            "/policies",
            headers=admin,
            json={
                "customer_id": str(customer.id),
                "name": f"models {uuid.uuid4().hex[:6]}",
                "rules": {"allowed_models": ["gpt-4"]},
            },
        )
        policy_id = created.json()["id"]
        await asyncio.sleep(0.3)
        wrong_model = {"operations": [{"type": "llm_call", "model": "gpt-5", "tokens": 10}], "context": {}}
        checked = await http.post("/v1/check", json=wrong_model, headers={"Authorization": f"Bearer {customer.key}"})
        assert checked.json()["allowed"] is False
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            logs = await http.get("/logs", params={"customer_id": str(customer.id)}, headers=admin)
            if logs.status_code == 200 and logs.json()["items"]:
                break
            await asyncio.sleep(0.5)
    page = browser.page
    await browser.sign_in(admin_key)
    await browser.goto(f"/dashboard/policies/{policy_id}")
    await page.get_by_role("link", name="Backtest candidate rules…").click()
    await page.get_by_label("Candidate rules (JSON)").fill('{"allowed_models": ["gpt-4", "gpt-5"]}')
    await page.get_by_role("button", name="Run backtest").click()
    await expect(page.get_by_role("heading", name="Result")).to_be_visible()
    await expect(page.locator("dd.flip-block-allow")).to_have_text("1")
    await expect(page.locator("dd.flip-allow-block")).to_have_text("0")
    await expect(page.get_by_role("table", name="By rule")).to_contain_text("allowed_models")
    await browser.shot("backtest")
