"""The operator dashboard end to end: a real ingress (``live_server``), the dashboard process in front of it, and
Debian's chromium driven by Playwright. Screenshots go to ``test-artifacts/dashboard/``; with
``DASHBOARD_DOCS_IMAGES=1`` the ones docs/dashboard.md shows are refreshed in ``docs/images/``.

Also over plain HTTP: the CSRF check, the cookie's flags, sign-out, and that no page ever carries the admin key.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from playwright.async_api import BrowserContext, Page, Response, ViewportSize, async_playwright, expect

from infra.local.launcher import APPS, Launcher, free_ports
from ingress.auth.keys import generate_key
from tests.conftest import LiveServer, SeededCustomer, insert_customer
from tests.ingress.check.test_check import GUIDE_STEP4

# Assertions wait as long as actions do: on a busy machine a page can take a few seconds.
expect.set_options(timeout=15_000)

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
DOCS_IMAGES = ROOT / "docs" / "images"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP: ViewportSize = {"width": 1366, "height": 768}
# The screenshots docs/dashboard.md shows.
DOC_SHOTS = (
    "sign-in",
    "customers",
    "key-created",
    "policy-validation",
    "policy-diff",
    "audit-log",
    "decision",
    "metrics",
)

UNLABELLED_FIELDS = """
[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter((field) => field.labels.length === 0 && !field.getAttribute('aria-label'))
  .map((field) => field.name || field.id)
"""

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


@pytest.fixture(scope="session")
def dashboard(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m ingress.dashboard`` as ``make up`` starts it, on a free port, calling the test run's ingress."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")}
    env.update({"ENVIRONMENT": "test", "LOG_LEVEL": "WARNING"})
    with Launcher(
        tmp_path_factory.mktemp("dashboard"),
        free_ports(["dashboard"]),
        environ=env,
        overrides={"API_URL": live_server.url},
        apps=[APPS["dashboard"]],
    ) as launcher:
        launcher.start()
        yield launcher.url("dashboard")


class Browser:
    """One chromium profile at laptop size; remembers every HTML answer it received, to check for the admin key."""

    def __init__(self, context: BrowserContext, page: Page, base: str) -> None:
        self.context = context
        self.page = page
        self.base = base
        self.pages: list[tuple[str, str]] = []  # (url, html)
        self._reads: list[asyncio.Task[None]] = []
        page.on("response", self._record)

    def _record(self, response: Response) -> None:
        if response.url.startswith(self.base) and "text/html" in response.headers.get("content-type", ""):
            self._reads.append(asyncio.ensure_future(self._read(response)))

    async def _read(self, response: Response) -> None:
        if 300 <= response.status < 400:
            return
        self.pages.append((response.url, await response.text()))

    async def html_seen(self) -> list[tuple[str, str]]:
        await asyncio.gather(*self._reads)
        return self.pages

    async def goto(self, path: str) -> None:
        await self.page.goto(self.base + path)

    async def shot(self, name: str) -> None:
        """Save a screenshot of the page, after checking that every form field on it has a label."""
        unlabelled = await self.page.evaluate(UNLABELLED_FIELDS)
        assert unlabelled == [], f"{name}: fields without a label: {unlabelled}"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
        if os.environ.get("DASHBOARD_DOCS_IMAGES") == "1" and name in DOC_SHOTS:
            DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ARTIFACTS / f"{name}.png", DOCS_IMAGES / f"dashboard-{name}.png")

    async def sign_in(self, admin_key: str) -> None:
        await self.goto("/dashboard")
        await expect(self.page).to_have_url(re.compile(r"/dashboard/login"))
        await self.page.get_by_label("Admin key").fill(admin_key)
        await self.page.get_by_role("button", name="Sign in").click()


@pytest.fixture(scope="session")
def chromium() -> str:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make test installs it: infra/local/stack.py tools)")
    return str(CHROMIUM)


@pytest.fixture
async def browser(dashboard: str, chromium: str, tmp_path: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=LAPTOP,
        )
        await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=dashboard)
        page = context.pages[0] if context.pages else await context.new_page()
        page.set_default_timeout(15_000)
        try:
            yield Browser(context, page, dashboard)
        finally:
            await context.close()


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


async def test_wrong_admin_key_is_refused_at_sign_in(browser: Browser) -> None:
    page = browser.page
    unknown = generate_key("admin").key  # well formed, but the API has never heard of it
    await browser.sign_in(unknown)
    await expect(page.get_by_role("alert")).to_contain_text("The API refused this admin key")
    await expect(page.get_by_role("alert")).to_contain_text("request id req_")
    await expect(page.get_by_label("Admin key")).to_have_value("")
    await browser.shot("sign-in-refused")

    await page.get_by_label("Admin key").fill(generate_key("live").key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("That is not an admin key")
    assert "dashboard_session" not in {c["name"] for c in await browser.context.cookies()}
    for url, html in await browser.html_seen():
        assert unknown not in html, url


async def _signed_in(http: httpx.AsyncClient, admin_key: str) -> str:
    """Sign in over plain HTTP; the session's CSRF token."""
    form = await http.get("/dashboard/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token
    response = await http.post(
        "/dashboard/login", data={"admin_key": admin_key, "csrf_token": token.group(1), "next": "/dashboard/customers"}
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/dashboard/customers"
    page = await http.get("/dashboard/customers")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    return csrf.group(1)


async def test_session_cookie_is_http_only_and_same_site_strict(dashboard: str, admin_key: str) -> None:
    async with httpx.AsyncClient(base_url=dashboard) as http:
        form = await http.get("/dashboard/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token
        response = await http.post("/dashboard/login", data={"admin_key": admin_key, "csrf_token": token.group(1)})
    assert response.status_code == 303
    cookie = next(v for v in response.headers.get_list("set-cookie") if v.startswith("dashboard_session="))
    flags = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
    assert "httponly" in flags
    assert flags["samesite"].lower() == "samesite=strict"
    assert flags["path"] == "Path=/dashboard"
    assert flags["max-age"] == f"Max-Age={8 * 3600}"
    assert "secure" not in flags  # local runs are http; DASHBOARD_COOKIE_SECURE=true turns it on
    session_id = cookie.split(";")[0].split("=", 1)[1]
    assert len(session_id) >= 40
    assert admin_key not in cookie


async def test_a_post_without_the_csrf_token_is_refused(dashboard: str, admin_key: str) -> None:
    name = f"csrf-{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(base_url=dashboard) as http:
        csrf = await _signed_in(http, admin_key)
        missing = await http.post("/dashboard/customers", data={"name": name, "tier": "free"})
        wrong = await http.post("/dashboard/customers", data={"name": name, "tier": "free", "csrf_token": "x" * 43})
        sign_out = await http.post("/dashboard/logout")
        listing = await http.get("/dashboard/customers")
        assert missing.status_code == 403
        assert "Form refused" in missing.text
        assert wrong.status_code == 403
        assert sign_out.status_code == 403
        assert listing.status_code == 200
        assert name not in listing.text  # neither refused POST created anything
        accepted = await http.post("/dashboard/customers", data={"name": name, "tier": "free", "csrf_token": csrf})
        assert accepted.status_code == 303
    async with httpx.AsyncClient(base_url=dashboard) as fresh:
        # The sign-in form has its own token, bound to a cookie set with the form.
        no_token = await fresh.post("/dashboard/login", data={"admin_key": admin_key})
        assert no_token.status_code == 403
        assert "dashboard_session" not in no_token.headers.get("set-cookie", "")


async def test_no_page_carries_the_admin_key(dashboard: str, admin_key: str) -> None:
    async with httpx.AsyncClient(base_url=dashboard) as http:
        await _signed_in(http, admin_key)
        pages = ["/dashboard", "/dashboard/customers", "/dashboard/policies", "/dashboard/logs", "/dashboard/metrics"]
        pages.append("/dashboard/alerts")
        for path in pages:
            response = await http.get(path)
            assert response.status_code == 200, (path, response.text[:2000])
            assert response.headers["cache-control"] == "no-store"
            assert "default-src 'none'" in response.headers["content-security-policy"]
            assert admin_key not in response.text, path
            assert admin_key.removeprefix("sk_admin_") not in response.text, path


async def test_sign_out_ends_the_session(dashboard: str, admin_key: str) -> None:
    async with httpx.AsyncClient(base_url=dashboard) as http:
        csrf = await _signed_in(http, admin_key)
        old_cookie = http.cookies.get("dashboard_session")
        response = await http.post("/dashboard/logout", data={"csrf_token": csrf})
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard/login?reason=signed_out"
    async with httpx.AsyncClient(base_url=dashboard, cookies={"dashboard_session": old_cookie or ""}) as replay:
        again = await replay.get("/dashboard/customers")
        assert again.status_code == 303
        assert again.headers["location"].startswith("/dashboard/login")


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
