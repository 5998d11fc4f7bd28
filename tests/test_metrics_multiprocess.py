"""/metrics is right with several uvicorn workers: prometheus-client's multiprocess mode sums every worker."""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg
import httpx

from ingress.settings import IngressSettings
from tests.conftest import insert_customer, run_server
from tests.test_check import GUIDE_STEP4, auth


async def test_counts_are_summed_over_workers(
    settings: IngressSettings, migrated: str, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    customer = await insert_customer(pg_pool, tier="pro")
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
