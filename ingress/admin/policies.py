"""``/policies`` (as in the onboarding guide) and the same routes under ``/admin/policies``.

Rules are validated with ``PolicyRules``: an unknown rule or a wrong type is a 422 naming ``body.rules.<rule>``.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response

from ingress.admin.deps import AdminRoute, OffsetQuery, PoolDep, audit
from ingress.admin.tenancy import policies
from ingress.admin.tenancy.errors import parse_id
from ingress.auth.deps import require_admin
from schemas.admin import Page, Policy, PolicyCreate, PolicyReplace, PolicyUpdate, PolicyVersion

router = APIRouter(
    prefix="/policies",
    tags=["policies"],
    dependencies=[Depends(require_admin)],
    route_class=AdminRoute,
)


@router.post("", status_code=201)
async def create_policy(body: PolicyCreate, pool: PoolDep, request: Request) -> Policy:
    created = await policies.create_policy(pool, body)
    audit(request, "policy.create", customer_id=created.customer_id, policy_id=created.id)
    return created


@router.get("")
async def list_policies(
    pool: PoolDep,
    customer_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: OffsetQuery = 0,
) -> Page[Policy]:
    return await policies.list_policies(pool, customer_id=customer_id, limit=limit, offset=offset)


@router.get("/{policy_id}")
async def get_policy(policy_id: str, pool: PoolDep) -> Policy:
    return await policies.get_policy(pool, parse_id(policy_id, "policy"))


@router.put("/{policy_id}")
async def replace_policy(policy_id: str, body: PolicyReplace, pool: PoolDep, request: Request) -> Policy:
    replaced = await policies.replace_policy(pool, parse_id(policy_id, "policy"), body)
    audit(request, "policy.replace", policy_id=replaced.id, version=replaced.version)
    return replaced


@router.patch("/{policy_id}")
async def update_policy(policy_id: str, body: PolicyUpdate, pool: PoolDep, request: Request) -> Policy:
    updated = await policies.update_policy(pool, parse_id(policy_id, "policy"), body)
    audit(request, "policy.update", policy_id=updated.id, version=updated.version)
    return updated


@router.delete("/{policy_id}", status_code=204)
async def delete_policy(policy_id: str, pool: PoolDep, request: Request) -> Response:
    parsed = parse_id(policy_id, "policy")
    await policies.delete_policy(pool, parsed)
    audit(request, "policy.delete", policy_id=parsed)
    return Response(status_code=204)


@router.get("/{policy_id}/versions")
async def list_policy_versions(policy_id: str, pool: PoolDep) -> list[PolicyVersion]:
    return await policies.list_versions(pool, parse_id(policy_id, "policy"))
