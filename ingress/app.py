"""The ingress application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ingress import health
from ingress.auth.service import AuthService
from ingress.changes import ChangeListener
from ingress.errors import install_error_handlers
from ingress.request_context import RequestIdMiddleware
from ingress.resources import Resources
from ingress.responses import JsonResponse
from ingress.settings import IngressSettings


def create_app(settings: IngressSettings | None = None) -> FastAPI:
    settings = settings or IngressSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = await Resources.open(settings)
        app.state.resources = resources
        auth = AuthService(resources.postgres, ttl_s=settings.key_cache_ttl_s)
        app.state.auth = auth
        changes = ChangeListener(settings.database_url)
        changes.subscribe(auth.on_change)
        app.state.changes = changes
        changes.start()
        auth.start()
        try:
            yield
        finally:
            await auth.stop()
            await changes.stop()
            await resources.close()

    app = FastAPI(
        title="AI Governance Check API",
        version="1.0.0",
        default_response_class=JsonResponse,
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(health.router)
    app.add_middleware(RequestIdMiddleware)
    return app
