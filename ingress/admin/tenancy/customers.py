"""Customers: create, read, update, and soft delete (which revokes their keys and deactivates their policies)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from ingress.admin.paging import Listing
from ingress.admin.tenancy.errors import NotFound, duplicates_as_conflict
from schemas.admin import Customer, CustomerCreate, CustomerDeleted, CustomerUpdate, Page, RateLimit

_COLUMNS = "id, name, tier, rate_limit_capacity, rate_limit_window_s, created_at, updated_at"


def _duplicate(name: str) -> dict[str, str]:
    return {"customers_live_name": f"a customer named {name!r} already exists"}


def customer_from_row(row: asyncpg.Record) -> Customer:
    capacity, window = row["rate_limit_capacity"], row["rate_limit_window_s"]
    return Customer(
        id=row["id"],
        name=row["name"],
        tier=row["tier"],
        rate_limit=RateLimit(capacity=capacity, window_s=window)
        if capacity is not None and window is not None
        else None,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


_OLDEST_FIRST = Listing(Page[Customer], customer_from_row, _COLUMNS, "created_at, id")
_NEWEST_FIRST = Listing(Page[Customer], customer_from_row, _COLUMNS, "created_at DESC, id DESC")


async def ensure_live_customer(conn: asyncpg.Connection, customer_id: UUID) -> None:
    """Raise ``NotFound`` unless the customer exists and is not deleted.

    Inside a transaction the row is share-locked, so a concurrent delete waits for the caller's insert and then
    revokes or deactivates what was just added.
    """
    found = await conn.fetchval("SELECT 1 FROM customers WHERE id = $1 AND deleted_at IS NULL FOR SHARE", customer_id)
    if found is None:
        raise NotFound("customer")


async def create_customer(pool: asyncpg.Pool, request: CustomerCreate) -> Customer:
    limit = request.rate_limit
    with duplicates_as_conflict(_duplicate(request.name)):
        row = await pool.fetchrow(
            f"INSERT INTO customers (name, tier, rate_limit_capacity, rate_limit_window_s)"
            f" VALUES ($1, $2, $3, $4) RETURNING {_COLUMNS}",
            request.name,
            request.tier,
            limit.capacity if limit else None,
            limit.window_s if limit else None,
        )
    return customer_from_row(row)


async def list_customers(
    pool: asyncpg.Pool, *, limit: int = 100, offset: int = 0, newest_first: bool = False
) -> Page[Customer]:
    listing = _NEWEST_FIRST if newest_first else _OLDEST_FIRST
    return await listing.fetch(pool, "FROM customers WHERE deleted_at IS NULL", (), limit, offset)


async def get_customer(pool: asyncpg.Pool, customer_id: UUID) -> Customer:
    row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM customers WHERE id = $1 AND deleted_at IS NULL", customer_id)
    if row is None:
        raise NotFound("customer")
    return customer_from_row(row)


async def update_customer(pool: asyncpg.Pool, customer_id: UUID, request: CustomerUpdate) -> Customer:
    """Change only the fields the request carries; ``rate_limit: null`` returns the customer to its tier's limit."""
    given = request.model_fields_set
    assignments: list[str] = []
    args: list[Any] = [customer_id]

    def assign(column: str, value: Any) -> None:
        args.append(value)
        assignments.append(f"{column} = ${len(args)}")

    if "name" in given:
        assign("name", request.name)
    if "tier" in given:
        assign("tier", request.tier)
    if "rate_limit" in given:
        assign("rate_limit_capacity", request.rate_limit.capacity if request.rate_limit else None)
        assign("rate_limit_window_s", request.rate_limit.window_s if request.rate_limit else None)
    if not assignments:
        return await get_customer(pool, customer_id)
    with duplicates_as_conflict(_duplicate(request.name or "")):
        row = await pool.fetchrow(
            f"UPDATE customers SET {', '.join(assignments)}, updated_at = now()"
            f" WHERE id = $1 AND deleted_at IS NULL RETURNING {_COLUMNS}",
            *args,
        )
    if row is None:
        raise NotFound("customer")
    return customer_from_row(row)


# Deactivating a policy is a change like any other: it bumps the version and leaves a row in the history.
_DEACTIVATE_POLICIES = """
WITH changed AS (
    UPDATE policies SET active = false, version = version + 1, updated_at = now()
    WHERE customer_id = $1 AND deleted_at IS NULL AND active
    RETURNING id, version, name, rules, active, mode
)
INSERT INTO policy_versions (policy_id, version, name, rules, active, mode)
SELECT id, version, name, rules, active, mode FROM changed
RETURNING policy_id
"""


async def delete_customer(pool: asyncpg.Pool, customer_id: UUID) -> CustomerDeleted:
    """Mark the customer deleted, revoke every key it has and deactivate its policies, in one transaction.

    Nothing is removed: keys, policies and their history stay for the audit trail.
    """
    async with pool.acquire() as conn, conn.transaction():
        deleted_at = await conn.fetchval(
            "UPDATE customers SET deleted_at = now(), updated_at = now()"
            " WHERE id = $1 AND deleted_at IS NULL RETURNING deleted_at",
            customer_id,
        )
        if deleted_at is None:
            raise NotFound("customer")
        revoked = await conn.fetch(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()), active = false"
            " WHERE customer_id = $1 AND (active OR revoked_at IS NULL) RETURNING id",
            customer_id,
        )
        deactivated = await conn.fetch(_DEACTIVATE_POLICIES, customer_id)
    return CustomerDeleted(
        id=customer_id, deleted_at=deleted_at, keys_revoked=len(revoked), policies_deactivated=len(deactivated)
    )
