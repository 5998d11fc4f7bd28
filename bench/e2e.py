"""End to end: from a check's answer to its row being queryable through the analytics API.

Probe checks of a customer of their own go out at a steady pace; one poller reads that customer's decisions
(``GET /v1/decisions``) every ``poll_s``. A probe's delay runs from its answer to the completion of the first poll
that returned its row, so it is an upper bound, late by at most one poll.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.timing import percentile


async def visibility_delays(
    http: httpx.AsyncClient, key: str, body: dict[str, Any], *, seconds: float, per_s: float, poll_s: float = 0.05
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    since = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    answered: dict[str, float] = {}
    visible: dict[str, float] = {}
    errors = 0
    probing = True

    async def probe() -> None:
        nonlocal errors, probing
        interval = 1.0 / per_s
        started = time.perf_counter()
        sent = 0
        while time.perf_counter() - started < seconds:
            response = await http.post("/v1/check", json=body, headers=headers)
            if response.status_code == 200:
                answered[response.json()["event_id"]] = time.perf_counter()
            else:
                errors += 1
            sent += 1
            await asyncio.sleep(max(0.0, started + sent * interval - time.perf_counter()))
        probing = False

    async def poll() -> None:
        deadline: float | None = None
        while True:
            response = await http.get("/v1/decisions", params={"from": since, "limit": 1000}, headers=headers)
            now = time.perf_counter()
            if response.status_code == 200:
                for item in response.json()["items"]:
                    visible.setdefault(item["event_id"], now)
            if not probing:
                deadline = deadline or now + 10.0
                if set(answered) <= set(visible) or now > deadline:
                    return
            await asyncio.sleep(poll_s)

    await asyncio.gather(probe(), poll())
    delays = sorted(visible[e] - answered[e] for e in answered if e in visible)
    return {
        "samples": len(delays),
        "never_visible": sum(1 for e in answered if e not in visible),
        "errors": errors,
        "poll_s": poll_s,
        "p50_s": round(percentile(delays, 0.50), 3) if delays else None,
        "p99_s": round(percentile(delays, 0.99), 3) if delays else None,
        "max_s": round(delays[-1], 3) if delays else None,
    }
