"""``/admin/alert-rules``, ``/admin/alerts`` and ``/admin/webhooks``. Every route needs an admin key.

Routes only adapt HTTP to the data functions beside them, which the ``govern alerts`` CLI shares.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response

from infra.secret_box import SecretBox
from ingress.admin.alerting import alerts, rules, webhooks
from ingress.admin.deps import MAX_OFFSET, AdminRoute, PoolDep, audit
from ingress.admin.tenancy.errors import parse_id
from ingress.auth.deps import require_admin
from ingress.http.datetimes import IsoDatetime
from schemas.admin import Page
from schemas.alerting import (
    Alert,
    AlertDetail,
    AlertRule,
    AlertRuleCreate,
    AlertRuleUpdate,
    AlertStatus,
    DeliveryStatus,
    EffectiveRule,
    RuleKind,
    Webhook,
    WebhookCreate,
    WebhookCreated,
    WebhookDelivery,
)

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip")]


def _admin_router(prefix: str, tag: str) -> APIRouter:
    return APIRouter(prefix=prefix, tags=[tag], dependencies=[Depends(require_admin)], route_class=AdminRoute)


# --- alert rules -----------------------------------------------------------------------------------------------

rules_router = _admin_router("/admin/alert-rules", "admin: alerting")


@rules_router.post("", status_code=201)
async def create_alert_rule(body: AlertRuleCreate, pool: PoolDep, request: Request) -> AlertRule:
    created = await rules.create_rule(pool, body)
    audit(request, "alert_rule.create", rule_id=created.id, customer_id=created.customer_id, rule=created.rule)
    return created


@rules_router.get("")
async def list_alert_rules(
    *,
    pool: PoolDep,
    customer_id: UUID | None = None,
    rule: RuleKind | None = None,
    fleet: Annotated[bool, Query(description="only fleet-wide rules")] = False,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[AlertRule]:
    return await rules.list_rules(pool, customer_id=customer_id, fleet=fleet, rule=rule, limit=limit, offset=offset)


@rules_router.get("/effective")
async def effective_alert_rules(pool: PoolDep, customer_id: UUID | None = None) -> list[EffectiveRule]:
    return await rules.effective_rules(pool, customer_id)


@rules_router.get("/{rule_id}")
async def get_alert_rule(rule_id: str, pool: PoolDep) -> AlertRule:
    return await rules.get_rule(pool, parse_id(rule_id, "alert rule"))


@rules_router.patch("/{rule_id}")
async def update_alert_rule(rule_id: str, body: AlertRuleUpdate, pool: PoolDep, request: Request) -> AlertRule:
    updated = await rules.update_rule(pool, parse_id(rule_id, "alert rule"), body)
    audit(request, "alert_rule.update", rule_id=updated.id, fields=",".join(sorted(body.model_fields_set)))
    return updated


@rules_router.delete("/{rule_id}", status_code=204)
async def delete_alert_rule(rule_id: str, pool: PoolDep, request: Request) -> Response:
    parsed = parse_id(rule_id, "alert rule")
    await rules.delete_rule(pool, parsed)
    audit(request, "alert_rule.delete", rule_id=parsed)
    return Response(status_code=204)


# --- alerts ----------------------------------------------------------------------------------------------------

alerts_router = _admin_router("/admin/alerts", "admin: alerting")


@alerts_router.get("")
async def list_alerts(
    *,
    pool: PoolDep,
    customer_id: UUID | None = None,
    subject: Annotated[
        str | None,
        Query(
            pattern=r"^([0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}|unknown)$",
            description="a customer id, or 'unknown'",
        ),
    ] = None,
    status: AlertStatus | None = None,
    rule: RuleKind | None = None,
    since: Annotated[IsoDatetime | None, Query(description="open at any moment since then (ISO 8601)")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[Alert]:
    return await alerts.list_alerts(
        pool,
        customer_id=customer_id,
        subject=subject,
        status=status,
        rule=rule,
        since=since,
        limit=limit,
        offset=offset,
    )


@alerts_router.get("/{alert_id}")
async def get_alert(alert_id: str, pool: PoolDep) -> AlertDetail:
    return await alerts.get_alert(pool, parse_id(alert_id, "alert"))


# --- webhooks --------------------------------------------------------------------------------------------------

webhooks_router = _admin_router("/admin/webhooks", "admin: alerting")


@webhooks_router.post("", status_code=201)
async def create_webhook(body: WebhookCreate, pool: PoolDep, request: Request) -> WebhookCreated:
    settings = request.app.state.settings
    require_https = settings.environment in {"staging", "production"}
    box = SecretBox.from_settings(settings)
    created = await webhooks.create_webhook(pool, body, require_https=require_https, box=box)
    audit(request, "webhook.create", webhook_id=created.id, customer_id=created.customer_id)
    return created


@webhooks_router.get("")
async def list_webhooks(
    pool: PoolDep, customer_id: UUID | None = None, limit: Limit = 100, offset: Offset = 0
) -> Page[Webhook]:
    return await webhooks.list_webhooks(pool, customer_id=customer_id, limit=limit, offset=offset)


@webhooks_router.get("/{webhook_id}")
async def get_webhook(webhook_id: str, pool: PoolDep) -> Webhook:
    return await webhooks.get_webhook(pool, parse_id(webhook_id, "webhook"))


@webhooks_router.delete("/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: str, pool: PoolDep, request: Request) -> Response:
    parsed = parse_id(webhook_id, "webhook")
    cancelled = await webhooks.delete_webhook(pool, parsed)
    audit(request, "webhook.delete", webhook_id=parsed, deliveries_cancelled=cancelled)
    return Response(status_code=204)


@webhooks_router.get("/{webhook_id}/deliveries")
async def list_webhook_deliveries(
    webhook_id: str,
    pool: PoolDep,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> Page[WebhookDelivery]:
    return await webhooks.list_deliveries(
        pool, parse_id(webhook_id, "webhook"), status=status, limit=limit, offset=offset
    )
