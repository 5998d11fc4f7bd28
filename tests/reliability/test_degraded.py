"""Degrade, don't fall over: Redis restarted, PostgreSQL paused, a key revoked across processes.

Scenarios 7, 8 and 9 of docs/reliability.md. The Redis and the PostgreSQL harmed here are the test's own.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from infra.migrate import migrate_postgres
from infra.postgres import build_postgres_pool
from ingress.settings import IngressSettings
from tests.conftest import insert_admin_key, insert_customer
from tests.support.processes import postgres_process, redis_process
from tests.support.reliability import (
    CHECK,
    background,
    bearer,
    figures,
    ingress,
    isolated_env,
    metric,
    steady_load,
    wait_ready,
)


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_07_redis_restarted_under_load_no_5xx_fallback_engaged_and_recorded(
    settings: IngressSettings, migrated: str, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    customer = await insert_customer(pg_pool, tier="free")
    capacity, window_s, rate, total_s = 50, 10, 20, 30
    before_s, down_s = 8, 8
    with redis_process() as redis:
        env = isolated_env(
            REDIS_URL=redis.url, RATE_LIMIT_FREE_CAPACITY=str(capacity), RATE_LIMIT_FREE_WINDOW_S=str(window_s)
        )
        with ingress(settings, tmp_path / "server", **env) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
                async with background(steady_load(server.url, customer.key, rate=rate, duration_s=total_s)) as load:
                    await asyncio.sleep(before_s)
                    redis.stop()  # SIGKILL; it comes back empty (no persistence), as a restarted cache does
                    await asyncio.sleep(2)
                    ready_down = (await http.get("/ready")).json()
                    fallback_metric = metric((await http.get("/metrics")).text, "governance_ratelimit_fallback_active")
                    await asyncio.sleep(down_s - 2)
                    await asyncio.to_thread(redis.start)
                    tally = await load
                await asyncio.sleep(2.5)  # past the breaker's open interval: the next request probes Redis
                await http.post("/v1/check", json=CHECK, headers=bearer(customer.key))
                ready_after = (await http.get("/ready")).json()
            log = server.log()
    allowed = tally.of(200)
    # What one bucket allows over the run: full at the start, refilled at capacity/window per second.
    ceiling = capacity + round(tally.seconds * capacity / window_s)
    figures(
        7,
        "Redis restarted (SIGKILL, started again empty) under load",
        load=f"{rate}/s x {total_s}s on one key, limit {capacity}/{window_s}s",
        faults=f"Redis down {before_s}s..{before_s + down_s}s",
        answered=tally.answered(),
        fallback_seen=f"/ready={ready_down['components']['redis'].get('rate_limit_fallback_active')} "
        f"metric={fallback_metric:.0f} log={'falls back to in-memory buckets' in log}",
        allowed_vs_ceiling=f"{allowed} vs {ceiling} (+{allowed - ceiling}, {allowed / ceiling:.2f}x)",
        lost="n/a",
        dup="n/a",
    )
    assert set(tally.statuses) <= {"200", "429"}, tally.answered()
    assert ready_down["status"] == "degraded"
    assert ready_down["components"]["redis"]["rate_limit_fallback_active"] is True
    assert fallback_metric == 1
    assert "falls back to in-memory buckets" in log
    assert ready_after["components"]["redis"]["rate_limit_fallback_active"] is False
    # One process: the local bucket starts full once, and the restarted (empty) Redis once more.
    assert allowed <= ceiling + 2 * capacity


async def _statuses(http: httpx.AsyncClient, key: str, n: int) -> list[tuple[int, float]]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        response = await http.post("/v1/check", json=CHECK, headers=bearer(key))
        out.append((response.status_code, (time.perf_counter() - started) * 1000))
    return out


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_08_postgres_paused_cached_keys_keep_working_uncached_get_503_never_200(
    settings: IngressSettings, tmp_path: Path
) -> None:
    paused_s, rate = 15, 10
    with postgres_process() as pg:
        await migrate_postgres(pg.url)
        pool = await build_postgres_pool(pg.url, min_size=1, max_size=2)
        try:
            warm = await insert_customer(pool, tier="pro")
            cold = await insert_customer(pool, tier="pro")
        finally:
            await pool.close()
        # A short customer-config TTL, so the pause outlasts it: the cached copy must keep serving past it.
        env = isolated_env(DATABASE_URL=pg.url, CUSTOMER_CONFIG_TTL_S="3")
        with ingress(settings, tmp_path / "server", **env) as server:
            await wait_ready(server.url, "postgres")
            async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
                assert [s for s, _ in await _statuses(http, warm.key, 3)] == [200] * 3
                pg.pause()
                paused_at = time.monotonic()
                try:
                    async with background(
                        steady_load(server.url, warm.key, rate=rate, duration_s=paused_s, timeout_s=15)
                    ) as load:
                        await asyncio.sleep(1)
                        uncached = await _statuses(http, cold.key, 5)
                        ready = await http.get("/ready")
                        tally = await load
                finally:
                    pg.resume()
                resumed_at = time.monotonic()
                recovered_in = None
                while time.monotonic() - resumed_at < 20:
                    if (await http.post("/v1/check", json=CHECK, headers=bearer(cold.key))).status_code == 200:
                        recovered_in = round(time.monotonic() - resumed_at, 1)
                        break
                    await asyncio.sleep(0.2)
    figures(
        8,
        "PostgreSQL paused (SIGSTOP of the test's own cluster)",
        load=f"{rate}/s x {paused_s}s on a cached key while paused",
        faults=f"every PostgreSQL process stopped {round(resumed_at - paused_at)}s; CUSTOMER_CONFIG_TTL_S=3",
        answered_cached=tally.answered(),
        cached_p50_p99_ms=f"{tally.percentile(50):.0f}/{tally.percentile(99):.0f}",
        answered_uncached=" ".join(str(s) for s, _ in uncached),
        uncached_max_ms=round(max(ms for _, ms in uncached)),
        ready_status=ready.status_code,
        uncached_200_after_resume_s=recovered_in,
        lost="n/a",
        dup="n/a",
    )
    assert tally.statuses == {"200": tally.sent}, tally.answered()
    assert [s for s, _ in uncached] == [503] * len(uncached)
    assert ready.status_code == 503
    assert recovered_in is not None


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_09_revoked_key_refused_on_every_process(
    settings: IngressSettings, migrated: str, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    admin_key = await insert_admin_key(pg_pool)
    customers = [await insert_customer(pg_pool, tier="pro") for _ in range(3)]
    env = isolated_env()
    delays: list[float] = []
    after_first_401: list[int] = []
    with ingress(settings, tmp_path / "a", **env) as a, ingress(settings, tmp_path / "b", **env) as b:
        async with (
            httpx.AsyncClient(base_url=a.url, timeout=5) as http_a,
            httpx.AsyncClient(base_url=b.url, timeout=5) as http_b,
        ):
            for customer in customers:
                for http in (http_a, http_b):  # cached on both processes first
                    assert (await http.post("/v1/check", json=CHECK, headers=bearer(customer.key))).status_code == 200

                async def refused_after(http: httpx.AsyncClient, since: float, key: str) -> float:
                    statuses = []
                    while time.monotonic() - since < 15:  # bounded; the delay is a figure, not a limit
                        statuses.append((await http.post("/v1/check", json=CHECK, headers=bearer(key))).status_code)
                        if statuses[-1] == 401:
                            elapsed = time.monotonic() - since
                            later = [
                                (await http.post("/v1/check", json=CHECK, headers=bearer(key))).status_code
                                for _ in range(3)
                            ]
                            after_first_401.extend(later)
                            return elapsed
                        await asyncio.sleep(0.02)
                    return float("inf")

                since = time.monotonic()
                revoked = await http_a.post(f"/admin/keys/{customer.key_id}/revoke", headers=bearer(admin_key))
                assert revoked.status_code == 200, revoked.text
                delays += await asyncio.gather(
                    refused_after(http_a, since, customer.key), refused_after(http_b, since, customer.key)
                )
    figures(
        9,
        "key revoked, two ingress processes on one database",
        load="polling each process every 20 ms",
        faults="POST /admin/keys/{id}/revoke on process A; 3 keys",
        refused_within_ms=[round(d * 1000) for d in delays],
        answers_after_first_401=sorted(set(after_first_401)),
        lost="n/a",
        dup="n/a",
    )
    assert all(delay != float("inf") for delay in delays), delays  # refused on both processes
    assert set(after_first_401) == {401}
