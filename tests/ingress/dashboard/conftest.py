"""Fixtures of the dashboard's end-to-end tests: the dashboard process in front of the test run's ingress, and a
chromium profile driving it (``tests/support/dashboard_browser.py``). test_dashboard_pages.py has a ``dashboard``
of its own: a client of the dashboard app against a stand-in API."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from infra.local.launcher import APPS, Launcher, free_ports
from tests.conftest import LiveServer
from tests.support.dashboard_browser import CHROMIUM, CHROMIUM_ARGS, LAPTOP, Browser


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
