"""Reading key records from PostgreSQL for the verifier (one indexed read by ``key_id``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg

from infra.postgres import STORE_ERRORS
from ingress.auth.keys import KeyKind
from ingress.auth.records import AuthUnavailable, KeyRecord, RecordLoader, TagWriter

_CUSTOMER_KEY = """
SELECT k.id, k.key_id, k.key_hash, k.key_tag, k.key_verifier, k.name, k.active, k.revoked_at, k.expires_at,
       k.customer_id, c.tier, (c.deleted_at IS NOT NULL) AS customer_deleted
FROM api_keys k JOIN customers c ON c.id = k.customer_id
WHERE k.key_id = $1
"""
_ADMIN_KEY = """
SELECT id, key_id, key_hash, key_tag, key_verifier, name, active, revoked_at, NULL::timestamptz AS expires_at
FROM admin_keys WHERE key_id = $1
"""


def postgres_record_loader(get_pool: Callable[[], Awaitable[asyncpg.Pool]]) -> RecordLoader:
    async def load(kind: KeyKind, key_id: str) -> KeyRecord | None:
        try:
            # One deadline over connect, acquire, query and release: a frozen server must cost a request 2.5 s
            # and a 503, not the minutes a cancelled query's release can wait.
            async with asyncio.timeout(2.5):
                pool = await get_pool()
                row = await pool.fetchrow(_CUSTOMER_KEY if kind == "live" else _ADMIN_KEY, key_id, timeout=2)
        except STORE_ERRORS as exc:
            raise AuthUnavailable("key store unavailable") from exc
        if row is None:
            return None
        return KeyRecord(**dict(row))

    return load


async def record_key_use(pool: asyncpg.Pool, kind: KeyKind, key_ids: set[str]) -> None:
    """Batch-update ``last_used_at`` (called periodically, never per request)."""
    table = "api_keys" if kind == "live" else "admin_keys"
    await pool.execute(f"UPDATE {table} SET last_used_at = now() WHERE key_id = ANY($1::text[])", list(key_ids))


def postgres_tag_writer(get_pool: Callable[[], Awaitable[asyncpg.Pool]]) -> TagWriter:
    """Store a key's tag and verifier after its first accepted use, only while the row still holds the hash that
    accepted it, never replacing one already stored. Best effort: what is not written now is at a later first use."""

    async def write(kind: KeyKind, key_id: str, key_hash: str, tag: str, verifier: str) -> None:
        table = "api_keys" if kind == "live" else "admin_keys"
        try:
            async with asyncio.timeout(2.5):
                pool = await get_pool()
                await pool.execute(
                    f"UPDATE {table} SET key_tag = COALESCE(key_tag, $3), key_verifier = COALESCE(key_verifier, $4)"
                    " WHERE key_id = $1 AND key_hash = $2 AND (key_tag IS NULL OR key_verifier IS NULL)",
                    key_id,
                    key_hash,
                    tag,
                    verifier,
                    timeout=2,
                )
        except STORE_ERRORS:
            return

    return write
