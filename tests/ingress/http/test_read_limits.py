"""Rate limits on every read path (per admin key and per customer key), backtests in a worker process under a
bound, and /metrics closed outside local runs (ingress/http/read_limits.py, ingress/audit/backtest/runner.py,
ingress/http/metrics_access.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from clickhouse_connect.driver.client import Client
from fastapi import FastAPI

from ingress.app import create_app
from ingress.audit.backtest.core import backtest
from ingress.audit.backtest.runner import BacktestBusy, BacktestFailed, BacktestRunner, ReplayJob, replay
from ingress.engine import PolicySnapshot
from ingress.settings import IngressSettings
from schemas.decision_event import DecisionEvent
from schemas.policy_rules import PolicyRules
from tests.conftest import SeededCustomer, insert_admin_key, insert_customer, running_apps
from tests.ingress.check.test_check import GUIDE_RULES, GUIDE_STEP4, auth
from tests.support.audit import make_event

pytestmark = pytest.mark.timeout(90)

READS = 3


@pytest.fixture
async def limited(
    settings: IngressSettings, migrated: str, clickhouse: Client, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Ingress with a read bucket of 3 per key and a backtest bucket of 1 per key."""
    monkeypatch.setenv("AUDIT_IN_PROCESS", "false")
    small = settings.model_copy(
        update={
            "read_rate_limit_capacity": READS,
            "backtest_rate_limit_capacity": 1,
            "backtest_rate_limit_window_s": 3600,
        }
    )
    async with running_apps(small) as application:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as http:
            yield application, http


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["error"] == "rate_limited"
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert "read requests" in body["message"] or "backtests" in body["message"]
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-RateLimit-Remaining"] == "0"


async def test_a_customers_own_history_is_limited_per_key_and_never_eats_its_checks(
    limited: tuple[FastAPI, httpx.AsyncClient], customer: SeededCustomer, pg_pool: asyncpg.Pool
) -> None:
    _, http = limited
    for i in range(READS):
        page = await http.get("/v1/decisions", headers=auth(customer))
        assert page.status_code == 200, page.text
        assert page.headers["X-RateLimit-Limit"] == str(READS)
        assert page.headers["X-RateLimit-Remaining"] == str(READS - 1 - i)
        assert int(page.headers["X-RateLimit-Reset"]) >= int(time.time())
    _assert_refused(await http.get("/v1/decisions", headers=auth(customer)))
    _assert_refused(await http.get("/v1/decisions", params={"format": "csv"}, headers=auth(customer)))
    # the check path has a bucket of its own
    check = await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))
    assert check.status_code == 200, check.text
    # another customer's key has a bucket of its own
    other = await insert_customer(pg_pool)
    assert (await http.get("/v1/decisions", headers=auth(other))).status_code == 200


