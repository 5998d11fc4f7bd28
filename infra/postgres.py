"""PostgreSQL connection pool factory (asyncpg)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

# PostgreSQL failures that say "not now" rather than "no": the server or the network is away, the pool is
# exhausted, or the connection was lost. Retried (consumers, workers) or answered with 503 (the API, the CLI).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)
# Any failure to read from PostgreSQL, the server's own errors included: a request path that must not fail open
# (authentication, a customer's configuration) answers 503 on these rather than guess.
STORE_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, asyncpg.PostgresError)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # JSONB columns round-trip as Python objects rather than strings.
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def build_postgres_pool(dsn: str, *, min_size: int = 2, max_size: int = 20, **kwargs: Any) -> asyncpg.Pool:
    """Open a pool with JSON codecs installed and a short connect timeout, so a dead database fails fast."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        timeout=5,
        command_timeout=10,
        **kwargs,
    )
    return pool
