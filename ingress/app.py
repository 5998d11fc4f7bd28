"""The check-path application: ``POST /v1/check``, the admin API, health and metrics.

This process holds PostgreSQL, Redis and the Kafka producer, and nothing else: no ClickHouse client, no Kafka
consumer, no analytics query, export, backtest or spool relay. Those paths are answered by the audit read side
(``python -m ingress.audit``), to which :8000 forwards them (``ingress.http.forward``); the spool is relayed by
``python -m workers``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import Depends, FastAPI

from infra.receipt_keys import ReceiptKeyring
from infra.sentry import init_sentry
from infra.spool import DiskSpool
from ingress.admin import router as admin_router
from ingress.admin.alerting import router as alerting_router
from ingress.auth.service import AuthService
from ingress.changes import ChangeListener
from ingress.check import receipts, route
from ingress.check.budgets import BudgetCounter
from ingress.check.config_cache import CustomerConfigCache
from ingress.check.leases import LeasePolicy
from ingress.check.publisher import DecisionPublisher
from ingress.check.ratelimit import Limit, RateLimiter
from ingress.check.receipts import ReceiptSigner
from ingress.check.route import CheckServices
from ingress.check.scan_lane import ScanLane
from ingress.check.signals import SignalRecorder
from ingress.http import health
from ingress.http.application import extend_openapi, freeze_startup_heap, new_app
from ingress.http.forward import ReadSideForwarder, forwarding_router
from ingress.http.read_limits import admin_reads
from ingress.resources import Resources
from ingress.settings import IngressSettings
from ingress.store_metrics import StoreMetricsSampler


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
        max_ack_wait_s=settings.publish_max_ack_wait_s,
    )
    limiter = RateLimiter(
        resources.redis,
        timeout_s=settings.rate_limit_redis_timeout_s,
        open_s=settings.rate_limit_breaker_open_s,
        leases=LeasePolicy(
            settings.rate_limit_lease_fraction, settings.rate_limit_lease_ttl_s, settings.rate_limit_lease_exact_below
        ),
    )
    signals = SignalRecorder(
        lambda: resources.broker if resources.broker_connected else None, topic=settings.signals_topic
    )
    receipt_signer = ReceiptSigner(ReceiptKeyring(settings.receipt_keys_dir, settings.receipt_signing_key))
    budgets = BudgetCounter(resources.redis, timeout_s=settings.rate_limit_redis_timeout_s)
    return CheckServices(
        config=config,
        limiter=limiter,
        publisher=publisher,
        signals=signals,
        receipts=receipt_signer,
        budgets=budgets,
        scan=ScanLane(),
    )


def _documented_elsewhere() -> dict[str, Any]:
    """The check request's schemas, and the read side's operations (answered by forwarding), for this app's
    OpenAPI document: one document on :8000 describes every path :8000 answers."""
    from ingress.audit.app import read_side_openapi  # documentation only: no ClickHouse handle is opened

    document = read_side_openapi()
    document.setdefault("components", {}).setdefault("schemas", {}).update(route.request_schemas())
    return document


def _mount(app: FastAPI) -> None:
    app.include_router(health.router)
    app.include_router(route.router)
    app.include_router(receipts.router)
    # Every admin call takes a token from the admin key's read bucket (ingress/http/read_limits.py).
    app.include_router(admin_router, dependencies=[Depends(admin_reads)])
    app.include_router(alerting_router, dependencies=[Depends(admin_reads)])
    app.include_router(forwarding_router())


def create_app(
    settings: IngressSettings | None = None, *, read_side_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """``read_side_transport`` replaces the network path to the read side (tests run both apps in one process)."""
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
        app.state.limiter = services.limiter
        app.state.signals = services.signals
        app.state.receipts = services.receipts
        forwarder = ReadSideForwarder(settings.audit_api_url, settings.audit_forward_timeout_s, read_side_transport)
        app.state.forwarder = forwarder
        app.state.extra_probes = forwarder.probes()
        changes = ChangeListener(settings.database_url)
        changes.subscribe(auth.on_change)
        app.state.changes = changes
        changes.subscribe(services.config.on_change)
        changes.start()
        auth.start()
        store_metrics = StoreMetricsSampler(resources.postgres, resources.redis)  # key ages, rotations, Redis memory
        store_metrics.start()
        services.signals.start()
        reconnect = asyncio.create_task(resources.keep_broker_connected(), name="kafka-reconnect")
        freeze_startup_heap()
        try:
            yield
        finally:
            reconnect.cancel()
            services.scan.close()
            await services.signals.stop()
            await store_metrics.stop()
            await auth.stop()
            await changes.stop()
            await forwarder.close()
            await resources.close()

    app = new_app(settings, lifespan, title="AI Governance Check API")
    extend_openapi(app, _documented_elsewhere)
    _mount(app)
    return app
