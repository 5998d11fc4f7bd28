"""Every decision we return is recorded, once: Kafka paused, Kafka killed, an ingress killed, the spool unwritable.

Scenarios 1, 2, 3 and 15 of docs/reliability.md. Each runs a Kafka and ingress processes of its own.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from ingress.settings import IngressSettings
from tests.conftest import insert_admin_key, insert_customer
from tests.support.live_server import project_launcher
from tests.support.processes import free_port, kafka_process
from tests.support.reliability import (
    CHECK,
    background,
    bearer,
    ensure_topics,
    figures,
    ingress,
    isolated_env,
    metric,
    settle,
    steady_load,
    wait_ready,
)

pytestmark = pytest.mark.slow

RATE = 20  # checks per second, from one client


async def _publish_outcomes(url: str) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        text = (await http.get("/metrics")).text
    return {
        o: metric(text, "governance_decision_publish_total", f'outcome="{o}"') for o in ("kafka", "spool", "failed")
    }


async def _spool_depth(url: str) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        return int((await http.get("/ready")).json()["components"]["kafka"]["spool_depth"])


@pytest.mark.timeout(240)
async def test_01_kafka_paused_30s_under_load_every_check_answered_none_lost_none_doubled(
    settings: IngressSettings, migrated: str, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    customer = await insert_customer(pg_pool, tier="pro")
    admin_key = await insert_admin_key(pg_pool)
    before_s, paused_s, after_s = 5, 30, 10
    with kafka_process() as kafka:
        env = isolated_env(KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap)
        await ensure_topics(kafka.bootstrap, env["DECISIONS_TOPIC"], env["DLQ_TOPIC"])
        with ingress(settings, tmp_path / "server", **env) as server:
            await wait_ready(server.url)
            peak_spool = 0
            async with background(
                steady_load(server.url, customer.key, rate=RATE, duration_s=before_s + paused_s + after_s)
            ) as load:
                await asyncio.sleep(before_s)
                kafka.pause()
                paused_at = time.monotonic()
                while time.monotonic() - paused_at < paused_s:
                    await asyncio.sleep(2)
                    peak_spool = max(peak_spool, await _spool_depth(server.url))
                kafka.resume()
                tally = await load
            outcomes = await _publish_outcomes(server.url)
            count = await settle(server.url, admin_key, customer.id, tally.event_ids, timeout=120)
            left_in_spool = await _spool_depth(server.url)
    figures(
        1,
        "Kafka paused (SIGSTOP) 30 s under load",
        load=f"{RATE}/s x {before_s + paused_s + after_s}s",
        answered=tally.answered(),
        published=f"kafka={outcomes['kafka']:.0f} spool={outcomes['spool']:.0f} failed={outcomes['failed']:.0f}",
        peak_spool=peak_spool,
        p99_ms=round(tally.percentile(99)),
        lost=count.lost,
        dup=count.dup,
        settled_s=count.settle_s,
    )
    # A 503 is allowed only once the spool is full; it holds 100,000 here, so every check is answered.
    assert tally.statuses == {"200": tally.sent}, tally.answered()
    assert outcomes["spool"] > 0, "the pause never reached the spool"
    assert left_in_spool == 0
    assert count.lost == 0, count
    assert count.dup == 0, count


@pytest.mark.timeout(240)
async def test_02_kafka_killed_and_restarted_producer_recovers_none_lost_none_doubled(
    settings: IngressSettings, migrated: str, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    customer = await insert_customer(pg_pool, tier="pro")
    admin_key = await insert_admin_key(pg_pool)
    before_s, down_s, total_s = 5, 5, 35
    with kafka_process() as kafka:
        env = isolated_env(KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap)
        await ensure_topics(kafka.bootstrap, env["DECISIONS_TOPIC"], env["DLQ_TOPIC"])
        with ingress(settings, tmp_path / "server", **env) as server:
            await wait_ready(server.url)
            async with background(steady_load(server.url, customer.key, rate=RATE, duration_s=total_s)) as load:
                await asyncio.sleep(before_s)
                await asyncio.to_thread(kafka.kill)
                killed_at = time.monotonic()
                await asyncio.sleep(down_s)
                await asyncio.to_thread(kafka.start)  # same data folder, same ports
                restarted_s = round(time.monotonic() - killed_at, 1)
                during = await _publish_outcomes(server.url)
                tally = await load
            after = await _publish_outcomes(server.url)
            count = await settle(server.url, admin_key, customer.id, tally.event_ids, timeout=120)
            left_in_spool = await _spool_depth(server.url)
    figures(
        2,
        "Kafka killed (SIGKILL) and restarted under load",
        load=f"{RATE}/s x {total_s}s",
        faults=f"SIGKILL at {before_s}s, back after {restarted_s}s",
        answered=tally.answered(),
        acked_by_kafka_after_restart=f"{after['kafka'] - during['kafka']:.0f}",
        spooled=f"{after['spool']:.0f}",
        lost=count.lost,
        dup=count.dup,
        settled_s=count.settle_s,
    )
    assert tally.statuses == {"200": tally.sent}, tally.answered()
    assert after["spool"] > 0, "the outage never reached the spool"
    # The same producer (no restart of ingress) is acknowledged by the restarted broker again.
    assert after["kafka"] > during["kafka"], "the producer did not recover by itself"
    assert left_in_spool == 0
    assert count.lost == 0, count
    assert count.dup == 0, count


def _relay_with_workers(settings: IngressSettings, spool: Path, bootstrap: str, timeout: float = 60.0) -> None:
    """``python -m workers`` (the spool relay) as ``make up`` starts it, its metrics on a free port, pointed at a
    dead ingress's spool, until the spool is empty."""
    with project_launcher(
        settings,
        spool.parent.parent,
        ["workers"],
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        SPOOL_DIR=str(spool),
        RELAY_INTERVAL_S="0.2",
    ) as relay:
        relay.start()
        deadline = time.monotonic() + timeout
        while any(spool.glob("*.event")):
            assert relay.pid("workers") is not None, "the workers process exited"
            assert time.monotonic() < deadline, "the workers did not drain the spool"
            time.sleep(0.2)


