"""Pages from Jinja templates (autoescaped), with what every page shows: the operator, their CSRF token for the
forms, notices from the last action, and an error from the API with its request id."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Undefined
from starlette.responses import Response

from ingress.dashboard.api import ApiFailure, ApiRefusal
from ingress.dashboard.charts import format_number
from ingress.dashboard.sessions import Session

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def when(value: Any) -> str:
    """A moment as operators read it in this dashboard: UTC, to the second."""
    moment = parse_time(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def ago(value: Any, now: datetime | None = None) -> str:
    moment = parse_time(value)
    if moment is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 0:
        return "in " + _span(-seconds)
    return "just now" if seconds < 5 else _span(seconds) + " ago"


def _span(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def number(value: Any) -> str:
    if value is None or isinstance(value, Undefined):
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return format_number(value)
    return str(value)


def percent(value: Any) -> str:
    return "—" if value is None or isinstance(value, Undefined) else f"{float(value) * 100:.1f} %"


templates.env.filters.update(when=when, ago=ago, number=number, percent=percent)
templates.env.globals.update(app_title="Governance dashboard")


def current_session(request: Request) -> Session | None:
    session = getattr(request.state, "session", None)
    return session if isinstance(session, Session) else None


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    error: ApiFailure | str | None = None,
) -> Response:
    session = current_session(request)
    page: dict[str, Any] = {
        "session": session,
        "csrf_token": session.csrf_token if session else "",
        "notices": session.take_notices() if session else [],
        "error": error,
        "error_details": error.details if isinstance(error, ApiRefusal) else [],
        "path": request.url.path,
    }
    page.update(context or {})
    return templates.TemplateResponse(request, template, page, status_code=status_code)
