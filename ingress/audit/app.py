"""The audit read side's application: ``python -m ingress.audit``.

It answers what analysts and the dashboard read (``/logs``, ``/v1/decisions``, summaries, rollups, exports,
backtests, the AsyncAPI document) from ClickHouse, on a loopback port that only ingress reaches (ingress forwards
those paths from :8000, ``ingress.http.forward``). Keys are verified here as in ingress, against the same
PostgreSQL; read limits are taken from the same Redis buckets.

With the embedded ClickHouse this is the one process that opens it, so it also hosts the audit writer (the
composition-root exception of ``docs/architecture.md``: the read side runs ``consumers.audit`` in process).
With a ClickHouse server the writer runs in ``python -m consumers`` and this process only reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from consumers.audit.writer import AuditWriter
from infra.sentry import init_sentry
from ingress.audit import routes as history
from ingress.audit.backtest import routes as backtest
from ingress.audit.backtest.runner import BacktestRunner
from ingress.audit.lifecycle import start_audit, stop_audit
from ingress.audit.resources import AuditResources
from ingress.auth.service import AuthService
from ingress.changes import ChangeListener
from ingress.check.ratelimit import RateLimiter
from ingress.http import health
from ingress.http.application import freeze_startup_heap, new_app
from ingress.http.errors import ERROR_RESPONSES
from ingress.settings import IngressSettings

log = logging.getLogger("ingress.audit")


def include_routes(app: FastAPI) -> None:
    app.include_router(history.router)
    app.include_router(backtest.router)


def read_side_openapi() -> dict[str, Any]:
    """The read side's operations as OpenAPI, for the document :8000 serves."""
    documented = FastAPI(title="read side", version="1.0.0", responses=ERROR_RESPONSES)
    include_routes(documented)
    return documented.openapi()


async def _stop_writer_bounded(writer: AuditWriter | None, timeout_s: float = 15.0) -> None:
    """Stop the in-process audit writer, but not forever: leaving the consumer group in the middle of a rebalance
    can take a session timeout. What it did not commit is delivered again, and deduplicated."""
    try:
        await asyncio.wait_for(stop_audit(writer), timeout=timeout_s)
    except TimeoutError:
        log.warning("the audit writer did not stop within %.0f s; uncommitted records will be redelivered", timeout_s)


def create_app(settings: IngressSettings | None = None) -> FastAPI:
    settings = settings or IngressSettings()
    init_sentry("ingress-audit", settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = await AuditResources.open(settings)
        app.state.resources = resources
        auth = AuthService(resources.postgres, ttl_s=settings.key_cache_ttl_s)
        app.state.auth = auth
        app.state.limiter = RateLimiter(
            resources.redis, timeout_s=settings.rate_limit_redis_timeout_s, open_s=settings.rate_limit_breaker_open_s
        )
        changes = ChangeListener(settings.database_url)
        changes.subscribe(auth.on_change)
        app.state.changes = changes
        changes.start()
        auth.start()
        backtests = BacktestRunner(
            concurrency=settings.backtest_concurrency, time_budget_s=settings.backtest_time_budget_s
        )
        app.state.backtests = backtests
        # migrate the embedded ClickHouse; run the writer here when this process owns it (AUDIT_IN_PROCESS=auto)
        app.state.audit_writer = await start_audit(settings, resources)
        freeze_startup_heap()
        try:
            yield
        finally:
            await _stop_writer_bounded(app.state.audit_writer)
            backtests.close()
            await auth.stop()
            await changes.stop()
            await resources.close()

    app = new_app(settings, lifespan, title="AI Governance audit read side", adopt_forwarded_ids=True)
    app.include_router(health.router)
    include_routes(app)
    return app
