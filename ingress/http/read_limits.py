"""Rate limits on every path but the check: admin calls, a customer's own history, summaries, exports, backtests.

The check path has its own bucket per key (``ingress.check.route``). Reads get another one per key, so reading the
history never eats into a customer's checks and a busy script on one admin key cannot keep ClickHouse or
PostgreSQL from everyone else; backtests, each a replay of up to ``MAX_DECISIONS`` events, get a third, smaller
one. All share the check path's limiter (Redis, with its in-memory fallback), under prefixes of their own.

A limited route takes one of the ``*LimitDep`` dependencies below, which authenticate first (FastAPI resolves
``require_admin`` / ``require_customer`` once per request, so a route that also names ``AdminDep`` pays nothing
more). Every answer carries ``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` (``RateLimitHeadersMiddleware``);
a refusal is the usual JSON error, 429 with ``Retry-After`` and the request id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingress.auth.deps import AdminDep, CustomerDep
from ingress.auth.verifier import Principal
from ingress.check.ratelimit import Limit, RateLimiter
from ingress.http.errors import ApiError

# Where a limited route leaves its headers for the middleware (request.state lives in scope["state"]).
STATE_KEY = "rate_limit_headers"


@dataclass(frozen=True)
class Bucket:
    name: str  # the limiter key's prefix, and what the 429 says was exceeded
    what: str


READS = Bucket("read", "read requests")
BACKTESTS = Bucket("backtest", "backtests")


def read_limits(request: Request) -> dict[str, Limit]:
    settings = request.app.state.settings
    return {
        READS.name: Limit(settings.read_rate_limit_capacity, settings.read_rate_limit_window_s),
        BACKTESTS.name: Limit(settings.backtest_rate_limit_capacity, settings.backtest_rate_limit_window_s),
    }


async def take(request: Request, principal: Principal, bucket: Bucket) -> None:
    """One token from ``principal``'s ``bucket``; 429 when it is empty. The headers go on the answer either way."""
    limiter: RateLimiter = request.app.state.limiter
    limit = read_limits(request)[bucket.name]
    decision = await limiter.take(f"{bucket.name}:{principal.key_id}", limit)
    headers = decision.headers()
    request.state.rate_limit_headers = headers
    if not decision.allowed:
        raise ApiError(
            429,
            "rate_limited",
            f"rate limit of {limit.capacity} {bucket.what} per {limit.window_s} s exceeded; "
            f"retry after {decision.retry_after_s} s",
            headers=headers,
        )


async def admin_reads(request: Request, principal: AdminDep) -> Principal:
    await take(request, principal, READS)
    return principal


async def customer_reads(request: Request, principal: CustomerDep) -> Principal:
    await take(request, principal, READS)
    return principal


async def admin_backtests(request: Request, principal: AdminDep) -> Principal:
    await take(request, principal, BACKTESTS)
    return principal


AdminReadDep = Annotated[Principal, Depends(admin_reads)]
CustomerReadDep = Annotated[Principal, Depends(customer_reads)]
AdminBacktestDep = Annotated[Principal, Depends(admin_backtests)]


class RateLimitHeadersMiddleware:
    """Adds the headers a limited route left in the request's state to its answer, whatever the route returned
    (routes here return ``Response`` objects, which FastAPI does not merge dependency headers into)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state") or {}
                extra = state.get(STATE_KEY) if isinstance(state, dict) else None
                if extra:
                    headers = MutableHeaders(scope=message)
                    for name, value in extra.items():
                        if name not in headers:
                            headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)
