"""Liveness and readiness.

``/health`` answers as long as the process serves HTTP. ``/ready`` checks each component with a deadline and
reports status and latency per component; it is 503 while a required one is down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request

from ingress.resources import Resources
from ingress.responses import JsonResponse

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


async def _probe(check: Callable[[], Awaitable[Any]], deadline_s: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), timeout=deadline_s)
    except Exception as exc:  # noqa: BLE001 - any failure means "down"; the type is reported
        return {
            "status": "down",
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            "error": type(exc).__name__,
        }
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def check_components(resources: Resources) -> dict[str, dict[str, Any]]:
    timeout = resources.settings.ready_timeout_s

    async def postgres() -> None:
        pool = await resources.postgres()
        await pool.fetchval("SELECT 1")

    async def redis() -> None:
        await resources.redis.ping()

    async def kafka() -> None:
        broker = await resources.connect_broker()
        if not await broker.ping(timeout=timeout):
            raise ConnectionError("broker did not answer")

    async def clickhouse() -> None:
        client = await resources.clickhouse_client()
        await asyncio.to_thread(client.command, "SELECT 1")

    names = ["postgres", "redis", "kafka", "clickhouse"]
    results = await asyncio.gather(*(_probe(fn, timeout) for fn in (postgres, redis, kafka, clickhouse)))
    return dict(zip(names, results, strict=True))


@router.get("/ready")
async def ready(request: Request) -> JsonResponse:
    resources: Resources = request.app.state.resources
    components = await check_components(resources)
    ok = all(c["status"] == "up" for c in components.values())
    return JsonResponse(
        {"status": "ready" if ok else "degraded", "components": components}, status_code=200 if ok else 503
    )
