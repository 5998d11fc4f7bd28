"""Customers: list, create, show, delete (after a confirmation page)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from ingress.dashboard.api import ApiRefusal, OperatorApi, submit
from ingress.dashboard.deps import ApiDep, FormDep, SessionDep
from ingress.dashboard.policy_form import field_errors
from ingress.dashboard.rendering import render

router = APIRouter()

PAGE_SIZE = 50


def _create_body(form: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {"name": form.get("name", ""), "tier": form.get("tier", "free")}
    capacity, window = form.get("rate_limit.capacity", "").strip(), form.get("rate_limit.window_s", "").strip()
    if capacity or window:
        body["rate_limit"] = {
            "capacity": int(capacity) if capacity.isdigit() else capacity,
            "window_s": int(window) if window.isdigit() else window,
        }
    return body


async def customer_names(api: OperatorApi) -> dict[str, str]:
    """Customer id → name, for pages that list rows of many customers."""
    page = await api.get("/admin/customers", limit=500)
    return {c["id"]: c["name"] for c in page.get("items", [])}


async def _list_page(
    request: Request, api: OperatorApi, *, form: dict[str, str] | None = None, error: ApiRefusal | None = None
) -> Response:
    offset = max(int(request.query_params.get("offset", "0") or 0), 0)
    page = await api.get("/admin/customers", limit=PAGE_SIZE, offset=offset, order="newest")
    return render(
        request,
        "customers.html",
        {
            "page": page,
            "offset": offset,
            "page_size": PAGE_SIZE,
            "form": form or {},
            "errors": field_errors(error.details, ("name", "tier", "rate_limit.capacity", "rate_limit.window_s"))
            if error
            else {},
        },
        status_code=error.status if error else 200,
        error=error,
    )


@router.get("/customers")
async def list_customers(request: Request, api: ApiDep) -> Response:
    return await _list_page(request, api)


@router.post("/customers")
async def create_customer(request: Request, api: ApiDep, form: FormDep, session: SessionDep) -> Response:
    created, refusal = await submit(api.post("/admin/customers", _create_body(form)))
    if refusal:
        return await _list_page(request, api, form=form, error=refusal)
    session.notify(f"Customer {created['name']} created.")
    return RedirectResponse(f"/dashboard/customers/{created['id']}", status_code=303)


@router.get("/customers/{customer_id}")
async def show_customer(request: Request, customer_id: UUID, api: ApiDep) -> Response:
    customer = await api.get(f"/admin/customers/{customer_id}")
    keys = await api.get("/admin/keys", customer_id=customer_id, limit=500)
    policies = await api.get("/policies", customer_id=customer_id, limit=500)
    return render(
        request,
        "customer.html",
        {"customer": customer, "keys": keys["items"], "policies": policies["items"], "tab": "overview"},
    )


@router.get("/customers/{customer_id}/delete")
async def confirm_delete_customer(request: Request, customer_id: UUID, api: ApiDep) -> Response:
    customer = await api.get(f"/admin/customers/{customer_id}")
    keys = await api.get("/admin/keys", customer_id=customer_id, limit=500)
    live = [k for k in keys["items"] if k["active"]]
    return render(
        request,
        "confirm.html",
        {
            "title": f"Delete customer {customer['name']}?",
            "consequences": [
                f"Its {len(live)} working API key(s) are revoked at once: its checks start failing with 401.",
                "Its policies are deactivated. Its decisions stay in the audit log.",
                "This cannot be undone from the dashboard.",
            ],
            "action": f"/dashboard/customers/{customer_id}/delete",
            "confirm_label": "Delete customer",
            "cancel_url": f"/dashboard/customers/{customer_id}",
        },
    )


@router.post("/customers/{customer_id}/delete")
async def delete_customer(customer_id: UUID, api: ApiDep, session: SessionDep) -> Response:
    deleted = await api.delete(f"/admin/customers/{customer_id}")
    session.notify(
        f"Customer deleted: {deleted['keys_revoked']} key(s) revoked, "
        f"{deleted['policies_deactivated']} policy(ies) deactivated."
    )
    return RedirectResponse("/dashboard/customers", status_code=303)
