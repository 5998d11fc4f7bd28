"""Webhook endpoints: register (the signing secret is generated here, returned once and stored sealed with
``WEBHOOK_SECRETS_KEY``), list, show, delete, and each endpoint's deliveries with every attempt.

A customer's endpoint receives that customer's alerts; an endpoint without a customer is an operator's and
receives every alert, the ``unknown`` subject's included. Deleting an endpoint cancels its pending deliveries.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg

from infra.secret_box import SecretBox
from ingress.admin.paging import Listing, Rows
from ingress.admin.tenancy.customers import ensure_live_customer
from ingress.admin.tenancy.errors import NotFound
from ingress.http.errors import ApiError
from schemas.admin import Page
from schemas.alerting import (
    WEBHOOK_SECRET_PREFIX,
    DeliveryStatus,
    Webhook,
    WebhookAttempt,
    WebhookCreate,
    WebhookCreated,
    WebhookDelivery,
)

_COLUMNS = "id, customer_id, url, description, active, created_at"
_LIVE = "deleted_at IS NULL"
_LISTING = Listing(Page[Webhook], lambda r: Webhook(**dict(r)), _COLUMNS, "created_at, id")
_DELIVERIES = Rows(
    "id, webhook_id, event_id, alert_id, transition, sequence, status, attempts, next_attempt_at,"
    " last_status_code, last_error, created_at, delivered_at",
    "created_at DESC, sequence DESC",
)


def generate_secret() -> str:
    """``whsec_`` and 256 random bits, URL-safe."""
    return WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(32)


async def create_webhook(
    pool: asyncpg.Pool, request: WebhookCreate, *, require_https: bool, box: SecretBox
) -> WebhookCreated:
    """Register an endpoint. Its secret is stored sealed (``box``) and returned in clear this once."""
    if require_https and urlsplit(request.url).scheme != "https":
        raise ApiError(
            422,
            "validation_error",
            "body.url: must be an https:// URL outside local runs",
            details=[{"field": "body.url", "message": "must be an https:// URL outside local runs", "type": "https"}],
        )
    secret = generate_secret()
    async with pool.acquire() as conn, conn.transaction():
        if request.customer_id is not None:
            await ensure_live_customer(conn, request.customer_id)
        row = await conn.fetchrow(
            f"INSERT INTO webhooks (customer_id, url, secret, description) VALUES ($1, $2, $3, $4)"
            f" RETURNING {_COLUMNS}",
            request.customer_id,
            request.url,
            box.seal(secret),
            request.description,
        )
    return WebhookCreated(**dict(row), secret=secret)


async def list_webhooks(
    pool: asyncpg.Pool, *, customer_id: UUID | None = None, limit: int = 100, offset: int = 0
) -> Page[Webhook]:
    where = f"{_LIVE} AND ($1::uuid IS NULL OR customer_id = $1)"
    return await _LISTING.fetch(pool, f"FROM webhooks WHERE {where}", (customer_id,), limit, offset)


async def get_webhook(pool: asyncpg.Pool, webhook_id: UUID) -> Webhook:
    row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM webhooks WHERE id = $1 AND {_LIVE}", webhook_id)
    if row is None:
        raise NotFound("webhook")
    return Webhook(**dict(row))


async def delete_webhook(pool: asyncpg.Pool, webhook_id: UUID) -> int:
    """Soft delete: no more deliveries; its history stays readable. Returns the pending deliveries cancelled."""
    async with pool.acquire() as conn, conn.transaction():
        deleted = await conn.fetchval(
            f"UPDATE webhooks SET deleted_at = now(), active = false WHERE id = $1 AND {_LIVE} RETURNING id",
            webhook_id,
        )
        if deleted is None:
            raise NotFound("webhook")
        cancelled: int = await conn.fetchval(
            "WITH c AS (UPDATE webhook_deliveries SET status = 'cancelled', next_attempt_at = NULL,"
            " updated_at = now() WHERE webhook_id = $1 AND status = 'pending' RETURNING 1) SELECT count(*) FROM c",
            webhook_id,
        )
    return cancelled


async def list_deliveries(
    pool: asyncpg.Pool,
    webhook_id: UUID,
    *,
    status: DeliveryStatus | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page[WebhookDelivery]:
    """Newest first, each with its attempts (oldest first). Readable after the endpoint was deleted."""
    exists = await pool.fetchval("SELECT 1 FROM webhooks WHERE id = $1", webhook_id)
    if exists is None:
        raise NotFound("webhook")
    where = "webhook_id = $1 AND ($2::text IS NULL OR status = $2)"
    source = f"FROM webhook_deliveries WHERE {where}"
    total, rows = await _DELIVERIES.fetch_rows(pool, source, (webhook_id, status), limit, offset)
    attempts = await pool.fetch(
        "SELECT delivery_id, attempt, started_at, duration_ms, status_code, error, outcome, next_attempt_at"
        " FROM webhook_attempts WHERE delivery_id = ANY($1::uuid[]) ORDER BY delivery_id, attempt",
        [r["id"] for r in rows],
    )
    by_delivery: dict[UUID, list[WebhookAttempt]] = {}
    for a in attempts:
        fields = dict(a)
        by_delivery.setdefault(fields.pop("delivery_id"), []).append(WebhookAttempt(**fields))
    items = [WebhookDelivery(**dict(r), attempt_log=by_delivery.get(r["id"], [])) for r in rows]
    return Page[WebhookDelivery](items=items, total=total, limit=limit, offset=offset)
