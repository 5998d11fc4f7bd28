"""A rolling restart of the check path (``make reload``, SIGHUP to its supervisor) answers every check.

uvicorn's supervisor keeps the listening socket and, on SIGHUP, starts each replacement worker and waits until it
serves before it retires the old one (docs/operators.md, "Restarting the check path"). Under steady load the test
waits until both workers are new processes, then counts: every check answered 200, none refused or cut off.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest

from infra.local.processes import rolling_restart, worker_pids
from ingress.settings import IngressSettings
from tests.conftest import insert_customer, run_server
from tests.support.reliability import steady_load

pytestmark = pytest.mark.timeout(300)


async def test_sighup_replaces_every_worker_and_no_check_goes_unanswered(
    settings: IngressSettings, migrated: str, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    customer = await insert_customer(pg_pool, tier="pro")
    with run_server(settings, tmp_path / "server", API_WORKERS="2") as server:
        supervisor = server.proc.pid
        deadline = time.monotonic() + 60
        while len(before := worker_pids(supervisor)) < 2:
            assert time.monotonic() < deadline, "the supervisor did not start two workers"
            await asyncio.sleep(0.2)
        stop = asyncio.Event()
        load = asyncio.ensure_future(
            steady_load(server.url, customer.key, rate=20, duration_s=240, stop=stop, timeout_s=30)
        )
        try:
            await asyncio.sleep(2)
            try:
                replaced = await asyncio.to_thread(rolling_restart, supervisor, 180)  # what `make reload` does
            except TimeoutError as exc:
                raise AssertionError(f"{exc}\n{server.log()}") from None
            assert len(replaced) == 2
            assert not replaced & before
            await asyncio.sleep(2)  # the new workers serve on their own for a while
        finally:
            stop.set()
            tally = await load
    assert tally.sent > 0
    assert tally.statuses == {"200": tally.sent}, tally.answered()
