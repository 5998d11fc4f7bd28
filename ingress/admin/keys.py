"""``/admin/keys``: issue, list, show, rotate and revoke customers' API keys.

A key is named in the path by its ``id`` (UUID) or its public ``key_id`` (``keyid_…``). The whole key is in the
response of create and rotate only.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from ingress.admin.deps import AdminRoute, BcryptRoundsDep, OffsetQuery, PoolDep, audit, forget_cached_keys
from ingress.admin.tenancy import keys
from ingress.auth.deps import require_admin
from schemas.admin import ApiKey, KeyCreate, KeyCreated, KeyRotate, Page

router = APIRouter(
    prefix="/admin/keys",
    tags=["admin: keys"],
    dependencies=[Depends(require_admin)],
    route_class=AdminRoute,
)


@router.post("", status_code=201)
async def create_key(body: KeyCreate, pool: PoolDep, rounds: BcryptRoundsDep, request: Request) -> KeyCreated:
    created = await keys.create_key(pool, body, rounds=rounds)
    audit(request, "key.create", customer_id=created.customer_id, key_id=created.key_id)
    return created


@router.get("")
async def list_keys(
    pool: PoolDep,
    customer_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: OffsetQuery = 0,
) -> Page[ApiKey]:
    return await keys.list_keys(pool, customer_id=customer_id, limit=limit, offset=offset)


@router.get("/{key_ref}")
async def get_key(key_ref: str, pool: PoolDep) -> ApiKey:
    return await keys.get_key(pool, key_ref)


@router.post("/{key_ref}/rotate", status_code=201)
async def rotate_key(
    key_ref: str, pool: PoolDep, rounds: BcryptRoundsDep, request: Request, body: KeyRotate | None = None
) -> KeyCreated:
    rotated = await keys.rotate_key(pool, key_ref, body or KeyRotate(), rounds=rounds)
    if rotated.replaces_key_id:
        forget_cached_keys(request, rotated.replaces_key_id)
    audit(request, "key.rotate", key_id=rotated.replaces_key_id, new_key_id=rotated.key_id)
    return rotated


@router.post("/{key_ref}/revoke")
async def revoke_key(key_ref: str, pool: PoolDep, request: Request) -> ApiKey:
    revoked = await keys.revoke_key(pool, key_ref)
    forget_cached_keys(request, revoked.key_id)
    audit(request, "key.revoke", key_id=revoked.key_id)
    return revoked
