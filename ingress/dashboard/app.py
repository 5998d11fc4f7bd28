"""The dashboard application factory: pages, static files, security headers and the error pages."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingress.dashboard import pages
from ingress.dashboard.api import AdminApiClient, ApiRefusal, ApiUnreachable
from ingress.dashboard.deps import SESSION_COOKIE, CsrfRejected, SignInRequired
from ingress.dashboard.pages.sign_in import signed_out
from ingress.dashboard.rendering import HERE, current_session, render
from ingress.dashboard.sessions import SessionStore, SignInTokens
from ingress.dashboard.settings import DashboardSettings

log = logging.getLogger("ingress.dashboard")

# Everything the pages use is served from here: no inline script, no other origin, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeadersMiddleware:
    """Security headers on every answer; pages are never cached (one shows a new key once)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/dashboard/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *SECURITY_HEADERS]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _install_error_pages(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _: SignInRequired) -> Response:
        if request.cookies.get(SESSION_COOKIE):
            return signed_out(request, "expired")
        target = "/dashboard/login"
        if request.method == "GET" and request.url.path != "/dashboard":
            wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            target += "?" + urlencode({"next": wanted})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(CsrfRejected)
    async def _csrf(request: Request, _: CsrfRejected) -> Response:
        message = (
            "This form was refused: it did not carry this session's security token (it is out of date or came "
            "from another site). Go back, reload the page and try again."
        )
        return render(request, "error.html", {"title": "Form refused"}, status_code=403, error=message)

    @app.exception_handler(ApiRefusal)
    async def _refused(request: Request, exc: ApiRefusal) -> Response:
        session = current_session(request)
        if exc.status == 401 and session is not None:
            request.app.state.sessions.close_all_for(session)
            return signed_out(request, "rejected")
        title = "Not found" if exc.status == 404 else "The API refused this request"
        return render(request, "error.html", {"title": title}, status_code=exc.status, error=exc)

    @app.exception_handler(ApiUnreachable)
    async def _unreachable(request: Request, exc: ApiUnreachable) -> Response:
        return render(request, "error.html", {"title": "API unreachable"}, status_code=502, error=exc)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        if any(error.get("loc", ("",))[0] == "path" for error in exc.errors()):
            message = "There is no such page: the address names no record the dashboard can show."
            return render(request, "error.html", {"title": "Not found"}, status_code=404, error=message)
        message = "The form was incomplete."
        return render(request, "error.html", {"title": "Bad request"}, status_code=400, error=message)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        message = "Something went wrong in the dashboard. The error is in its log; try again or go back."
        return render(request, "error.html", {"title": "Dashboard error"}, status_code=500, error=message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        title = "Page not found" if exc.status_code == 404 else "Request refused"
        message = "There is no such page in the dashboard." if exc.status_code == 404 else str(exc.detail)
        return render(request, "error.html", {"title": title}, status_code=exc.status_code, error=message)


def create_app(
    settings: DashboardSettings | None = None, api_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """The dashboard; ``api_transport`` replaces the network to the API (tests only)."""
    settings = settings or DashboardSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.api = AdminApiClient(settings.api_base, settings.api_timeout_s, api_transport)
        log.info("dashboard calls the API at %s", settings.api_base)
        try:
            yield
        finally:
            await app.state.api.close()

    app = FastAPI(title="Governance dashboard", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.sessions = SessionStore(settings.session_ttl_s, settings.max_sessions)
    app.state.sign_in_tokens = SignInTokens()
    _install_error_pages(app)
    app.mount("/dashboard/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages.public)
    app.include_router(pages.signed_in)

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/dashboard", status_code=307)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(SecurityHeadersMiddleware)
    return app