@pytest.mark.timeout(240)
async def test_03_ingress_killed_under_load_every_200_reaches_clickhouse(
    settings: IngressSettings, migrated: str, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    customer = await insert_customer(pg_pool, tier="pro")
    admin_key = await insert_admin_key(pg_pool)
    state = tmp_path / "server"
    spool = state / "spool" / "decisions"
    with kafka_process() as kafka:
        env = isolated_env(KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap)
        await ensure_topics(kafka.bootstrap, env["DECISIONS_TOPIC"], env["DLQ_TOPIC"])
        stop = asyncio.Event()
        with ingress(settings, state, **env) as doomed:
            await wait_ready(doomed.url)
            async with background(
                steady_load(doomed.url, customer.key, rate=RATE, duration_s=60, stop=stop, timeout_s=5)
            ) as load:
                await asyncio.sleep(4)
                kafka.pause()  # so the spool holds answered decisions when the process dies
                await asyncio.sleep(4)
                doomed.proc.kill()  # SIGKILL, mid-load
                doomed.proc.wait()
                stop.set()
                tally = await load
        spooled = len(list(spool.glob("*.event")))
        kafka.resume()
        relay_started = time.monotonic()
        await asyncio.to_thread(_relay_with_workers, settings, spool, kafka.bootstrap)
        relay_s = round(time.monotonic() - relay_started, 1)
        # The same state folder again: its ClickHouse, its audit group (committed offsets), its spool.
        with ingress(settings, state, **env) as restarted:
            count = await settle(restarted.url, admin_key, customer.id, tally.event_ids, timeout=90)
    figures(
        3,
        "ingress killed (SIGKILL) under load",
        load=f"{RATE}/s x {tally.seconds:.0f}s until the kill",
        faults="Kafka paused 4 s, then ingress SIGKILLed; `python -m workers` relays its spool, ingress restarted",
        answered=tally.answered(),
        spooled_at_kill=spooled,
        relayed_in_s=relay_s,
        lost=count.lost,
        dup=count.dup,
        settled_s=count.settle_s,
    )
    assert spooled > 0, "nothing was in the spool when the process died"
    assert tally.of(200) > 0
    assert count.lost == 0, count
    assert count.dup == 0, count


async def test_15_spool_unwritable_with_kafka_down_answers_503_never_200(
    settings: IngressSettings, migrated: str, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    customer = await insert_customer(pg_pool, tier="pro")
    spool = tmp_path / "spool"
    # Kafka down: nothing listens where the producer is told to connect.
    env = isolated_env(KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}", SPOOL_DIR=str(spool), SPOOL_MAX_EVENTS="8")
    with ingress(settings, tmp_path / "server", **env) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:

            async def checks(n: int) -> list[httpx.Response]:
                return [await http.post("/v1/check", json=CHECK, headers=bearer(customer.key)) for _ in range(n)]

            spooled = await checks(3)
            assert [r.status_code for r in spooled] == [200] * 3
            assert len(list(spool.glob("*.event"))) == 3
            # The spool's folder replaced by a file: the disk refuses every write (root ignores chmod).
            saved = tmp_path / "saved-spool"
            shutil.move(spool, saved)
            spool.write_text("not a folder")
            broken = await checks(10)
            spool.unlink()
            shutil.move(saved, spool)
            # Read-only is the other failing disk; only meaningful when not root.
            readonly: list[httpx.Response] = []
            if os.geteuid() != 0:
                spool.chmod(0o500)
                readonly = await checks(5)
                spool.chmod(0o700)
            recovered = await checks(2)
            full = await checks(5)  # 3 + 2 on disk, limit 8: three more fit, then 503
    failing = broken + readonly
    figures(
        15,
        "spool unwritable while Kafka is down",
        faults="Kafka unreachable; spool folder replaced by a file"
        + (", then made read-only" if readonly else " (root: chmod is not a failure)"),
        answered_while_unwritable=" ".join(f"{s}={[r.status_code for r in failing].count(s)}" for s in (200, 503)),
        retry_after=all("retry-after" in r.headers for r in failing),
        after_repair=[r.status_code for r in recovered],
        spool_full_at_8=[r.status_code for r in full],
        lost=0,
        dup="n/a",
    )
    assert [r.status_code for r in failing] == [503] * len(failing)
    assert all(r.headers.get("retry-after") for r in failing)
    assert all(r.json()["error"] == "unavailable" for r in failing)
    assert [r.status_code for r in recovered] == [200, 200]
    assert [r.status_code for r in full] == [200, 200, 200, 503, 503]
    assert len(list(spool.glob("*.event"))) == 8  # every 200 has its file; no 503 left one
