"""Key rotation in the dashboard (chromium): a rotated key keeps working through its grace period beside its
replacement, which is shown once; a revoked key is refused by the API at once."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import expect

from tests.conftest import LiveServer, SeededCustomer
from tests.ingress.check.test_check import GUIDE_STEP4
from tests.support.dashboard_browser import Browser

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


async def test_rotate_with_grace_then_revoke(
    browser: Browser, admin_key: str, customer: SeededCustomer, live_server: LiveServer
) -> None:
    page = browser.page
    await browser.sign_in(admin_key)
    await browser.goto(f"/dashboard/customers/{customer.id}/keys")
    old_row = page.get_by_role("row").filter(has_text=customer.key_id)
    await expect(old_row).to_contain_text("active")
    await old_row.get_by_label("Grace period (hours)").fill("2")
    await old_row.get_by_role("button", name="Rotate").click()
    await expect(page.get_by_role("alert")).to_contain_text("It is shown only once")
    await expect(page.get_by_text(f"It replaces {customer.key_id}, which keeps working until")).to_be_visible()
    rotated_key = await page.get_by_label(re.compile("^API key")).input_value()
    assert rotated_key.startswith("sk_live_")
    assert rotated_key != customer.key
    await browser.shot("key-rotated")
    await page.get_by_role("link", name="Back to the API keys").click()
    await expect(old_row).to_contain_text("rotated")
    await expect(old_row).to_contain_text("works until")
    await expect(old_row.get_by_role("button", name="Rotate")).to_have_count(0)

    new_key_id = "keyid_" + rotated_key.removeprefix("sk_live_")[:12]
    new_row = page.get_by_role("row").filter(has_text=new_key_id)
    await expect(new_row).to_contain_text("active")
    await new_row.get_by_role("link", name="Revoke…").click()
    await expect(page.get_by_role("heading", name=re.compile(f"Revoke key .*{new_key_id}"))).to_be_visible()
    await page.get_by_role("button", name="Revoke key").click()
    await expect(page.get_by_role("status")).to_contain_text(f"Key {new_key_id} revoked.")
    await expect(new_row).to_contain_text("revoked")
    await browser.shot("key-revoked")

    async with httpx.AsyncClient(base_url=live_server.url) as http:
        revoked = await http.post("/v1/check", json=GUIDE_STEP4, headers={"Authorization": f"Bearer {rotated_key}"})
        in_grace = await http.post("/v1/check", json=GUIDE_STEP4, headers={"Authorization": f"Bearer {customer.key}"})
    assert revoked.status_code == 401
    assert in_grace.status_code == 200  # the rotated key works for its two hours of grace
