"""Error reporting to Sentry, on only when ``SENTRY_DSN`` is set.

What leaves the process is scrubbed first (``scrub_event``): no Authorization, Cookie or API-key header, no
cookies, no request body (a check's context may hold personal data), no local variables, and every string that
looks like one of our keys or a Bearer token masked the way the logs mask it. Each event is tagged with the role
and, when there is one, the request id and customer id of the request that failed, so an event can be matched to
its log lines (docs/monitoring.md, "Sentry").
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Callable
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.fastapi import FastApiIntegration
from sentry_sdk.integrations.starlette import StarletteIntegration
from sentry_sdk.types import Event, Hint

from infra.logs import customer_id_var, mask_secrets, request_id_var
from infra.settings import CommonSettings

log = logging.getLogger("infra.sentry")

DROPPED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return {_masked(k): _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


def scrub_event(event: dict[str, Any], *, role: str, request_id: str = "", customer_id: str = "") -> dict[str, Any]:
    """The event as it may leave the process: tagged, without bodies, cookies or credentials, secrets masked."""
    request = event.get("request")
    if isinstance(request, dict):
        for field in ("data", "cookies", "env"):
            request.pop(field, None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {k: v for k, v in headers.items() if str(k).lower() not in DROPPED_HEADERS}
    tags = event.get("tags")
    tags = dict(tags) if isinstance(tags, dict) else {}
    tags["role"] = role
    if request_id:
        tags["request_id"] = request_id
    if customer_id:
        tags["customer_id"] = customer_id
    event["tags"] = tags
    scrubbed: dict[str, Any] = _masked(event)
    return scrubbed


def _before_send(role: str) -> Callable[[Event, Hint], Event | None]:
    def before_send(event: Event, _hint: Hint) -> Event | None:
        # Called synchronously where the event is captured, so the request's context variables are still set.
        scrubbed: Event = scrub_event(  # type: ignore[assignment]
            dict(event), role=role, request_id=request_id_var.get(), customer_id=customer_id_var.get()
        )
        return scrubbed

    return before_send


def _release() -> str:
    explicit = os.environ.get("SENTRY_RELEASE", "")
    if explicit:
        return explicit
    try:
        return f"governance@{importlib.metadata.version('governance')}"
    except importlib.metadata.PackageNotFoundError:
        return "governance@unknown"


def init_sentry(role: str, settings: CommonSettings) -> bool:
    """Start reporting errors of this process to Sentry; returns False (and does nothing) without a DSN."""
    if not settings.sentry_dsn:
        return False
    before_send = _before_send(role)
    release = _release()
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.environment,
        release=release,
        send_default_pii=False,
        max_request_body_size="never",
        include_local_variables=False,  # locals of the check path hold the parsed request
        before_send=before_send,
        before_send_transaction=before_send,
        integrations=[StarletteIntegration(), FastApiIntegration()],
    )
    log.info("Sentry error reporting on (role %s, environment %s, release %s)", role, settings.environment, release)
    return True
