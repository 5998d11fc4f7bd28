"""The check path alone in its process: under check load, with an analyst exporting every row and a backtest
replaying 100 000 stored events, the check-path process (``python -m ingress``) holds no ClickHouse, is no member
of any consumer group, and does none of that work; the audit read side (``python -m ingress.audit``) does it.

The processes are inspected from outside: ``/proc/<pid>/maps`` (the embedded ClickHouse is a shared object that
opening it maps), ``/proc/<pid>/fd`` (its data folder), the broker's consumer-group members (their client ids),
and the children each process has while the backtest replays (the replay runs in a worker process of its own).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from ingress.settings import IngressSettings
from tests.conftest import PROJECT_ROOT, insert_admin_key, insert_customer, run_server
from tests.ingress.check.test_check import GUIDE_RULES, GUIDE_STEP4, auth

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

STORED = 100_000


def maps_chdb(pid: int) -> bool:
    return "chdb" in Path(f"/proc/{pid}/maps").read_text()


def open_under(pid: int, folder: Path) -> list[str]:
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(folder)):
            found.append(target)
    return found


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found.update(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
    return found


async def group_member_client_ids(bootstrap: str) -> dict[str, set[str]]:
    """Every consumer group the broker knows, with its members' client ids (described one group at a time)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        found: dict[str, set[str]] = {}
        for group, _protocol in await admin.list_consumer_groups():
            for response in await admin.describe_consumer_groups([group]):
                for described in response.groups:  # (error, group, state, protocol type, protocol, members)
                    found[group] = {str(member[1]) for member in described[5]}
        return found
    finally:
        await admin.close()


async def test_export_and_backtest_run_in_the_read_side_not_in_the_check_path(
    settings: IngressSettings, migrated: str, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    analyst = await insert_customer(pg_pool, tier="pro")
    caller = await insert_customer(pg_pool, tier="pro")
    admin = {"Authorization": f"Bearer {await insert_admin_key(pg_pool)}"}
    state = tmp_path / "stack"
    # 100 000 decisions of the analysed customer, stored before the read side opens its ClickHouse
    seed = [sys.executable, "-m", "tests.support.seed_decisions", f"chdb://{state / 'clickhouse'}"]
    await asyncio.to_thread(
        subprocess.run, [*seed, str(analyst.id), str(STORED)], check=True, cwd=PROJECT_ROOT, timeout=300
    )
    with run_server(settings, state, RATE_LIMIT_PRO_CAPACITY="100000", READ_RATE_LIMIT_CAPACITY="100000") as server:
        assert server.audit is not None
        check_pid, read_pid = server.proc.pid, server.audit.pid
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
            created = await http.post(
                "/policies", headers=admin, json={"customer_id": str(analyst.id), "name": "p", "rules": GUIDE_RULES}
            )
            assert created.status_code == 201, created.text + server.log()[-4000:]
            statuses: list[int] = []
            stop = asyncio.Event()

            async def checks() -> None:
                while not stop.is_set():
                    statuses.append((await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(caller))).status_code)
                    await asyncio.sleep(0.02)

            async def export() -> int:
                exported, cursor = 0, None
                while True:
                    params = {"customer_id": str(analyst.id), "limit": "1000", "format": "ndjson"}
                    if cursor:
                        params["cursor"] = cursor
                    page = await http.get("/logs", params=params, headers=admin)
                    assert page.status_code == 200, page.text
                    exported += len(page.text.splitlines())
                    cursor = page.headers.get("x-next-cursor")
                    if not cursor:
                        return exported

            seen_children: dict[str, set[int]] = {"check": set(), "read": set()}

            async def watch_children() -> None:
                while not stop.is_set():
                    seen_children["check"] |= children(check_pid)
                    seen_children["read"] |= children(read_pid)
                    await asyncio.sleep(0.05)

            check_children_before = children(check_pid)
            read_children_before = children(read_pid)
            load = asyncio.ensure_future(checks())
            watcher = asyncio.ensure_future(watch_children())
            try:
                backtest = http.post(
                    f"/admin/policies/{created.json()['id']}/backtest",
                    headers=admin,
                    json={"rules": GUIDE_RULES, "max_decisions": STORED, "samples": 0},
                )
                replayed, exported = await asyncio.gather(backtest, export())
            finally:
                stop.set()
                await asyncio.gather(load, watcher)

            assert replayed.status_code == 200, replayed.text
            assert replayed.json()["decisions"] == STORED
            assert exported == STORED
            assert statuses
            assert set(statuses) == {200}, sorted(set(statuses))
            # the replay ran in a worker of the read side; the check path started no process for it
            assert seen_children["read"] - read_children_before, "the backtest replayed in a worker of the read side"
            assert seen_children["check"] <= check_children_before | seen_children["check"] - (seen_children["read"])
            assert not (seen_children["check"] - check_children_before), seen_children
            # the check path never opened the embedded ClickHouse; the read side holds it
            assert not maps_chdb(check_pid)
            assert not open_under(check_pid, state / "clickhouse")
            assert maps_chdb(read_pid)
            assert open_under(read_pid, state / "clickhouse")
            # the read side yields the cores: it runs at a lower CPU priority than the check path (AUDIT_NICE)
            lowered = min(19, os.getpriority(os.PRIO_PROCESS, check_pid) + settings.audit_nice)
            assert os.getpriority(os.PRIO_PROCESS, read_pid) >= lowered
            # no consumer group has a member from the check path (its Kafka clients are named governance-ingress);
            # the read side's audit writer is a member of its group
            members = await group_member_client_ids(settings.kafka_bootstrap_servers)
            everyone = {client_id for ids in members.values() for client_id in ids}
            assert not any(client_id.startswith("governance-ingress") for client_id in everyone), members
            assert members.get(server.env["AUDIT_GROUP_ID"]) == {"governance-audit"}, members
