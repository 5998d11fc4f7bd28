"""Who may read ``/metrics``.

``/metrics`` names every customer, their volumes and the key ids of rate-limited keys. With ``METRICS_TOKEN`` set it
answers only ``Authorization: Bearer <METRICS_TOKEN>`` (compared in constant time); without it, it is open in local
and test runs (the guide's ``curl localhost:8000/metrics``) and refused everywhere else.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from ingress.http.errors import ApiError


async def metrics_access(request: Request) -> None:
    """A dependency of ``/metrics``: pass, or raise the 401 / 403 that says what is missing."""
    settings = request.app.state.settings
    token: str = settings.metrics_token
    if not token:
        if settings.environment in {"local", "test"}:
            return
        raise ApiError(403, "forbidden", "/metrics is closed outside local runs until METRICS_TOKEN is set")
    scheme, _, presented = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
        raise ApiError(
            401,
            "unauthorized",
            "/metrics needs Authorization: Bearer <METRICS_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )
