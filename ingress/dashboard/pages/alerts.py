"""Alerts: the open ones and the most recent, and how webhook deliveries are going. Shown as "not available"
while the API has no alerting routes."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from starlette.responses import Response

from ingress.dashboard.api import Outcome, attempt, items_of
from ingress.dashboard.deps import ApiDep
from ingress.dashboard.pages.customers import customer_names
from ingress.dashboard.rendering import render

router = APIRouter()

RECENT = 50
DELIVERIES_PER_WEBHOOK = 10


@router.get("/alerts")
async def alerts(request: Request, api: ApiDep) -> Response:
    names = await customer_names(api)
    open_alerts = await attempt(api.get("/admin/alerts", status="open", limit=RECENT))
    recent = await attempt(api.get("/admin/alerts", limit=RECENT))
    webhooks = await attempt(api.get("/admin/webhooks"))
    deliveries: dict[str, Outcome] = {}
    for hook in items_of(webhooks.value):
        deliveries[str(hook["id"])] = await attempt(
            api.get(f"/admin/webhooks/{hook['id']}/deliveries", limit=DELIVERIES_PER_WEBHOOK)
        )
    open_items: list[dict[str, Any]] = [a for a in items_of(open_alerts.value) if a.get("status", "open") == "open"]
    return render(
        request,
        "alerts.html",
        {
            "names": names,
            "open_alerts": open_alerts,
            "open_items": open_items,
            "recent": recent,
            "recent_items": items_of(recent.value),
            "webhooks": webhooks,
            "webhook_items": items_of(webhooks.value),
            "deliveries": {hook_id: items_of(outcome.value) for hook_id, outcome in deliveries.items()},
            "delivery_failures": {hook_id: o.failure for hook_id, o in deliveries.items() if o.failure},
        },
    )


@router.get("/alerts/{alert_id}")
async def show_alert(request: Request, alert_id: UUID, api: ApiDep) -> Response:
    alert = await api.get(f"/admin/alerts/{alert_id}")
    names = await customer_names(api)
    return render(request, "alert.html", {"alert": alert, "names": names})
