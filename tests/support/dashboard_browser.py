"""Driving the operator dashboard in Debian's chromium (Playwright): ``Browser`` is one profile at laptop size that
saves screenshots to ``test-artifacts/dashboard/`` (refreshing the ones docs/dashboard.md shows in
``docs/images/`` with ``DASHBOARD_DOCS_IMAGES=1``) and remembers every HTML answer, to check for the admin key."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path

from playwright.async_api import BrowserContext, Page, Response, ViewportSize, expect

# Assertions wait as long as actions do: on a busy machine a page can take a few seconds.
expect.set_options(timeout=15_000)

ROOT = Path(__file__).resolve().parents[2]
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
