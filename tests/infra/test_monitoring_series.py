"""The guide's per-customer and per-key series: error rate by customer, requests per key, key age and rotations,
Redis memory; and the error-rate series present at zero before the first server error."""

from __future__ import annotations

import asyncpg
import httpx
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from ingress.http import metrics
from ingress.store_metrics import sample_keys, sample_redis
from tests.conftest import insert_admin_key, insert_customer
from tests.ingress.check.test_check import GUIDE_STEP4, auth


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_server_error_series_exist_before_the_first_server_error() -> None:
    for status in ("500", "503"):
        labels = {"endpoint": "/v1/check", "status": status}
        assert REGISTRY.get_sample_value("governance_http_responses_total", labels) is not None, status


async def test_checks_are_counted_per_customer_status_class_and_key(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    customer = await insert_customer(pg_pool, tier="free")
    await pg_pool.execute(
        "UPDATE customers SET rate_limit_capacity = 2, rate_limit_window_s = 3600 WHERE id = $1", customer.id
    )
    statuses = [(await client.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))).status_code for _ in "ab"]
    bad = await client.post("/v1/check", content=b"{", headers=auth(customer))  # no token left: 429 before parsing
    statuses.append(bad.status_code)
    assert statuses == [200, 200, 429]
    name = customer.name
    assert value("governance_customer_responses_total", customer=name, status_class="2xx") == 2
    assert value("governance_customer_responses_total", customer=name, status_class="4xx") == 1
    # The customer's 5xx series exists at zero: their error rate is a number from the first answer on.
    five = REGISTRY.get_sample_value("governance_customer_responses_total", {"customer": name, "status_class": "5xx"})
    assert five == 0.0
    assert value("governance_key_requests_total", customer=name, key_id=customer.key_id) == 3


async def test_an_invalid_body_counts_as_the_customers_4xx(client: httpx.AsyncClient, pg_pool: asyncpg.Pool) -> None:
    customer = await insert_customer(pg_pool, tier="pro")
    response = await client.post("/v1/check", json={"operations": "nope"}, headers=auth(customer))
    assert response.status_code == 422
    assert value("governance_customer_responses_total", customer=customer.name, status_class="4xx") == 1


async def test_key_age_and_rotations_come_from_postgresql(client: httpx.AsyncClient, pg_pool: asyncpg.Pool) -> None:
    admin = {"Authorization": f"Bearer {await insert_admin_key(pg_pool)}"}
    customer = await insert_customer(pg_pool, tier="pro")
    aged = "UPDATE api_keys SET created_at = now() - interval '10 days' WHERE key_id = $1"
    await pg_pool.execute(aged, customer.key_id)
    created = await client.post("/admin/keys", json={"customer_id": str(customer.id), "name": "second"}, headers=admin)
    assert created.status_code == 201, created.text
    await sample_keys(pg_pool)
    oldest = value("governance_key_age_seconds", customer=customer.name, which="oldest")
    newest = value("governance_key_age_seconds", customer=customer.name, which="newest")
    assert 10 * 86400 - 60 < oldest < 10 * 86400 + 600
    assert 0 <= newest < 600
    assert value("governance_key_rotations", customer=customer.name) == 0
    rotated = await client.post(f"/admin/keys/{customer.key_id}/rotate", json={}, headers=admin)
    assert rotated.status_code in {200, 201}, rotated.text
    await sample_keys(pg_pool)
    assert value("governance_key_rotations", customer=customer.name) == 1
    # the rotated-out key still works through its grace period, so it is still the oldest usable one
    assert value("governance_key_age_seconds", customer=customer.name, which="oldest") >= oldest


async def test_redis_memory_is_read_from_redis(redis_client: aioredis.Redis) -> None:
    used = await sample_redis(redis_client)
    assert used > 0
    assert metrics.REDIS_MEMORY._value.get() == used  # type: ignore[attr-defined]
