"""The operator dashboard end to end: a real ingress (``live_server``), the dashboard process in front of it, and
Debian's chromium driven by Playwright, through an operator's whole journey: sign in, create a customer and a key,
write a policy (a validation error, a new version, the diff), find a blocked check in the audit log, its metrics,
the alerts page, delete the customer, sign out. Screenshots go to ``test-artifacts/dashboard/``; with
``DASHBOARD_DOCS_IMAGES=1`` the ones docs/dashboard.md shows are refreshed in ``docs/images/``.

Key rotation, the backtest, and sign-in and sessions have files of their own beside this one
(test_dashboard_key_rotation.py, test_dashboard_backtest.py, test_dashboard_sessions.py); the dashboard process and
the browser are fixtures of ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import httpx
import pytest
from playwright.async_api import expect

from tests.conftest import LiveServer
from tests.ingress.check.test_check import GUIDE_STEP4
from tests.support.dashboard_browser import Browser

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


async def _wait_for_decision(browser: Browser, request_id: str, timeout_s: float = 40.0) -> None:
    """The decision reaches the log through Kafka and the audit writer: reload until its row is there."""
    row = browser.page.get_by_role("row").filter(has_text=request_id)
    deadline = time.monotonic() + timeout_s
    while await row.count() == 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"decision {request_id} did not reach the audit log in {timeout_s} s")
        await asyncio.sleep(1.0)
        await browser.page.reload()


async def test_operator_journey(browser: Browser, admin_key: str, live_server: LiveServer) -> None:
    page = browser.page
    suffix = uuid.uuid4().hex[:6]

    # Sign in: the form, then the home page naming the admin key by its public id only.
    await browser.goto("/dashboard")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await browser.shot("sign-in")
    await page.get_by_label("Admin key").fill(admin_key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    key_id = "keyid_" + admin_key.removeprefix("sk_admin_")[:12]
    await expect(page.get_by_text(f"Signed in as {key_id}")).to_be_visible()
    cookies = {c["name"]: c for c in await browser.context.cookies()}
    assert cookies["dashboard_session"]["httpOnly"] is True
    assert cookies["dashboard_session"]["sameSite"] == "Strict"
    assert admin_key not in cookies["dashboard_session"]["value"]
    await browser.shot("home")

    # Create a customer.
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Customers").click()
    customer_name = f"Acme Robotics {suffix}"
    await page.get_by_label("Name", exact=True).fill(customer_name)
    await page.get_by_label("Tier").select_option("pro")
    await page.get_by_role("button", name="Create customer").click()
    await expect(page.get_by_role("heading", name=customer_name)).to_be_visible()
    await expect(page.get_by_role("status")).to_contain_text(f"Customer {customer_name} created.")
    customer_id = (await page.locator("dd code").first.inner_text()).strip()
    uuid.UUID(customer_id)
    await browser.goto("/dashboard/customers")
    await expect(page.get_by_role("link", name=customer_name)).to_be_visible()
    await browser.shot("customers")

    # Create a key: shown once, with a copy button and a warning; a reload no longer shows it.
    await browser.goto(f"/dashboard/customers/{customer_id}")
    await page.get_by_role("navigation", name="Customer").get_by_role("link", name="API keys").click()
    await expect(page.get_by_text("This customer has no API keys yet")).to_be_visible()
    await page.get_by_label("Key name").fill("production")
    await page.get_by_role("button", name="Create key").click()
    await expect(page.get_by_role("alert")).to_contain_text("It is shown only once")
    new_key = await page.get_by_label(re.compile("^API key")).input_value()
    assert new_key.startswith("sk_live_")
    await page.get_by_role("button", name="Copy").click()
    await expect(page.locator(".copy-status")).to_have_text("Copied")
    assert await page.evaluate("navigator.clipboard.readText()") == new_key
    await browser.shot("key-created")
    await page.reload()
    await expect(page.get_by_text("This key was shown once")).to_be_visible()
    assert new_key not in await page.content()
    await page.get_by_role("link", name="Back to the API keys").click()
    row = page.get_by_role("row").filter(has_text="production")
    await expect(row).to_contain_text("active")
    await expect(row).to_contain_text("never")
    await expect(row).to_contain_text("0 d")
    await browser.shot("keys")

    # A policy: create it in the form, see the API's validation message beside a field, change a rule, diff.
    await page.get_by_role("navigation", name="Customer").get_by_role("link", name="Policies").click()
    await expect(page.get_by_text("No policies yet")).to_be_visible()
    await page.get_by_role("link", name="New policy").click()
    await page.get_by_label("Policy name").fill("Allow Internal Data Only")
    await page.get_by_label("Max external calls").fill("5")
    await page.get_by_label("Block personal data").check()
    await page.get_by_label("Allowed models").fill("gpt-4, claude-3")
    await page.get_by_label("Max tokens per LLM call").fill("10000")
    await page.get_by_role("button", name="Create policy").click()
    await expect(page.get_by_role("heading", name="Policy Allow Internal Data Only")).to_be_visible()
    await expect(page.get_by_role("status")).to_contain_text("created: version 1")
    policy_url = page.url
    await browser.shot("policy")

    max_tokens = page.get_by_label("Max tokens per LLM call")
    await max_tokens.fill("0")
    await page.get_by_role("button", name="Save new version").click()
    await expect(page.locator("#f-rules-max_tokens-error")).to_have_text("Input should be greater than 0")
    await expect(max_tokens).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_role("alert")).to_contain_text("request id req_")
    await browser.shot("policy-validation")

    await max_tokens.fill("400")
    await page.get_by_role("button", name="Save new version").click()
    await expect(page.get_by_role("status")).to_contain_text("saved: version 2")
    await expect(page.get_by_role("row").filter(has_text="v1 → v2")).to_be_visible()
    await page.get_by_role("link", name="v1 → v2").click()
    await expect(page.get_by_role("heading", name=re.compile("v1 → v2"))).to_be_visible()
    await expect(page.locator(".diff .diff-removed")).to_have_text(re.compile(r'"max_tokens": 10000'))
    await expect(page.locator(".diff .diff-added")).to_have_text(re.compile(r'"max_tokens": 400'))
    await browser.shot("policy-diff")

    await page.goto(policy_url.split("?")[0] + "?view=json")
    editor = page.get_by_label(re.compile("Policy as JSON"))
    await expect(editor).to_have_value(re.compile(r'"max_tokens": 400'))
    await editor.fill('{"name": "Allow Internal Data Only", "rules": {"max_tokens": "lots"}}')
    await page.get_by_role("button", name="Save new version").click()
    await expect(page.locator("#policy-json-errors")).to_contain_text(
        "rules.max_tokens: Input should be a valid integer"
    )
    await browser.shot("policy-json")

    # A check with the new key: 500 tokens is above the new max_tokens of 400, so it is blocked.
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        response = await http.post("/v1/check", json=GUIDE_STEP4, headers={"Authorization": f"Bearer {new_key}"})
    decision = response.json()
    assert response.status_code == 200, decision
    assert decision["allowed"] is False
    request_id = decision["request_id"]

    # Find it in the audit log (filtered to the customer), then open its detail.
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    await page.get_by_label("Customer").select_option(customer_id)
    await page.get_by_label("Decision").select_option("block")
    await page.get_by_role("button", name="Filter").click()
    await expect(page).to_have_url(re.compile(f"customer_id={customer_id}"))
    await _wait_for_decision(browser, request_id)
    row = page.get_by_role("row").filter(has_text=request_id)
    await expect(row).to_contain_text("block")
    await expect(row).to_contain_text(customer_name)
    await expect(row).to_contain_text("above the max_tokens of 400")
    await browser.shot("audit-log")
    await row.get_by_role("link", name=request_id).click()
    await expect(page.get_by_role("heading", name=re.compile("Decision block"))).to_be_visible()
    violations = page.get_by_role("table").filter(has=page.get_by_role("columnheader", name="Rule"))
    await expect(violations).to_contain_text("max_tokens")
    await expect(violations).to_contain_text("v2")
    await expect(page.get_by_text(request_id)).to_be_visible()
    await expect(page.locator("dl.facts")).to_contain_text("gpt-4")
    await browser.shot("decision")

    # A filter the API refuses: its message beside the field.
    await browser.goto(f"/dashboard/logs?customer_id={customer_id}&from=2030-01-02T00:00&to=2030-01-01T00:00")
    await expect(page.locator("#f-to-error")).to_have_text(re.compile("'to' must be after 'from'"))
    await expect(page.get_by_role("alert")).to_contain_text("request id req_")

    # Metrics of the customer: the decision is counted and drawn.
    await browser.goto(f"/dashboard/metrics?customer_id={customer_id}&range=1h")
    await expect(page.locator(".stat").filter(has_text="checks").locator(".value")).to_have_text("1")
    await expect(page.locator(".stat").filter(has_text="blocked").locator(".value")).to_have_text("1")
    await expect(page.locator("svg.chart")).to_have_count(4)
    await expect(page.locator("svg.chart rect.tone-blocked")).to_have_count(1)
    await browser.shot("metrics")

    # Alerts: the page renders, whether or not the API serves alerting yet.
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts").click()
    await expect(page.get_by_role("heading", name="Open alerts")).to_be_visible()
    await expect(page.get_by_role("heading", name="Webhook deliveries")).to_be_visible()
    await browser.shot("alerts")

    # Delete the customer after a confirmation step; its key stops working.
    await browser.goto(f"/dashboard/customers/{customer_id}")
    await page.get_by_role("link", name="Delete customer…").click()
    await expect(page.get_by_role("heading", name=f"Delete customer {customer_name}?")).to_be_visible()
    await browser.shot("confirm-delete")
    await page.get_by_role("button", name="Delete customer").click()
    await expect(page.get_by_role("status")).to_contain_text("1 key(s) revoked")
    await expect(page.get_by_role("link", name=customer_name)).to_have_count(0)

    # Sign out.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_text("You are signed out.")).to_be_visible()
    await browser.goto("/dashboard/customers")
    await expect(page).to_have_url(re.compile(r"/dashboard/login\?next="))

    seen = await browser.html_seen()
    assert len(seen) >= 20
    for url, html in seen:
        assert admin_key not in html, url
        assert admin_key not in url
