"""A deleted customer's keys are refused: the configuration cache never serves it as a free tier without policies
(ingress/check/config_cache.py), and the check answers 401."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest

from ingress.check.config_cache import CustomerConfigCache, CustomerGone
from ingress.check.ratelimit import Limit
from tests.conftest import SeededCustomer, insert_customer
from tests.ingress.check.test_check import GUIDE_STEP4, auth

LIMITS = {"free": Limit(100, 60), "pro": Limit(1000, 60)}


async def test_the_cache_refuses_a_deleted_or_unknown_customer(pg_pool: asyncpg.Pool) -> None:
    async def pool() -> asyncpg.Pool:
        return pg_pool

    cache = CustomerConfigCache(pool, LIMITS, ttl_s=0.0, refresh_wait_s=10.0)  # every get waits for PostgreSQL
    customer = await insert_customer(pg_pool, tier="pro")
    loaded = await cache.get(customer.id)
    assert loaded.tier == "pro"
    await pg_pool.execute("UPDATE customers SET deleted_at = now() WHERE id = $1", customer.id)
    with pytest.raises(CustomerGone):
        await cache.get(customer.id)
    with pytest.raises(CustomerGone):
        await cache.get(uuid.uuid4())
    assert customer.id not in cache._entries  # nothing left to serve from


async def test_a_deleted_customers_key_is_refused_by_the_check(
    client: httpx.AsyncClient, admin_key: str, customer: SeededCustomer
) -> None:
    assert (await client.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))).status_code == 200
    deleted = await client.delete(f"/admin/customers/{customer.id}", headers={"Authorization": f"Bearer {admin_key}"})
    assert deleted.status_code == 200, deleted.text
    refused = await client.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))
    assert refused.status_code == 401, refused.text
    body = refused.json()
    assert body["error"] == "unauthorized"
    assert body["request_id"]
