"""Operators' admin keys (``sk_admin_…``). Created by the CLI only: an admin key is what guards the admin API."""

from __future__ import annotations

import asyncio
from uuid import UUID

import asyncpg

from ingress.admin.tenancy.errors import NotFound, parse_id
from ingress.auth.keys import (
    KEY_ID_PREFIX,
    MalformedKey,
    generate_key,
    hash_key,
    key_tag,
    key_verifier,
    parse_key,
    verify_key_hash,
)
from schemas.admin import AdminKey, AdminKeyCreated

_COLUMNS = "id, key_id, name, active, created_at, revoked_at, last_used_at"


async def create_admin_key(pool: asyncpg.Pool, name: str, *, rounds: int) -> AdminKeyCreated:
    generated = generate_key("admin")
    key_hash = await asyncio.to_thread(hash_key, generated.key, rounds)
    row = await pool.fetchrow(
        "INSERT INTO admin_keys (key_id, key_hash, name, key_tag, key_verifier) VALUES ($1, $2, $3, $4, $5)"
        " RETURNING id, created_at",
        generated.key_id,
        key_hash,
        name,
        key_tag(generated.key),
        key_verifier(generated.key, key_hash),
    )
    return AdminKeyCreated(
        id=row["id"], key_id=generated.key_id, key=generated.key, name=name, created_at=row["created_at"]
    )


async def list_admin_keys(pool: asyncpg.Pool) -> list[AdminKey]:
    rows = await pool.fetch(f"SELECT {_COLUMNS} FROM admin_keys ORDER BY created_at, id")
    return [AdminKey(**dict(r)) for r in rows]


async def revoke_admin_key(pool: asyncpg.Pool, ref: str | UUID) -> AdminKey:
    lookup: str | UUID
    if isinstance(ref, str) and ref.startswith(KEY_ID_PREFIX):
        column, lookup = "key_id", ref
    else:
        column, lookup = "id", parse_id(ref, "admin key")
    row = await pool.fetchrow(
        f"UPDATE admin_keys SET revoked_at = coalesce(revoked_at, now()), active = false"
        f" WHERE {column} = $1 RETURNING {_COLUMNS}",
        lookup,
    )
    if row is None:
        raise NotFound("admin key")
    return AdminKey(**dict(row))


async def admin_key_verifies(pool: asyncpg.Pool, key: str) -> bool:
    """Whether ``key`` is a well-formed admin key that is stored, active and matches its hash."""
    try:
        parsed = parse_key(key)
    except MalformedKey:
        return False
    if parsed.kind != "admin":
        return False
    row = await pool.fetchrow(
        "SELECT key_hash FROM admin_keys WHERE key_id = $1 AND active AND revoked_at IS NULL", parsed.key_id
    )
    if row is None:
        return False
    return await asyncio.to_thread(verify_key_hash, key, row["key_hash"])
