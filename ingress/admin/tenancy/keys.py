"""Customers' API keys: issue, list, rotate with a grace period, revoke.

The whole key exists only in the value returned by ``create_key`` and ``rotate_key``; only its bcrypt hash is
stored, and nothing here logs it. bcrypt runs in a worker thread, before any transaction opens, so neither the
event loop nor a row lock waits for it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg

from ingress.admin.paging import Listing
from ingress.admin.tenancy.customers import ensure_live_customer
from ingress.admin.tenancy.errors import Conflict, NotFound, duplicates_as_conflict, parse_id
from ingress.auth.keys import KEY_ID_PREFIX, GeneratedKey, generate_key, hash_key, key_tag, key_verifier
from schemas.admin import ApiKey, KeyCreate, KeyCreated, KeyRotate, Page

_COLUMNS = """
k.id, k.key_id, k.name, k.customer_id, k.active, k.created_at, k.rotated_at, k.expires_at, k.revoked_at,
k.last_used_at, k.replaces,
CASE WHEN k.revoked_at IS NOT NULL OR NOT k.active THEN 'revoked'
     WHEN k.expires_at IS NOT NULL AND k.expires_at <= now() THEN 'expired'
     WHEN k.rotated_at IS NOT NULL THEN 'rotated'
     ELSE 'active' END AS status,
floor(extract(epoch FROM now() - k.created_at) / 86400)::int AS age_days
"""
_LIVE = "FROM api_keys k JOIN customers c ON c.id = k.customer_id WHERE c.deleted_at IS NULL"
_SELECT = f"SELECT {_COLUMNS} {_LIVE}"
_LISTING = Listing(Page[ApiKey], lambda r: ApiKey(**dict(r)), _COLUMNS, "k.created_at, k.id")


def _duplicate(name: str) -> dict[str, str]:
    return {"api_keys_live_name": f"this customer already has a live key named {name!r}"}


def key_reference(ref: str | UUID) -> tuple[str, Any]:
    """A key is named by its ``id`` (UUID) or by its public ``key_id`` (``keyid_…``, as logs show it)."""
    if isinstance(ref, str) and ref.startswith(KEY_ID_PREFIX):
        return "key_id", ref
    return "id", parse_id(ref, "key")


async def _new_key(rounds: int) -> tuple[GeneratedKey, str]:
    generated = generate_key("live")
    return generated, await asyncio.to_thread(hash_key, generated.key, rounds)


async def create_key(pool: asyncpg.Pool, request: KeyCreate, *, rounds: int) -> KeyCreated:
    generated, key_hash = await _new_key(rounds)
    async with pool.acquire() as conn, conn.transaction():
        await ensure_live_customer(conn, request.customer_id)
        with duplicates_as_conflict(_duplicate(request.name)):
            row = await conn.fetchrow(
                "INSERT INTO api_keys (key_id, customer_id, key_hash, name, key_tag, key_verifier)"
                " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, created_at",
                generated.key_id,
                request.customer_id,
                key_hash,
                request.name,
                key_tag(generated.key),
                key_verifier(generated.key, key_hash),
            )
    return KeyCreated(
        id=row["id"],
        key_id=generated.key_id,
        key=generated.key,
        name=request.name,
        customer_id=request.customer_id,
        created_at=row["created_at"],
    )


async def list_keys(
    pool: asyncpg.Pool, *, customer_id: UUID | None = None, limit: int = 100, offset: int = 0
) -> Page[ApiKey]:
    async with pool.acquire() as conn:
        if customer_id is not None:
            await ensure_live_customer(conn, customer_id)
        where = "AND k.customer_id = $1" if customer_id is not None else "AND $1::uuid IS NULL"
        return await _LISTING.fetch(conn, f"{_LIVE} {where}", (customer_id,), limit, offset)


async def get_key(pool: asyncpg.Pool | asyncpg.Connection, ref: str | UUID) -> ApiKey:
    column, value = key_reference(ref)
    row = await pool.fetchrow(f"{_SELECT} AND k.{column} = $1", value)
    if row is None:
        raise NotFound("key")
    return ApiKey(**dict(row))


async def rotate_key(pool: asyncpg.Pool, ref: str | UUID, request: KeyRotate, *, rounds: int) -> KeyCreated:
    """Issue a successor (same customer, same name); the old key keeps working for the grace period, then stops."""
    column, value = key_reference(ref)
    generated, key_hash = await _new_key(rounds)
    async with pool.acquire() as conn, conn.transaction():
        old = await conn.fetchrow(
            f"SELECT k.id, k.key_id, k.customer_id, k.name, k.active, k.revoked_at, k.rotated_at,"
            f" (k.expires_at IS NOT NULL AND k.expires_at <= now()) AS expired"
            f" FROM api_keys k JOIN customers c ON c.id = k.customer_id"
            f" WHERE k.{column} = $1 AND c.deleted_at IS NULL FOR UPDATE OF k",
            value,
        )
        if old is None:
            raise NotFound("key")
        if old["revoked_at"] is not None or not old["active"]:
            raise Conflict("this key is revoked; issue a new key instead")
        if old["rotated_at"] is not None:
            raise Conflict("this key was already rotated; rotate its replacement instead")
        if old["expired"]:
            raise Conflict("this key has expired; issue a new key instead")
        expires_at = await conn.fetchval(
            "UPDATE api_keys SET rotated_at = now(), expires_at = now() + $2::interval WHERE id = $1"
            " RETURNING expires_at",
            old["id"],
            timedelta(seconds=request.grace_period_s),
        )
        row = await conn.fetchrow(
            "INSERT INTO api_keys (key_id, customer_id, key_hash, name, replaces, key_tag, key_verifier)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, created_at",
            generated.key_id,
            old["customer_id"],
            key_hash,
            old["name"],
            old["id"],
            key_tag(generated.key),
            key_verifier(generated.key, key_hash),
        )
    return KeyCreated(
        id=row["id"],
        key_id=generated.key_id,
        key=generated.key,
        name=old["name"],
        customer_id=old["customer_id"],
        created_at=row["created_at"],
        replaces=old["id"],
        replaces_key_id=old["key_id"],
        replaced_key_expires_at=expires_at,
    )


async def revoke_key(pool: asyncpg.Pool, ref: str | UUID) -> ApiKey:
    """Stop the key at once. Revoking a revoked key changes nothing and answers the same."""
    column, value = key_reference(ref)
    async with pool.acquire() as conn, conn.transaction():
        key_id = await conn.fetchval(
            f"UPDATE api_keys k SET revoked_at = coalesce(k.revoked_at, now()), active = false"
            f" FROM customers c WHERE c.id = k.customer_id AND c.deleted_at IS NULL AND k.{column} = $1"
            f" RETURNING k.id",
            value,
        )
        if key_id is None:
            raise NotFound("key")
        return await get_key(conn, key_id)
