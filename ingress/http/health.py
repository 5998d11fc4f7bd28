"""Liveness and readiness.

``/health`` answers as long as the process serves HTTP. ``/ready`` checks each component with a deadline and
reports status and latency per component; it is 503 while a required one is down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from ingress.http import metrics
from ingress.http.metrics_access import metrics_access
from ingress.http.responses import JsonResponse
from ingress.resources import Probe, Stores

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


async def check_components(probes: dict[str, Probe], deadline_s: float) -> dict[str, dict[str, Any]]:
    names = list(probes)
    results = await asyncio.gather(*(_probe(probes[name], deadline_s) for name in names))
    return dict(zip(names, results, strict=True))


# Components with a fallback: while one is down the service still answers checks correctly (rate limiting on
# local buckets, events spooled to disk, audit rows waiting in Kafka), so the process stays in rotation.
DEGRADABLE = {
    "redis": "in-memory rate-limit buckets",
    "kafka": "durable disk spool",
    "clickhouse": "audit lag",
    "audit": "checks unaffected; decision history answers 503 until the read side is back",
}


@router.get("/ready")
async def ready(request: Request) -> JsonResponse:
    """200 "ready" when all is up; 200 "degraded" when only components with a fallback are down (each says
    which fallback carries it); 503 "unavailable" when PostgreSQL is down."""
    resources: Stores = request.app.state.resources
    probes = {**resources.probes(), **getattr(request.app.state, "extra_probes", {})}
    components = await check_components(probes, resources.settings.ready_timeout_s)
    check = getattr(request.app.state, "check", None)
    if check is not None:
        components["redis"]["rate_limit_fallback_active"] = check.limiter.fallback_active
        # counted on disk: the relay (python -m workers) and the other ingress processes change it too
        components["kafka"]["spool_depth"] = await asyncio.to_thread(check.publisher.spool.refresh_depth)
    down = [name for name, c in components.items() if c["status"] != "up"]
    for name in down:
        if name in DEGRADABLE:
            components[name]["fallback"] = DEGRADABLE[name]
    if any(name not in DEGRADABLE for name in down):
        status, code = "unavailable", 503
    elif down:
        status, code = "degraded", 200
    else:
        status, code = "ready", 200
    return JsonResponse({"status": status, "components": components}, status_code=code)


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(metrics_access)])
async def prometheus_metrics(request: Request) -> Response:
    resources: Stores = request.app.state.resources
    if resources.pool is not None:
        size = resources.pool.get_size()
        metrics.DB_POOL_SIZE.set(size)
        metrics.DB_POOL_IN_USE.set(size - resources.pool.get_idle_size())
    check = getattr(request.app.state, "check", None)
    if check is not None:
        metrics.SPOOL_DEPTH.set(await asyncio.to_thread(check.publisher.spool.refresh_depth))
        metrics.RATE_FALLBACK.set(1 if check.limiter.fallback_active else 0)
    auth = getattr(request.app.state, "auth", None)
    if auth is not None:
        metrics.BCRYPT_CALLS.set(auth.customers.bcrypt_calls + auth.admins.bcrypt_calls)
    body, content_type = metrics.render_metrics()
    return Response(body, media_type=content_type)
