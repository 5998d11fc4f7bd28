"""``/admin/customers``: create, list, show, update and delete customers."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from ingress.admin.deps import AdminRoute, OffsetQuery, PoolDep, audit, forget_cached_keys
from ingress.admin.tenancy import customers
from ingress.admin.tenancy.errors import parse_id
from ingress.auth.deps import require_admin
from schemas.admin import Customer, CustomerCreate, CustomerDeleted, CustomerUpdate, Page

router = APIRouter(
    prefix="/admin/customers",
    tags=["admin: customers"],
    dependencies=[Depends(require_admin)],
    route_class=AdminRoute,
)


@router.post("", status_code=201)
async def create_customer(body: CustomerCreate, pool: PoolDep, request: Request) -> Customer:
    created = await customers.create_customer(pool, body)
    audit(request, "customer.create", customer_id=created.id)
    return created


@router.get("")
async def list_customers(
    pool: PoolDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: OffsetQuery = 0,
    order: Annotated[Literal["oldest", "newest"], Query(description="creation order")] = "oldest",
) -> Page[Customer]:
    return await customers.list_customers(pool, limit=limit, offset=offset, newest_first=order == "newest")


@router.get("/{customer_id}")
async def get_customer(customer_id: str, pool: PoolDep) -> Customer:
    return await customers.get_customer(pool, parse_id(customer_id, "customer"))


@router.patch("/{customer_id}")
async def update_customer(customer_id: str, body: CustomerUpdate, pool: PoolDep, request: Request) -> Customer:
    updated = await customers.update_customer(pool, parse_id(customer_id, "customer"), body)
    audit(request, "customer.update", customer_id=updated.id, fields=",".join(sorted(body.model_fields_set)))
    return updated


@router.delete("/{customer_id}")
async def delete_customer(customer_id: str, pool: PoolDep, request: Request) -> CustomerDeleted:
    deleted = await customers.delete_customer(pool, parse_id(customer_id, "customer"))
    forget_cached_keys(request)
    audit(request, "customer.delete", customer_id=deleted.id, keys_revoked=deleted.keys_revoked)
    return deleted
