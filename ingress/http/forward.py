"""The audit read side's paths on :8000, forwarded to its own process.

The decision history, summaries, exports, backtests and the AsyncAPI document are served by ``python -m
ingress.audit`` on a loopback port, so an analyst's export or a 100 000-event backtest never shares a process or an
event loop with the check path. Ingress answers those paths by streaming them to and from the read side: the
caller's headers (its Bearer key among them) go as they came, the request id ingress gave the request goes with
them (the read side adopts it), and the answer streams back as it is produced, never held whole in memory. The
read side authenticates and rate-limits these paths itself.

A read side that cannot be reached is a 503 with ``Retry-After``; checks are unaffected.
"""

from __future__ import annotations

import string
from urllib.parse import quote_from_bytes

import httpx
from fastapi import APIRouter, Request
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from ingress.http.errors import ApiError
from ingress.resources import Probe

# Headers that belong to one connection, not to the request (RFC 9110 §7.6.1), and the ones ingress sets itself.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
    }
)
_NOT_BACK = frozenset({b"x-request-id", b"server", b"date"}) | _HOP_BY_HOP
# A request target goes on as it came, percent-escapes kept; any other byte but printable ASCII is escaped.
_TARGET_SAFE = "".join(c for c in string.printable if c not in string.whitespace)


def request_target(raw_path: bytes, query_string: bytes) -> str:
    """The target to send upstream, from the bytes the caller sent.

    The decoded path would not do: ``/admin/policies/%15/backtest`` decodes to a control character, which no URL
    may hold, and a path segment holding an escaped ``/`` would decode to two segments.
    """
    target = quote_from_bytes(raw_path, safe=_TARGET_SAFE)
    return target + "?" + quote_from_bytes(query_string, safe=_TARGET_SAFE) if query_string else target


# The paths the read side serves, with their methods. Everything else is ingress's own.
READ_SIDE_PATHS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/logs", ("GET", "POST")),
    ("/v1/decisions", ("GET",)),
    ("/admin/analytics/{rest:path}", ("GET",)),
    ("/admin/policies/{policy_id}/backtest", ("POST",)),
    ("/asyncapi.json", ("GET",)),
)


class ReadSideForwarder:
    def __init__(self, base_url: str, timeout_s: float, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url
        self.client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout_s, connect=2.0),
            transport=transport,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )

    async def forward(self, request: Request) -> Response:
        headers = [(name, value) for name, value in request.headers.raw if name.lower() not in _HOP_BY_HOP]
        headers.append((b"x-request-id", str(request.state.request_id).encode()))
        if request.client is not None:
            headers.append((b"x-forwarded-for", request.client.host.encode()))
        target = request_target(
            request.scope.get("raw_path") or request.url.path.encode(), request.scope["query_string"]
        )
        outgoing = self.client.build_request(
            request.method,
            target,
            headers=headers,  # as bytes: a header's bytes beyond ASCII (HTTP allows them) go on as they came
            content=request.stream(),
        )
        try:
            upstream = await self.client.send(outgoing, stream=True)
        except httpx.TransportError:
            raise ApiError(
                503,
                "unavailable",
                "the decision history is unavailable right now; retry shortly",
                headers={"Retry-After": "2"},
            ) from None
        back = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in upstream.headers.raw
            if name.lower() not in _NOT_BACK
        }
        return StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            headers=back,
            background=BackgroundTask(upstream.aclose),
        )

    def probes(self) -> dict[str, Probe]:
        async def audit() -> None:
            answer = await self.client.get("/health", timeout=2.0)
            answer.raise_for_status()

        return {"audit": audit}

    async def close(self) -> None:
        await self.client.aclose()


async def _forward(request: Request) -> Response:
    forwarder: ReadSideForwarder = request.app.state.forwarder
    return await forwarder.forward(request)


def forwarding_router() -> APIRouter:
    """Routes for the read side's paths (documented by the read side's own routers, see ``ingress.app``)."""
    router = APIRouter(include_in_schema=False)
    for path, methods in READ_SIDE_PATHS:
        router.add_api_route(path, _forward, methods=list(methods))
    return router
