"""Dependencies of the signed-in pages: the session from the cookie, the API bound to its admin key, the form's
fields, and the CSRF check that every POST passes before its route runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from ingress.dashboard.api import AdminApiClient, OperatorApi
from ingress.dashboard.sessions import Session, SessionStore, tokens_match

SESSION_COOKIE = "dashboard_session"
SIGN_IN_COOKIE = "dashboard_signin"
COOKIE_PATH = "/dashboard"


class SignInRequired(Exception):
    """No live session: the page sends the browser to the sign-in form."""


class CsrfRejected(Exception):
    """A POST without this session's CSRF token (missing, wrong or from another site)."""


def _session(request: Request) -> Session:
    store: SessionStore = request.app.state.sessions
    session = store.find(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise SignInRequired
    request.state.session = session
    return session


SessionDep = Annotated[Session, Depends(_session)]


async def form_fields(request: Request) -> dict[str, str]:
    """The submitted form's text fields (empty for a GET)."""
    if request.method != "POST":
        return {}
    form = await request.form()
    return {name: value for name, value in form.items() if isinstance(value, str)}


FormDep = Annotated[dict[str, str], Depends(form_fields)]


async def require_csrf(session: SessionDep, form: FormDep, request: Request) -> None:
    """Runs on every route of the signed-in pages; only a POST carries a form to check."""
    if request.method == "POST" and not tokens_match(session.csrf_token, form.get("csrf_token")):
        raise CsrfRejected


def _api(request: Request, session: SessionDep) -> OperatorApi:
    client: AdminApiClient = request.app.state.api
    return OperatorApi(client, session.admin_key)


ApiDep = Annotated[OperatorApi, Depends(_api)]

# A key named in a path: its public id or its UUID, nothing that could reach another API path.
KeyRef = Annotated[str, Path(pattern=r"^(keyid_[0-9A-Za-z]{1,64}|[0-9a-fA-F-]{36})$")]
