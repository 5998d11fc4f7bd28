"""The landing page: how many customers, the last 24 hours at a glance, open alerts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ingress.dashboard.api import attempt, items_of
from ingress.dashboard.deps import ApiDep
from ingress.dashboard.rendering import render

router = APIRouter()


@router.get("")
async def home(request: Request, api: ApiDep) -> Response:
    customers = await api.get("/admin/customers", limit=1)
    summary = await attempt(api.get("/admin/analytics/summary", interval="hour"))
    alerts = await attempt(api.get("/admin/alerts", status="open"))
    open_alerts = [a for a in items_of(alerts.value) if a.get("status", "open") == "open"] if alerts.value else []
    return render(
        request,
        "home.html",
        {"customer_total": customers.get("total", 0), "summary": summary, "alerts": alerts, "open_alerts": open_alerts},
    )
