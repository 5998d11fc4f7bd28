"""Liveness, readiness and the JSON error shape."""

from __future__ import annotations

import httpx
from clickhouse_connect.driver.client import Client

from ingress.app import create_app
from ingress.settings import IngressSettings


async def test_health_is_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"].startswith("req_")


async def test_ready_reports_all_four_components_up(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    body = response.json()
    assert response.status_code == 200, body
    assert set(body["components"]) == {"postgres", "redis", "kafka", "clickhouse"}
    for name, component in body["components"].items():
        assert component["status"] == "up", name
        assert component["latency_ms"] >= 0


async def _ready_with(settings: IngressSettings, **changes: str) -> httpx.Response:
    app = create_app(settings.model_copy(update=changes))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.get("/ready")


async def test_ready_is_degraded_naming_the_fallback_when_redis_is_down(
    settings: IngressSettings, migrated: str, clickhouse: Client
) -> None:
    response = await _ready_with(settings, redis_url="redis://127.0.0.1:1/0")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "degraded"
    assert body["components"]["redis"]["status"] == "down"
    assert body["components"]["redis"]["fallback"] == "in-memory rate-limit buckets"
    assert body["components"]["postgres"]["status"] == "up"


async def test_ready_is_503_when_postgres_is_down(settings: IngressSettings, clickhouse: Client) -> None:
    response = await _ready_with(settings, database_url="postgresql://governance:governance@127.0.0.1:1/x")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["components"]["postgres"]["status"] == "down"


async def test_unknown_route_is_json_with_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/route")
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "not_found"
    assert body["request_id"] == response.headers["x-request-id"]
