"""Sign-in with an admin key (checked by calling the API with it), and sign-out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from ingress.auth.keys import MalformedKey, parse_key
from ingress.dashboard.api import AdminApiClient, ApiFailure, ApiRefusal
from ingress.dashboard.deps import COOKIE_PATH, SESSION_COOKIE, SIGN_IN_COOKIE, CsrfRejected
from ingress.dashboard.rendering import render
from ingress.dashboard.sessions import SessionStore, SignInTokens
from ingress.dashboard.settings import DashboardSettings

router = APIRouter(prefix="/dashboard")
sign_out_router = APIRouter()

SIGN_IN_FORM_TTL_S = 1800
REASONS = {
    "expired": "Your session has ended. Sign in again.",
    "rejected": "The API no longer accepts the admin key of your session. Sign in with a valid admin key.",
    "signed_out": "You are signed out.",
}


def safe_next(target: str | None) -> str:
    """Only a page of this dashboard, so the sign-in form cannot be used to send an operator elsewhere."""
    if target and target.startswith("/dashboard") and "//" not in target and "\\" not in target:
        return target
    return "/dashboard"


def _form(
    request: Request, *, next_page: str, error: ApiFailure | str | None = None, status_code: int = 200
) -> Response:
    tokens: SignInTokens = request.app.state.sign_in_tokens
    settings: DashboardSettings = request.app.state.settings
    nonce = tokens.new_nonce()
    reason = REASONS.get(request.query_params.get("reason", ""))
    response = render(
        request,
        "sign_in.html",
        {"sign_in_token": tokens.token_for(nonce), "next_page": next_page, "reason": reason},
        status_code=status_code,
        error=error,
    )
    response.set_cookie(
        SIGN_IN_COOKIE,
        nonce,
        max_age=SIGN_IN_FORM_TTL_S,
        path=COOKIE_PATH,
        secure=settings.cookie_secure,
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/login")
async def sign_in_form(request: Request, next: str | None = None) -> Response:
    store: SessionStore = request.app.state.sessions
    if store.find(request.cookies.get(SESSION_COOKIE)):
        return RedirectResponse(safe_next(next), status_code=303)
    return _form(request, next_page=safe_next(next))


@router.post("/login")
async def sign_in(
    request: Request,
    admin_key: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    tokens: SignInTokens = request.app.state.sign_in_tokens
    if not tokens.valid(request.cookies.get(SIGN_IN_COOKIE), csrf_token):
        raise CsrfRejected
    next_page = safe_next(next)
    presented = admin_key.strip()
    try:
        parsed = parse_key(presented)
    except MalformedKey:
        parsed = None
    if parsed is None or parsed.kind != "admin":
        message = "That is not an admin key. Admin keys start with sk_admin_ (customer keys, sk_live_, cannot sign in)."
        return _form(request, next_page=next_page, error=message, status_code=400)
    client: AdminApiClient = request.app.state.api
    try:
        await client.call(presented, "GET", "/admin/customers", params={"limit": 1})
    except ApiRefusal as exc:
        exc.message = f"The API refused this admin key: {exc.message}"
        return _form(request, next_page=next_page, error=exc, status_code=401 if exc.status == 401 else exc.status)
    except ApiFailure as exc:
        return _form(request, next_page=next_page, error=exc, status_code=502)
    store: SessionStore = request.app.state.sessions
    store.close(request.cookies.get(SESSION_COOKIE))
    session_id, session = store.open(presented, parsed.key_id)
    session.notify(f"Signed in with admin key {parsed.key_id}.")
    settings: DashboardSettings = request.app.state.settings
    response = RedirectResponse(next_page, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=settings.session_ttl_s,
        path=COOKIE_PATH,
        secure=settings.cookie_secure,
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(SIGN_IN_COOKIE, path=COOKIE_PATH)
    return response


def signed_out(request: Request, reason: str) -> Response:
    """Back to the sign-in form, the session cookie cleared."""
    settings: DashboardSettings = request.app.state.settings
    response = RedirectResponse(f"/dashboard/login?reason={reason}", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, path=COOKIE_PATH, secure=settings.cookie_secure, httponly=True, samesite="strict"
    )
    return response


@sign_out_router.post("/logout")
async def sign_out(request: Request) -> Response:
    store: SessionStore = request.app.state.sessions
    store.close(request.cookies.get(SESSION_COOKIE))
    return signed_out(request, "signed_out")
