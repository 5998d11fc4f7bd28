"""Policies with a version history: every change bumps ``version`` and writes the new state to
``policy_versions`` (version 1 at creation), so a decision's policy version can always be looked up.

Rules arrive validated (``schemas.policy_rules.PolicyRules``) and are stored as the operator wrote them, without
the defaults they left out.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from ingress.admin.paging import Listing
from ingress.admin.tenancy.customers import ensure_live_customer
from ingress.admin.tenancy.errors import NotFound, duplicates_as_conflict
from schemas.admin import (
    Page,
    Policy,
    PolicyCreate,
    PolicyReplace,
    PolicyUpdate,
    PolicyVersion,
    stored_rules,
)

_COLUMNS = "p.id, p.customer_id, p.name, p.rules, p.active, p.mode, p.version, p.created_at, p.updated_at"
_LIVE = "FROM policies p JOIN customers c ON c.id = p.customer_id WHERE p.deleted_at IS NULL AND c.deleted_at IS NULL"
_LISTING = Listing(Page[Policy], lambda r: Policy(**dict(r)), _COLUMNS, "p.created_at, p.id")
_RECORD_VERSION = """
INSERT INTO policy_versions (policy_id, version, name, rules, active, mode, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
_EDITABLE = ("name", "rules", "active", "mode")


def _duplicate(name: str) -> dict[str, str]:
    return {"policies_live_name": f"this customer already has a policy named {name!r}"}


async def _record_version(conn: asyncpg.Connection, row: asyncpg.Record) -> None:
    await conn.execute(
        _RECORD_VERSION,
        row["id"],
        row["version"],
        row["name"],
        row["rules"],
        row["active"],
        row["mode"],
        row["updated_at"],
    )


async def create_policy(pool: asyncpg.Pool, request: PolicyCreate) -> Policy:
    async with pool.acquire() as conn, conn.transaction():
        await ensure_live_customer(conn, request.customer_id)
        with duplicates_as_conflict(_duplicate(request.name)):
            row = await conn.fetchrow(
                "INSERT INTO policies (customer_id, name, rules, active, mode) VALUES ($1, $2, $3, $4, $5)"
                " RETURNING id, customer_id, name, rules, active, mode, version, created_at, updated_at",
                request.customer_id,
                request.name,
                stored_rules(request.rules),
                request.active,
                request.mode,
            )
        await _record_version(conn, row)
    return Policy(**dict(row))


async def list_policies(
    pool: asyncpg.Pool, *, customer_id: UUID | None = None, limit: int = 100, offset: int = 0
) -> Page[Policy]:
    async with pool.acquire() as conn:
        if customer_id is not None:
            await ensure_live_customer(conn, customer_id)
        where = "AND p.customer_id = $1" if customer_id is not None else "AND $1::uuid IS NULL"
        return await _LISTING.fetch(conn, f"{_LIVE} {where}", (customer_id,), limit, offset)


async def get_policy(pool: asyncpg.Pool, policy_id: UUID) -> Policy:
    row = await pool.fetchrow(f"SELECT {_COLUMNS} {_LIVE} AND p.id = $1", policy_id)
    if row is None:
        raise NotFound("policy")
    return Policy(**dict(row))


async def _change(pool: asyncpg.Pool, policy_id: UUID, changes: dict[str, Any], *, delete: bool = False) -> Policy:
    async with pool.acquire() as conn, conn.transaction():
        current = await conn.fetchrow(f"SELECT {_COLUMNS} {_LIVE} AND p.id = $1 FOR UPDATE OF p", policy_id)
        if current is None:
            raise NotFound("policy")
        wanted = {field: changes.get(field, current[field]) for field in _EDITABLE}
        if not delete and all(wanted[field] == current[field] for field in _EDITABLE):
            return Policy(**dict(current))  # nothing changed: no new version
        with duplicates_as_conflict(_duplicate(wanted["name"])):
            row = await conn.fetchrow(
                "UPDATE policies SET name = $2, rules = $3, active = $4, mode = $5, version = version + 1,"
                " updated_at = now(), deleted_at = CASE WHEN $6 THEN now() ELSE deleted_at END"
                " WHERE id = $1"
                " RETURNING id, customer_id, name, rules, active, mode, version, created_at, updated_at",
                policy_id,
                wanted["name"],
                wanted["rules"],
                wanted["active"],
                wanted["mode"],
                delete,
            )
        await _record_version(conn, row)
    return Policy(**dict(row))


async def replace_policy(pool: asyncpg.Pool, policy_id: UUID, request: PolicyReplace) -> Policy:
    changes = request.model_dump(include=set(_EDITABLE))
    changes["rules"] = stored_rules(request.rules)
    return await _change(pool, policy_id, changes)


async def update_policy(pool: asyncpg.Pool, policy_id: UUID, request: PolicyUpdate) -> Policy:
    changes = {field: getattr(request, field) for field in request.model_fields_set}
    if request.rules is not None:
        changes["rules"] = stored_rules(request.rules)
    return await _change(pool, policy_id, changes)


async def delete_policy(pool: asyncpg.Pool, policy_id: UUID) -> None:
    """Soft delete: the policy stops applying at once; its rows and history stay."""
    await _change(pool, policy_id, {"active": False}, delete=True)


async def list_versions(pool: asyncpg.Pool, policy_id: UUID) -> list[PolicyVersion]:
    """The whole history, oldest first; still readable after the policy (or its customer) was deleted."""
    rows = await pool.fetch(
        "SELECT policy_id, version, name, rules, active, mode, created_at FROM policy_versions"
        " WHERE policy_id = $1 ORDER BY version",
        policy_id,
    )
    if not rows:
        raise NotFound("policy")
    return [PolicyVersion(**dict(r)) for r in rows]
