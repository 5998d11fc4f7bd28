"""Per-route latency and status counting as a plain ASGI middleware (the route template, never the raw path)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingress.http.metrics import LATENCY, RESPONSES, count_customer_response


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            LATENCY.labels(endpoint).observe((time.perf_counter() - started) * 1000)
            RESPONSES.labels(endpoint, str(status)).inc()
            # set by the check route once it knows whose check this is (customer name, key id)
            labels = scope.get("state", {}).get("metrics_customer")
            if labels is not None:
                count_customer_response(labels[0], labels[1], status)
