"""Liveness, readiness and the JSON error shape."""

from __future__ import annotations

import httpx
from clickhouse_connect.driver.client import Client
from fastapi import FastAPI

from ingress.app import create_app
from ingress.settings import IngressSettings
from tests.support.processes import free_port


async def test_health_is_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"].startswith("req_")


async def test_ready_reports_all_four_components_up(client: httpx.AsyncClient) -> None:
    """The check path's components: its stores, its producer, and the read side it forwards history to."""
    response = await client.get("/ready")
    body = response.json()
    assert response.status_code == 200, body
    assert set(body["components"]) == {"postgres", "redis", "kafka", "audit"}
    for name, component in body["components"].items():
        assert component["status"] == "up", name
        assert component["latency_ms"] >= 0


async def test_the_read_side_reports_its_clickhouse(audit_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=audit_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        body = (await http.get("/ready")).json()
    assert set(body["components"]) == {"postgres", "redis", "clickhouse"}
    assert all(component["status"] == "up" for component in body["components"].values()), body


async def test_a_read_side_that_is_down_degrades_ready_and_refuses_history_with_503(
    settings: IngressSettings, migrated: str, admin_key: str
) -> None:
    """Nothing listens where the read side should be: checks go on, /ready says degraded, history is a 503."""
    app = create_app(settings.model_copy(update={"audit_api_url_override": f"http://127.0.0.1:{free_port()}"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            ready = await http.get("/ready")
            logs = await http.get("/logs", headers={"Authorization": f"Bearer {admin_key}"})
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["components"]["audit"]["status"] == "down"
    assert logs.status_code == 503
    assert logs.headers["retry-after"] == "2"
    assert logs.json()["request_id"] == logs.headers["x-request-id"]


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
