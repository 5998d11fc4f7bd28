"""Policies: list per customer, create and edit in a form (one field per rule) or as JSON, version history with a
diff between any two versions, delete. The API validates; its messages are shown beside the fields they name."""

from __future__ import annotations

import json
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from ingress.dashboard.api import ApiRefusal, OperatorApi, submit
from ingress.dashboard.deps import ApiDep, FormDep, SessionDep
from ingress.dashboard.pages.customers import customer_names
from ingress.dashboard.policy_diff import changed, diff_versions
from ingress.dashboard.policy_form import (
    RULE_FIELDS,
    JsonInputError,
    document_from_form,
    document_from_json,
    field_errors,
    form_values,
    other_rules,
    policy_json,
)
from ingress.dashboard.rendering import render
from schemas.policy_rules import PolicyRules

router = APIRouter()

View = Literal["form", "json"]
NEW_POLICY: dict[str, Any] = {"name": "", "mode": "enforce", "active": True, "rules": {}}


def _view(request: Request) -> View:
    return "json" if request.query_params.get("view") == "json" else "form"


async def _editor(
    request: Request,
    api: OperatorApi,
    *,
    customer: dict[str, Any],
    policy: dict[str, Any] | None,
    view: View,
    values: dict[str, str] | None = None,
    json_text: str | None = None,
    errors: dict[str, str] | None = None,
    error: ApiRefusal | str | None = None,
    status_code: int = 200,
) -> Response:
    document = policy or NEW_POLICY
    versions: list[dict[str, Any]] = []
    latest_diff = None
    if policy is not None:
        versions = await api.get(f"/policies/{policy['id']}/versions")
        if len(versions) >= 2:
            latest_diff = diff_versions(versions[-2], versions[-1])
    return render(
        request,
        "policy.html",
        {
            "customer": customer,
            "policy": policy,
            "view": view,
            "values": values if values is not None else form_values(document),
            "json_text": json_text if json_text is not None else policy_json(document),
            "errors": errors or {},
            "rule_fields": RULE_FIELDS,
            "rule_names": list(PolicyRules.model_fields),
            "other_rules": other_rules(document.get("rules") or {}),
            "versions": list(reversed(versions)),
            "latest_diff": latest_diff,
            "tab": "policies",
        },
        status_code=status_code,
        error=error,
    )


def _submitted(form: dict[str, str], current_rules: dict[str, Any] | None) -> dict[str, Any]:
    if form.get("editor") == "json":
        return document_from_json(form.get("policy_json", ""))
    return document_from_form(form, current_rules)


async def _save(
    request: Request,
    api: OperatorApi,
    form: dict[str, str],
    *,
    customer: dict[str, Any],
    policy: dict[str, Any] | None,
) -> dict[str, Any] | Response:
    """The saved policy, or the editor again with what went wrong beside the fields."""
    view: View = "json" if form.get("editor") == "json" else "form"

    async def again(errors: dict[str, str], error: ApiRefusal | str, status_code: int) -> Response:
        # What the operator typed stays in the view they used.
        return await _editor(
            request,
            api,
            customer=customer,
            policy=policy,
            view=view,
            values=form if view == "form" else None,
            json_text=form.get("policy_json", "") if view == "json" else None,
            errors=errors,
            error=error,
            status_code=status_code,
        )

    try:
        document = _submitted(form, policy["rules"] if policy else None)
    except JsonInputError as exc:
        return await again({"json": str(exc)}, f"The JSON could not be read: {exc}", 400)
    if policy is None:
        call = api.post("/policies", {**document, "customer_id": customer["id"]})
    else:
        call = api.put(f"/policies/{policy['id']}", document)
    saved, refusal = await submit(call)
    if refusal:
        return await again(field_errors(refusal.details), refusal, refusal.status)
    saved_policy: dict[str, Any] = saved
    return saved_policy


@router.get("/policies")
async def all_policies(request: Request, api: ApiDep) -> Response:
    policies = await api.get("/policies", limit=500)
    names = await customer_names(api)
    return render(request, "policies.html", {"policies": policies["items"], "names": names, "customer": None})


@router.get("/customers/{customer_id}/policies")
async def customer_policies(request: Request, customer_id: UUID, api: ApiDep) -> Response:
    customer = await api.get(f"/admin/customers/{customer_id}")
    policies = await api.get("/policies", customer_id=customer_id, limit=500)
    return render(
        request, "policies.html", {"policies": policies["items"], "customer": customer, "names": {}, "tab": "policies"}
    )


@router.get("/customers/{customer_id}/policies/new")
async def new_policy(request: Request, customer_id: UUID, api: ApiDep) -> Response:
    customer = await api.get(f"/admin/customers/{customer_id}")
    return await _editor(request, api, customer=customer, policy=None, view=_view(request))


@router.post("/customers/{customer_id}/policies/new")
async def create_policy(
    request: Request, customer_id: UUID, api: ApiDep, form: FormDep, session: SessionDep
) -> Response:
    customer = await api.get(f"/admin/customers/{customer_id}")
    saved = await _save(request, api, form, customer=customer, policy=None)
    if isinstance(saved, Response):
        return saved
    session.notify(f"Policy {saved['name']} created: version {saved['version']}.")
    return RedirectResponse(f"/dashboard/policies/{saved['id']}", status_code=303)


