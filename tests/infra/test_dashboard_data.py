"""Every panel of docs/grafana-dashboard.json shows data on a running stack.

A real ingress (with the audit writer on its embedded ClickHouse), a consumers process and a workers process run
on the test's own topics; a Prometheus of the test's own (Debian's ``prometheus``) scrapes all three every second.
After some traffic (allowed and blocked checks, a rate-limited one, a refused key), every query of every panel is
evaluated as Grafana would (its variables replaced) and must return at least one number.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from ingress.settings import IngressSettings
from tests.conftest import insert_customer, run_server
from tests.ingress.check.test_check import GUIDE_RULES, GUIDE_STEP4, add_policy, auth
from tests.support.prometheus_server import prometheus_server, sample
from tests.support.roles import (
    Topics,
    audit_target,
    ingress_target,
    metric_of,
    run_role,
    topics as topics,  # noqa: PLC0414 - the fixture
    wait_for_metric,
    wait_ready,
)

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

# What Grafana puts in place of its variables: a rate window of a few scrapes, the time range, all customers.
VARIABLES = {"$__rate_interval": "1m", "$__range": "5m", "$customer": ".*"}


def concrete(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def panel_targets() -> list[tuple[str, str, str]]:
    board: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["refId"], target["expr"])
        for panel in board["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def numbers(result: list[dict[str, Any]]) -> list[float]:
    found = []
    for series in result:
        value = float(series["value"][1])
        if math.isfinite(value):
            found.append(value)
    return found


async def test_every_panel_returns_data_from_the_running_stack(
    settings: IngressSettings, migrated: str, pg_pool: asyncpg.Pool, topics: Topics, tmp_path: Path
) -> None:
    customer = await insert_customer(pg_pool, tier="pro")
    await add_policy(pg_pool, customer.id, GUIDE_RULES, "Allow Internal Data Only")
    limited = await insert_customer(pg_pool, tier="free")
    await pg_pool.execute(
        "UPDATE customers SET rate_limit_capacity = 1, rate_limit_window_s = 3600 WHERE id = $1", limited.id
    )
    common = {**topics.env, "AUDIT_GROUP_ID": f"test-dashboard-audit-{uuid.uuid4().hex[:8]}"}
    with (
        run_role(
            settings,
            "consumers",
            tmp_path / "consumers",
            "alerts",
            CONSUMER_LAG_INTERVAL_S="1",
            ALERTS_GROUP_ID=f"test-dashboard-alerts-{uuid.uuid4().hex[:8]}",
            **common,
        ) as consumers,
        run_role(settings, "workers", tmp_path / "workers", SPOOL_DIR=str(tmp_path / "spool"), **common) as workers,
        run_server(settings, tmp_path / "ingress", AUDIT_FLUSH_INTERVAL_S="0.3", **common) as ingress,
        prometheus_server(
            {
                "ingress": [ingress_target(ingress)],
                "ingress-audit": [audit_target(ingress)],
                "consumers": [consumers.target],
                "workers": [workers.target],
            },
            rules=(),
        ) as prometheus,
    ):
        await wait_ready(ingress.url, "kafka")
        prometheus.wait_for_targets()
        async with httpx.AsyncClient(base_url=ingress.url, timeout=30) as http:
            personal = {**GUIDE_STEP4, "context": {"user_id": "user_123", "email": "jane.doe@example.com"}}
            for round_ in range(3):
                for _ in range(4):
                    assert (await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))).status_code == 200
                assert (await http.post("/v1/check", json=personal, headers=auth(customer))).json()["allowed"] is False
                answered = (await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(limited))).status_code
                assert answered == (200 if round_ == 0 else 429)
                refused = await http.post("/v1/check", json=GUIDE_STEP4, headers={"Authorization": "Bearer sk_live_x"})
                assert refused.status_code == 401
                await asyncio.sleep(1.5)  # spread over several scrapes, as traffic is
        # The audit writer wrote them, and the lag monitor saw its group catch up.
        wait_for_metric(
            lambda: metric_of(ingress.audit_url, "governance_audit_rows_written_total"),
            at_least=16,
            what="rows written",
        )
        group = common["AUDIT_GROUP_ID"]
        wait_for_metric(
            lambda: 1.0 if sample(consumers.metrics(), "governance_consumer_lag", group=group) is not None else None,
            at_least=1,
            what="the audit group's lag measured",
        )
        await asyncio.sleep(3)  # a few more scrapes after the last batch

        empty = []
        for title, ref, expr in panel_targets():
            query = concrete(expr)
            if not numbers(prometheus.query(query)):
                empty.append(f"{title} ({ref}): {query}")
        assert not empty, "panels without data:\n" + "\n".join(empty)
