"""/metrics is right with several uvicorn workers: prometheus-client's multiprocess mode sums every worker."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import asyncpg
import httpx

from ingress.settings import IngressSettings
from tests.conftest import insert_customer, run_server
from tests.ingress.check.test_check import GUIDE_STEP4, auth


async def test_counts_are_summed_over_workers(
    settings: IngressSettings, migrated: str, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    customer = await insert_customer(pg_pool, tier="pro")
    # one rotation in the table: every worker reads it, and the scrape must say 1, not 1 per worker
    await pg_pool.execute("UPDATE api_keys SET rotated_at = now() WHERE key_id = $1", customer.key_id)
    replacement = await insert_customer(pg_pool, tier="pro")
    await pg_pool.execute("UPDATE api_keys SET customer_id = $1 WHERE key_id = $2", customer.id, replacement.key_id)
    multiproc = tmp_path / "metrics"
    multiproc.mkdir()
    with run_server(
        settings,
        tmp_path / "server",
        API_WORKERS="2",
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        AUDIT_IN_PROCESS="false",  # the embedded ClickHouse opens in one process only
    ) as server:
        limits = httpx.Limits(max_connections=8, max_keepalive_connections=0)  # new connections spread the load
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as http:
            for _ in range(20):
                assert (await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))).status_code == 200
            # the store gauges are read on a timer (again within seconds when a busy start made a read fail)
            deadline = time.monotonic() + 30
            while not _redis_memory(text := (await http.get("/metrics")).text):
                assert time.monotonic() < deadline, "no worker read Redis's memory"
                await asyncio.sleep(0.5)
            scrapes = [(await http.get("/metrics")).text for _ in range(6)]
    pids = {path.name.split("_")[-1] for path in multiproc.glob("*.db")}
    assert len(pids) >= 2, "both workers wrote metrics"
    pattern = re.compile(rf'^governance_checks_total\{{customer="{re.escape(customer.name)}"\}} (\S+)$', re.M)
    for text in scrapes:
        match = pattern.search(text)
        assert match is not None
        assert float(match.group(1)) == 20.0
        # without a policy, gpt-4 on an unnamed provider is an external model call: blocked
        assert f'governance_decisions_blocked{{customer="{customer.name}"}} 20.0' in text
        assert f'governance_customer_responses_total{{customer="{customer.name}",status_class="2xx"}} 20.0' in text
        # gauges read from the stores by every worker: the largest, never the sum
        assert f'governance_key_rotations{{customer="{customer.name}"}} 1.0' in text
        assert 0 < _redis_memory(text) < 2**34


def _redis_memory(text: str) -> float:
    found = re.search(r"^governance_redis_memory_used_bytes (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0
