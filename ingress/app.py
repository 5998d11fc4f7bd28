"""The ingress application factory."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI

from consumers.audit.writer import AuditWriter
from infra.receipt_keys import ReceiptKeyring
from infra.sentry import init_sentry
from infra.spool import DiskSpool
from ingress import admin, backtest, check, health, receipts
from ingress.alerting import router as alerting_router
from ingress.analytics import analytics_router, start_audit, stop_audit
from ingress.auth.service import AuthService
from ingress.backtest.runner import BacktestRunner
from ingress.body_limit import BodyLimitMiddleware
from ingress.budgets import BudgetCounter
from ingress.changes import ChangeListener
from ingress.check import CheckServices
from ingress.customer_config import CustomerConfigCache
from ingress.errors import ERROR_RESPONSES, install_error_handlers
from ingress.http_metrics import HttpMetricsMiddleware
from ingress.publisher import DecisionPublisher
from ingress.ratelimit import Limit, RateLimiter
from ingress.read_limits import RateLimitHeadersMiddleware, admin_reads
from ingress.receipts import ReceiptSigner
from ingress.request_context import RequestIdMiddleware
from ingress.resources import Resources
from ingress.responses import JsonResponse
from ingress.scan_lane import ScanLane
from ingress.settings import IngressSettings
from ingress.signals import SignalRecorder
from ingress.store_metrics import StoreMetricsSampler
from workers.spool_relay import SpoolRelay

log = logging.getLogger("ingress.app")


def build_check_services(settings: IngressSettings, resources: Resources) -> CheckServices:
    config = CustomerConfigCache(
        resources.postgres,
        {
            "free": Limit(settings.rate_limit_free_capacity, settings.rate_limit_free_window_s),
            "pro": Limit(settings.rate_limit_pro_capacity, settings.rate_limit_pro_window_s),
        },
        ttl_s=settings.customer_config_ttl_s,
    )
    publisher = DecisionPublisher(
        lambda: resources.broker if resources.broker_connected else None,
        DiskSpool(settings.spool_dir, max_events=settings.spool_max_events),
        topic=settings.decisions_topic,
        ack_timeout_s=settings.publish_ack_timeout_s,
    )
    limiter = RateLimiter(
        resources.redis, timeout_s=settings.rate_limit_redis_timeout_s, open_s=settings.rate_limit_breaker_open_s
    )
    signals = SignalRecorder(
        lambda: resources.broker if resources.broker_connected else None, topic=settings.signals_topic
    )
    receipts = ReceiptSigner(ReceiptKeyring(settings.receipt_keys_dir, settings.receipt_signing_key))
    budgets = BudgetCounter(resources.redis, timeout_s=settings.rate_limit_redis_timeout_s)
    return CheckServices(
        config=config,
        limiter=limiter,
        publisher=publisher,
        signals=signals,
        receipts=receipts,
        budgets=budgets,
        scan=ScanLane(),
    )


def _document_check_request(app: FastAPI) -> None:
    """Add ``CheckRequest`` (and what it names) to the OpenAPI components that ``POST /v1/check`` refers to."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            components = generate().setdefault("components", {}).setdefault("schemas", {})
            for name, definition in check.request_schemas().items():
                components.setdefault(name, definition)
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]


async def _stop_audit_bounded(writer: AuditWriter | None, timeout_s: float = 15.0) -> None:
    """Stop the in-process audit writer, but not forever: leaving the consumer group in the middle of a rebalance
    can take a session timeout. What it did not commit is delivered again, and deduplicated."""
    try:
        await asyncio.wait_for(stop_audit(writer), timeout=timeout_s)
    except TimeoutError:
        log.warning("the audit writer did not stop within %.0f s; uncommitted records will be redelivered", timeout_s)


def _mount(app: FastAPI, settings: IngressSettings) -> None:
    """The routers and the middleware."""
    app.include_router(health.router)
    app.include_router(check.router)
    app.include_router(receipts.router)
    # Every admin call takes a token from the admin key's read bucket (ingress/read_limits.py); the analytics and
    # backtest routes name their own buckets.
    app.include_router(admin.router, dependencies=[Depends(admin_reads)])
    app.include_router(analytics_router)
    app.include_router(backtest.router)
    app.include_router(alerting_router, dependencies=[Depends(admin_reads)])
    # Outermost last: request id → metrics → rate-limit headers → body limit → routes.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RateLimitHeadersMiddleware)
    app.add_middleware(HttpMetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)


def create_app(settings: IngressSettings | None = None) -> FastAPI:
    settings = settings or IngressSettings()
    init_sentry("ingress", settings)  # here, not only in __main__: every uvicorn worker process builds the app

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = await Resources.open(settings)
        app.state.resources = resources
        auth = AuthService(resources.postgres, ttl_s=settings.key_cache_ttl_s)
        app.state.auth = auth
        services = build_check_services(settings, resources)
        app.state.check = services
        app.state.signals = services.signals
        app.state.receipts = services.receipts
        changes = ChangeListener(settings.database_url)
        changes.subscribe(auth.on_change)
        changes.subscribe(services.config.on_change)
        app.state.changes = changes
        relay = SpoolRelay(services.publisher.spool, lambda: resources.broker if resources.broker_connected else None)
        app.state.spool_relay = relay
        changes.start()
        auth.start()
        relay.start()
        store_metrics = StoreMetricsSampler(resources.postgres, resources.redis)  # key ages, rotations, Redis memory
        store_metrics.start()
        services.signals.start()
        reconnect = asyncio.create_task(resources.keep_broker_connected(), name="kafka-reconnect")
        backtests = BacktestRunner(
            concurrency=settings.backtest_concurrency, time_budget_s=settings.backtest_time_budget_s
        )
        app.state.backtests = backtests
        # --- audit pipeline (ingress/analytics/lifecycle.py): migrate the embedded ClickHouse; run the writer here
        # when this process owns it (AUDIT_IN_PROCESS=auto|true) ---
        app.state.audit_writer = await start_audit(settings, resources)
        # --- end audit pipeline ---
        # Everything allocated so far lives as long as the process: move it out of the collector's sight, so a full
        # collection walks only what requests allocate (measured: full-GC pauses from ~100 ms to ~7 ms).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            # --- audit pipeline: flush, commit, leave the group ---
            await _stop_audit_bounded(app.state.audit_writer)
            # --- end audit pipeline ---
            reconnect.cancel()
            backtests.close()
            services.scan.close()
            await services.signals.stop()
            await relay.stop()
            await store_metrics.stop()
            await auth.stop()
            await changes.stop()
            await resources.close()

    # The interactive docs load Swagger UI and ReDoc from a CDN: served in local and test runs only.
    local = settings.environment in {"local", "test"}
    app = FastAPI(
        title="AI Governance Check API",
        version="1.0.0",
        default_response_class=JsonResponse,
        lifespan=lifespan,
        docs_url="/docs" if local else None,
        redoc_url="/redoc" if local else None,
        responses=ERROR_RESPONSES,  # every operation documents the error shape it may answer with
    )
    app.state.settings = settings
    _document_check_request(app)
    install_error_handlers(app)
    _mount(app, settings)
    return app
