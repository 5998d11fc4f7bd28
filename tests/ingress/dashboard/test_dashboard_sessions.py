"""Signing in to the dashboard and its sessions: a wrong or non-admin key refused at sign-in (chromium); over plain
HTTP, the session cookie's flags, the CSRF check on every form, sign-out ending the session, and no page ever
carrying the admin key."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from playwright.async_api import expect

from ingress.auth.keys import generate_key
from tests.support.dashboard_browser import Browser

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


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