async def test_admin_lists_history_summaries_and_exports_share_the_admin_keys_bucket(
    limited: tuple[FastAPI, httpx.AsyncClient], pg_pool: asyncpg.Pool, customer: SeededCustomer
) -> None:
    _, http = limited
    admin = _bearer(await insert_admin_key(pg_pool))
    answers = [
        await http.get("/admin/customers", headers=admin),
        await http.get("/logs", params={"customer_id": str(customer.id), "format": "ndjson"}, headers=admin),
        await http.get("/admin/analytics/summary", headers=admin),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-RateLimit-Limit"] == str(READS)
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    for path in ("/admin/customers", "/admin/keys", "/policies", "/admin/alerts", "/admin/webhooks", "/logs"):
        _assert_refused(await http.get(path, headers=admin))
    _assert_refused(await http.post("/logs", data={"customer_id": str(customer.id)}, headers=admin))
    # a second operator is not held up by the first
    other = _bearer(await insert_admin_key(pg_pool))
    assert (await http.get("/admin/customers", headers=other)).status_code == 200


async def test_an_unauthenticated_read_is_refused_before_it_costs_a_token(
    limited: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, http = limited
    for _ in range(READS + 2):
        answer = await http.get("/admin/customers", headers=_bearer("sk_admin_not_a_real_key"))
        assert answer.status_code == 401, answer.text
        assert "X-RateLimit-Limit" not in answer.headers


async def test_backtests_have_a_bucket_of_their_own_and_run_in_a_worker_process(
    limited: tuple[FastAPI, httpx.AsyncClient], pg_pool: asyncpg.Pool, customer: SeededCustomer
) -> None:
    application, http = limited
    admin = _bearer(await insert_admin_key(pg_pool))
    created = await http.post(
        "/policies", headers=admin, json={"customer_id": str(customer.id), "name": "p", "rules": GUIDE_RULES}
    )
    assert created.status_code == 201, created.text
    path = f"/admin/policies/{created.json()['id']}/backtest"
    first = await http.post(path, headers=admin, json={"rules": GUIDE_RULES})
    assert first.status_code == 200, first.text
    assert first.json()["decisions"] == 0
    assert first.json()["time_budget_exhausted"] is False
    assert first.headers["X-RateLimit-Limit"] == "1"
    _assert_refused(await http.post(path, headers=admin, json={"rules": GUIDE_RULES}))
    runner: BacktestRunner = application.state.read_side.state.backtests
    pool = runner._pool
    assert pool is not None
    workers = [process.pid for process in pool._processes.values()]
    assert workers
    assert os.getpid() not in workers


def _job(count: int, budget_s: float) -> tuple[ReplayJob, PolicySnapshot]:
    customer_id = uuid.uuid4()
    snapshot = PolicySnapshot("11111111-1111-1111-1111-111111111111", 1, "p", PolicyRules.model_validate({}), "enforce")
    events = []
    for i in range(count):
        event = make_event(customer_id, allowed=i % 2 == 0, risk=20)
        events.append(event.model_dump_json())
    job = ReplayJob(
        events=events,
        versions=[(snapshot.policy_id, snapshot.version, snapshot.name, {}, "enforce")],
        policy_id=snapshot.policy_id,
        policy_name="p",
        candidate={"max_tokens": 1},
        samples=3,
        time_budget_s=budget_s,
    )
    return job, snapshot


def test_the_worker_replays_what_the_pure_core_replays() -> None:
    job, snapshot = _job(20, 60.0)
    expected = backtest(
        (DecisionEvent.model_validate_json(raw) for raw in job.events),
        lambda pid, version: snapshot if (pid, version) == (snapshot.policy_id, 1) else None,
        policy_id=job.policy_id,
        policy_name="p",
        candidate=PolicyRules.model_validate(job.candidate),
        samples=3,
    ).as_dict()
    result = replay(job)
    assert result.report == expected
    assert result.report["decisions"] == 20
    assert result.time_budget_exhausted is False


def test_a_replay_stops_at_its_time_budget() -> None:
    job, _ = _job(50, 0.0)
    result = replay(job)
    assert result.time_budget_exhausted is True
    assert result.report["decisions"] < 50


async def test_a_second_backtest_beyond_the_concurrency_is_refused_not_queued() -> None:
    runner = BacktestRunner(concurrency=1)
    runner.reserve()
    with pytest.raises(BacktestBusy):
        runner.reserve()
    runner.release()
    runner.reserve()
    runner.release()


async def test_the_event_loop_keeps_answering_while_a_backtest_replays() -> None:
    """The invariant, not a timing: every tick of the loop during a long replay comes within a generous 2 s."""
    job, _ = _job(3000, 60.0)
    runner = BacktestRunner(concurrency=1)
    try:
        await runner.run(_job(1, 60.0)[0])  # the worker process is started
        task = asyncio.ensure_future(runner.run(job))
        worst = 0.0
        ticks = 0
        while not task.done():
            before = time.monotonic()
            await asyncio.sleep(0.01)
            worst = max(worst, time.monotonic() - before)
            ticks += 1
        result = await task
    finally:
        runner.close()
    assert result.report["decisions"] == 3000
    assert ticks > 1
    assert worst < 2.0


# --- /metrics ------------------------------------------------------------------------------------------------------


async def _metrics(app: FastAPI, *, lifespan: bool = True, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        if not lifespan:  # refused before the route reads anything the lifespan opens
            return await http.get("/metrics", headers=headers)
        async with app.router.lifespan_context(app):
            return await http.get("/metrics", headers=headers)


async def test_metrics_are_open_in_local_and_test_runs(
    settings: IngressSettings, migrated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_IN_PROCESS", "false")
    for environment in ("local", "test"):
        app = create_app(settings.model_copy(update={"environment": environment}))
        answer = await _metrics(app)
        assert answer.status_code == 200
        assert "governance_checks" in answer.text


async def test_metrics_outside_local_runs_need_the_token(
    settings: IngressSettings, migrated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_IN_PROCESS", "false")
    token = "m" * 32
    for environment in ("staging", "production"):
        closed = await _metrics(create_app(settings.model_copy(update={"environment": environment})), lifespan=False)
        assert closed.status_code == 403, environment
        assert "METRICS_TOKEN" in closed.json()["message"]
        assert closed.json()["request_id"]
        protected = create_app(settings.model_copy(update={"environment": environment, "metrics_token": token}))
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {token}"}):
            refused = await _metrics(protected, lifespan=False, **headers)
            assert refused.status_code == 401, (environment, headers)
            assert refused.json()["request_id"]
            assert "governance_checks" not in refused.text
    # a token set is required in any environment; the right one opens it
    local_with_token = create_app(settings.model_copy(update={"metrics_token": token}))
    assert (await _metrics(local_with_token, lifespan=False)).status_code == 401
    allowed = await _metrics(local_with_token, Authorization=f"Bearer {token}")
    assert allowed.status_code == 200
    assert "governance_checks" in allowed.text


def test_a_short_metrics_token_is_refused() -> None:
    with pytest.raises(ValueError, match="METRICS_TOKEN"):
        IngressSettings.model_validate({"ENVIRONMENT": "test", "METRICS_TOKEN": "short"})


async def test_interactive_docs_are_served_in_local_runs_only(
    settings: IngressSettings, migrated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_IN_PROCESS", "false")
    for environment, expected in (("test", 200), ("production", 404)):
        app = create_app(settings.model_copy(update={"environment": environment}))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
            for path in ("/docs", "/redoc"):
                assert (await http.get(path)).status_code == expected, (environment, path)
            assert (await http.get("/openapi.json")).status_code == 200


async def test_a_worker_that_dies_fails_its_backtest_and_the_next_one_gets_a_fresh_worker() -> None:
    runner = BacktestRunner(concurrency=1)
    try:
        await runner.run(_job(1, 60.0)[0])
        assert runner._pool is not None
        [pid] = [process.pid for process in runner._pool._processes.values()]
        job, _ = _job(20000, 600.0)
        task = asyncio.ensure_future(runner.run(job))
        await asyncio.sleep(0.05)
        os.kill(pid, signal.SIGKILL)  # as the out-of-memory killer would
        with pytest.raises(BacktestFailed):
            await task
        again = await runner.run(_job(5, 60.0)[0])
        assert again.report["decisions"] == 5
    finally:
        runner.close()
