"""Alert rules: a customer's own, or the fleet's (``customer_id`` null), one per kind. No rule = the default.

Parameters are validated for the rule's kind (``schemas.alerting``) and stored as written. The alerting consumer
re-reads the rules every ``ALERTS_RULES_REFRESH_S``.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import pydantic

from ingress.admin.paging import Listing
from ingress.admin.tenancy.customers import ensure_live_customer
from ingress.admin.tenancy.errors import NotFound, duplicates_as_conflict
from ingress.http.errors import ApiError, validation_error
from schemas.admin import Page
from schemas.alerting import (
    RULE_KINDS,
    AlertRule,
    AlertRuleCreate,
    AlertRuleUpdate,
    EffectiveRule,
    RuleKind,
    StoredRule,
    effective_rule,
    full_params,
    parse_params,
    stored_params,
)

_COLUMNS = "id, customer_id, kind, enabled, params, created_at, updated_at"


def _duplicate(customer_id: UUID | None, kind: str) -> dict[str, str]:
    return {
        "alert_rules_customer_kind": f"customer {customer_id} already has a {kind} rule; update it instead",
        "alert_rules_fleet_kind": f"a fleet-wide {kind} rule already exists; update it instead",
    }


def _rule(row: asyncpg.Record) -> AlertRule:
    return AlertRule(
        id=row["id"],
        customer_id=row["customer_id"],
        rule=row["kind"],
        enabled=row["enabled"],
        params=row["params"],
        effective_params=full_params(parse_params(row["kind"], row["params"])),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


_LISTING = Listing(Page[AlertRule], _rule, _COLUMNS, "customer_id NULLS FIRST, kind, id")


def params_refused(exc: pydantic.ValidationError, prefix: tuple[str, ...] = ("body", "params")) -> ApiError:
    """A 422 naming each refused parameter as ``body.params.<name>``, like a request-model error."""
    return validation_error([{**err, "loc": (*prefix, *err.get("loc", ()))} for err in exc.errors()])


async def create_rule(pool: asyncpg.Pool, request: AlertRuleCreate) -> AlertRule:
    async with pool.acquire() as conn, conn.transaction():
        if request.customer_id is not None:
            await ensure_live_customer(conn, request.customer_id)
        with duplicates_as_conflict(_duplicate(request.customer_id, request.rule)):
            row = await conn.fetchrow(
                f"INSERT INTO alert_rules (customer_id, kind, enabled, params) VALUES ($1, $2, $3, $4)"
                f" RETURNING {_COLUMNS}",
                request.customer_id,
                request.rule,
                request.enabled,
                request.params,
            )
    return _rule(row)


async def list_rules(
    pool: asyncpg.Pool,
    *,
    customer_id: UUID | None = None,
    fleet: bool = False,
    rule: RuleKind | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page[AlertRule]:
    """Stored rules, optionally only one customer's, only the fleet's (``fleet``), or only one kind."""
    conditions = ["($1::uuid IS NULL OR customer_id = $1)", "($2::text IS NULL OR kind = $2)"]
    if fleet:
        conditions.append("customer_id IS NULL")
    source = f"FROM alert_rules WHERE {' AND '.join(conditions)}"
    return await _LISTING.fetch(pool, source, (customer_id, rule), limit, offset)


async def get_rule(pool: asyncpg.Pool, rule_id: UUID) -> AlertRule:
    row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM alert_rules WHERE id = $1", rule_id)
    if row is None:
        raise NotFound("alert rule")
    return _rule(row)


async def update_rule(pool: asyncpg.Pool, rule_id: UUID, request: AlertRuleUpdate) -> AlertRule:
    async with pool.acquire() as conn, conn.transaction():
        current = await conn.fetchrow(f"SELECT {_COLUMNS} FROM alert_rules WHERE id = $1 FOR UPDATE", rule_id)
        if current is None:
            raise NotFound("alert rule")
        params: dict[str, Any] = current["params"]
        if request.params is not None:
            try:
                params = stored_params(parse_params(current["kind"], request.params))
            except pydantic.ValidationError as exc:
                raise params_refused(exc) from None
        enabled = current["enabled"] if request.enabled is None else request.enabled
        row = await conn.fetchrow(
            f"UPDATE alert_rules SET enabled = $2, params = $3, updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
            rule_id,
            enabled,
            params,
        )
    return _rule(row)


async def delete_rule(pool: asyncpg.Pool, rule_id: UUID) -> None:
    """The rule goes; the fleet rule or the built-in default applies again."""
    deleted = await pool.fetchval("DELETE FROM alert_rules WHERE id = $1 RETURNING id", rule_id)
    if deleted is None:
        raise NotFound("alert rule")


async def effective_rules(pool: asyncpg.Pool, customer_id: UUID | None) -> list[EffectiveRule]:
    """Every kind as it applies to the customer (or, without one, to customers without rules of their own)."""
    async with pool.acquire() as conn:
        if customer_id is not None:
            await ensure_live_customer(conn, customer_id)
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM alert_rules WHERE customer_id IS NULL OR customer_id = $1", customer_id
        )
    stored = [
        StoredRule(id=r["id"], customer_id=r["customer_id"], rule=r["kind"], enabled=r["enabled"], params=r["params"])
        for r in rows
    ]
    fleet = {s.rule: s for s in stored if s.customer_id is None}
    own = {s.rule: s for s in stored if s.customer_id is not None}
    return [effective_rule(kind, own.get(kind), fleet.get(kind)) for kind in RULE_KINDS]
