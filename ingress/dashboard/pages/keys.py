"""A customer's API keys: list (age, last use, status), create, rotate with a grace period, revoke.

A new key is in the API's answer once. The dashboard keeps it in the session only until the page that shows it
is opened, so a reload (or the back button, as pages are not cached) no longer shows it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from ingress.dashboard.api import ApiRefusal, OperatorApi, submit
from ingress.dashboard.deps import ApiDep, FormDep, KeyRef, SessionDep
from ingress.dashboard.policy_form import field_errors
from ingress.dashboard.rendering import render
from ingress.dashboard.sessions import Session

router = APIRouter()

DEFAULT_GRACE_HOURS = 168  # the API's default: a week
MAX_GRACE_HOURS = 365 * 24


async def _keys_page(
    request: Request,
    api: OperatorApi,
    customer_id: UUID | str,
    *,
    form: dict[str, str] | None = None,
    error: ApiRefusal | None = None,
) -> Response:
    customer = await api.get(f"/admin/customers/{customer_id}")
    keys = await api.get("/admin/keys", customer_id=customer_id, limit=500)
    return render(
        request,
        "keys.html",
        {
            "customer": customer,
            "keys": keys["items"],
            "tab": "keys",
            "form": form or {},
            "errors": field_errors(error.details, ("name", "grace_period_s")) if error else {},
            "default_grace_hours": DEFAULT_GRACE_HOURS,
            "max_grace_hours": MAX_GRACE_HOURS,
        },
        status_code=error.status if error else 200,
        error=error,
    )


def _reveal(session: Session, created: dict[str, Any]) -> Response:
    session.keep_reveal(created["key_id"], created)
    return RedirectResponse(f"/dashboard/keys/{created['key_id']}/new", status_code=303)


@router.get("/customers/{customer_id}/keys")
async def list_keys(request: Request, customer_id: UUID, api: ApiDep) -> Response:
    return await _keys_page(request, api, customer_id)


@router.post("/customers/{customer_id}/keys")
async def create_key(request: Request, customer_id: UUID, api: ApiDep, form: FormDep, session: SessionDep) -> Response:
    created, refusal = await submit(
        api.post("/admin/keys", {"customer_id": str(customer_id), "name": form.get("name", "")})
    )
    if refusal:
        return await _keys_page(request, api, customer_id, form=form, error=refusal)
    return _reveal(session, created)


@router.get("/keys/{key_id}/new")
async def show_new_key(request: Request, key_id: KeyRef, api: ApiDep, session: SessionDep) -> Response:
    created = session.take_reveal(key_id)
    key = await api.get(f"/admin/keys/{key_id}")
    customer = await api.get(f"/admin/customers/{key['customer_id']}")
    return render(request, "key_created.html", {"created": created, "key": key, "customer": customer})


@router.post("/keys/{key_id}/rotate")
async def rotate_key(request: Request, key_id: KeyRef, api: ApiDep, form: FormDep, session: SessionDep) -> Response:
    key = await api.get(f"/admin/keys/{key_id}")
    raw = form.get("grace_hours", "").strip()
    grace: Any = int(float(raw) * 3600) if raw.replace(".", "", 1).isdigit() else raw or DEFAULT_GRACE_HOURS * 3600
    rotated, refusal = await submit(api.post(f"/admin/keys/{key_id}/rotate", {"grace_period_s": grace}))
    if refusal:
        return await _keys_page(request, api, key["customer_id"], error=refusal)
    return _reveal(session, rotated)


@router.get("/keys/{key_id}/revoke")
async def confirm_revoke_key(request: Request, key_id: KeyRef, api: ApiDep) -> Response:
    key = await api.get(f"/admin/keys/{key_id}")
    return render(
        request,
        "confirm.html",
        {
            "title": f"Revoke key {key['name']} ({key['key_id']})?",
            "consequences": [
                "The key stops working at once: checks made with it are refused with 401.",
                "A revoked key cannot be brought back; create or rotate to issue a new one.",
            ],
            "action": f"/dashboard/keys/{key_id}/revoke",
            "confirm_label": "Revoke key",
            "cancel_url": f"/dashboard/customers/{key['customer_id']}/keys",
        },
    )


@router.post("/keys/{key_id}/revoke")
async def revoke_key(key_id: KeyRef, api: ApiDep, session: SessionDep) -> Response:
    revoked = await api.post(f"/admin/keys/{key_id}/revoke")
    session.notify(f"Key {revoked['key_id']} revoked.")
    return RedirectResponse(f"/dashboard/customers/{revoked['customer_id']}/keys", status_code=303)
