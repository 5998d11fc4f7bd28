"""The audit log viewer: decisions from ``/logs`` filtered by customer, time range, decision and minimum risk,
paged by the API's cursor, and one decision's detail with its factors and violations."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from starlette.responses import Response

from ingress.dashboard.api import ApiRefusal, attempt, items_of
from ingress.dashboard.deps import ApiDep
from ingress.dashboard.pages.customers import customer_names
from ingress.dashboard.policy_form import field_errors
from ingress.dashboard.rendering import render

router = APIRouter()

PAGE_SIZE = 50
FILTERS = ("customer_id", "from", "to", "decision", "min_risk")


def _filters(request: Request) -> dict[str, str]:
    return {name: request.query_params.get(name, "").strip() for name in FILTERS}


def page_link(filters: dict[str, str], cursor: str | None = None) -> str:
    query = {k: v for k, v in filters.items() if v}
    if cursor:
        query["cursor"] = cursor
    return "/dashboard/logs" + (f"?{urlencode(query)}" if query else "")


@router.get("/logs")
async def list_decisions(request: Request, api: ApiDep) -> Response:
    filters = _filters(request)
    cursor = request.query_params.get("cursor") or None
    names = await customer_names(api)
    result = await attempt(api.get("/logs", **filters, cursor=cursor, limit=PAGE_SIZE))
    body: dict[str, Any] = result.value or {}
    failure = result.failure
    next_cursor = body.get("next_cursor")
    return render(
        request,
        "logs.html",
        {
            "filters": filters,
            "names": names,
            "items": items_of(body),
            "loaded": result.failure is None,
            "paged": cursor is not None,
            "first_link": page_link(filters),
            "next_link": page_link(filters, next_cursor) if next_cursor else None,
            "errors": field_errors(failure.details, FILTERS) if isinstance(failure, ApiRefusal) else {},
        },
        status_code=failure.status if failure else 200,
        error=failure,
    )


@router.get("/logs/{event_id}")
async def show_decision(request: Request, event_id: UUID, api: ApiDep) -> Response:
    request_id = request.query_params.get("request_id", "")
    customer_id = request.query_params.get("customer_id", "")
    found: dict[str, Any] | None = None
    if request_id:
        body = await api.get("/logs", request_id=request_id, customer_id=customer_id, limit=100)
        found = next((item for item in items_of(body) if item.get("event_id") == str(event_id)), None)
    if found is None:
        return render(
            request,
            "decision.html",
            {"decision": None, "event_id": event_id},
            status_code=404,
            error="Decision not found in the audit log. A decision reaches the log a few seconds after the check; "
            "open it again from the audit log list.",
        )
    names = await customer_names(api)
    return render(request, "decision.html", {"decision": found, "customer_name": names.get(found["customer_id"])})
