"""Dependencies and the route class shared by the admin routers.

``PoolDep`` hands a route the PostgreSQL pool (opened on first use). ``AdminRoute`` turns a database that cannot
be reached into 503 with ``Retry-After`` and a value PostgreSQL refused into 422, so no admin call ever answers
500 for a reason the caller can act on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Query, Request, Response
from fastapi.routing import APIRoute

from infra.postgres import TRANSIENT_ERRORS
from ingress.http.errors import ApiError

log = logging.getLogger("ingress.admin")

_UNAVAILABLE = TRANSIENT_ERRORS
_REFUSED = (asyncpg.DataError, asyncpg.CheckViolationError)


class AdminRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except _UNAVAILABLE as exc:
                log.warning("admin call failed, database unavailable: %s", type(exc).__name__)
                raise ApiError(
                    503, "unavailable", "database unavailable; retry shortly", headers={"Retry-After": "2"}
                ) from None
            except _REFUSED as exc:
                log.info("admin call refused by the database: %s", type(exc).__name__)
                raise ApiError(422, "validation_error", "a value was refused by the database") from None

        return guarded


async def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = await request.app.state.resources.postgres()
    return pool


def _bcrypt_rounds(request: Request) -> int:
    rounds: int = request.app.state.settings.bcrypt_rounds
    return rounds


# PostgreSQL's OFFSET is a bigint: a larger one is the caller's mistake, refused as such rather than by the database.
MAX_OFFSET = 2**63 - 1
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip")]

PoolDep = Annotated[asyncpg.Pool, Depends(_pool)]
BcryptRoundsDep = Annotated[int, Depends(_bcrypt_rounds)]


def forget_cached_keys(request: Request, *key_ids: str) -> None:
    """Drop this process's cached verification at once; other processes hear of it through NOTIFY."""
    auth = getattr(request.app.state, "auth", None)
    if auth is None:
        return
    if not key_ids:
        auth.customers.invalidate()
    for key_id in key_ids:
        auth.customers.invalidate(key_id)


def audit(request: Request, action: str, **target: object) -> None:
    """One log line per admin change: what, on which record, by which admin key (its public id). Never a key."""
    principal = getattr(request.state, "principal", None)
    details = " ".join(f"{name}={value}" for name, value in target.items())
    log.info("admin %s %s by %s", action, details, getattr(principal, "key_id", "?"))