@router.get("/policies/{policy_id}")
async def edit_policy(request: Request, policy_id: UUID, api: ApiDep) -> Response:
    policy = await api.get(f"/policies/{policy_id}")
    customer = await api.get(f"/admin/customers/{policy['customer_id']}")
    return await _editor(request, api, customer=customer, policy=policy, view=_view(request))


@router.post("/policies/{policy_id}")
async def update_policy(request: Request, policy_id: UUID, api: ApiDep, form: FormDep, session: SessionDep) -> Response:
    policy = await api.get(f"/policies/{policy_id}")
    customer = await api.get(f"/admin/customers/{policy['customer_id']}")
    saved = await _save(request, api, form, customer=customer, policy=policy)
    if isinstance(saved, Response):
        return saved
    if saved["version"] == policy["version"]:
        session.notify(f"Nothing changed: {saved['name']} stays at version {saved['version']}.")
    else:
        session.notify(f"Policy {saved['name']} saved: version {saved['version']}.")
    return RedirectResponse(f"/dashboard/policies/{policy_id}", status_code=303)


@router.get("/policies/{policy_id}/diff")
async def policy_diff(request: Request, policy_id: UUID, api: ApiDep) -> Response:
    policy = await api.get(f"/policies/{policy_id}")
    customer = await api.get(f"/admin/customers/{policy['customer_id']}")
    versions = await api.get(f"/policies/{policy_id}/versions")
    by_number = {v["version"]: v for v in versions}
    newest = versions[-1]["version"]

    def chosen(name: str, default: int) -> int:
        raw = request.query_params.get(name, "")
        return int(raw) if raw.isdigit() and int(raw) in by_number else default

    to_version = chosen("to", newest)
    from_version = chosen("from", max(to_version - 1, versions[0]["version"]))
    lines = diff_versions(by_number[from_version], by_number[to_version])
    return render(
        request,
        "policy_diff.html",
        {
            "policy": policy,
            "customer": customer,
            "versions": versions,
            "from_version": by_number[from_version],
            "to_version": by_number[to_version],
            "lines": lines,
            "changed": changed(lines),
            "tab": "policies",
        },
    )


@router.get("/policies/{policy_id}/delete")
async def confirm_delete_policy(request: Request, policy_id: UUID, api: ApiDep) -> Response:
    policy = await api.get(f"/policies/{policy_id}")
    return render(
        request,
        "confirm.html",
        {
            "title": f"Delete policy {policy['name']}?",
            "consequences": [
                "The policy stops applying to the customer's checks at once.",
                "Its version history stays readable, and decisions keep naming the version that decided them.",
            ],
            "action": f"/dashboard/policies/{policy_id}/delete",
            "confirm_label": "Delete policy",
            "cancel_url": f"/dashboard/policies/{policy_id}",
        },
    )


@router.post("/policies/{policy_id}/delete")
async def delete_policy(policy_id: UUID, api: ApiDep, session: SessionDep) -> Response:
    policy = await api.get(f"/policies/{policy_id}")
    await api.delete(f"/policies/{policy_id}")
    session.notify(f"Policy {policy['name']} deleted.")
    return RedirectResponse(f"/dashboard/customers/{policy['customer_id']}/policies", status_code=303)


def _backtest_defaults(policy: dict[str, Any]) -> dict[str, str]:
    return {"rules": json.dumps(policy["rules"], indent=2, sort_keys=True), "from": "", "to": ""}


@router.get("/policies/{policy_id}/backtest")
async def backtest_form(request: Request, policy_id: UUID, api: ApiDep) -> Response:
    policy = await api.get(f"/policies/{policy_id}")
    customer = await api.get(f"/admin/customers/{policy['customer_id']}")
    return render(
        request,
        "backtest.html",
        {
            "policy": policy,
            "customer": customer,
            "values": _backtest_defaults(policy),
            "report": None,
            "tab": "policies",
        },
    )


@router.post("/policies/{policy_id}/backtest")
async def backtest_run(request: Request, policy_id: UUID, api: ApiDep, form: FormDep) -> Response:
    """Replay the customer's recorded decisions under the candidate rules (the API does the work)."""
    policy = await api.get(f"/policies/{policy_id}")
    customer = await api.get(f"/admin/customers/{policy['customer_id']}")
    values = {"rules": form.get("rules", ""), "from": form.get("from", ""), "to": form.get("to", "")}
    context: dict[str, Any] = {
        "policy": policy,
        "customer": customer,
        "values": values,
        "report": None,
        "tab": "policies",
    }
    try:
        rules = json.loads(values["rules"])
    except ValueError as exc:
        context["error"] = f"Candidate rules: not valid JSON ({exc})"
        return render(request, "backtest.html", context, status_code=422)
    body: dict[str, Any] = {"rules": rules}
    for name in ("from", "to"):
        if values[name].strip():
            body[name] = values[name].strip()
    report, refusal = await submit(api.post(f"/admin/policies/{policy_id}/backtest", body))
    if refusal is not None:
        context["error"] = refusal
        context["error_details"] = refusal.details
        return render(request, "backtest.html", context, status_code=refusal.status)
    context["report"] = report
    return render(request, "backtest.html", context)
