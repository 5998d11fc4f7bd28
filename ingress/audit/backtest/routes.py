"""``POST /admin/policies/{policy_id}/backtest``: what candidate rules would have decided over a time range.

Rate-limited per admin key (``BACKTEST_RATE_LIMIT_*``); the replay runs in a worker process under a time budget
(``ingress.audit.backtest.runner``), so the event loop only waits for it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from ingress.audit.backtest.runner import BacktestBusy, BacktestFailed, BacktestRunner, ReplayJob
from ingress.audit.filters import storable
from ingress.audit.routes import clickhouse_rows
from ingress.http.datetimes import IsoDatetime
from ingress.http.errors import ApiError, validation_error
from ingress.http.read_limits import AdminBacktestDep
from ingress.http.responses import JsonResponse
from schemas.policy_rules import PolicyRules

router = APIRouter(tags=["policies"])

MAX_DECISIONS = 200_000


class BacktestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: dict[str, Any] = Field(description="the candidate rules, validated like a policy's")
    # Within what the audit log can hold: a year 154 is the caller's mistake (422), not the store failing (503).
    start: Annotated[IsoDatetime | None, Field(alias="from"), AfterValidator(storable)] = None
    end: Annotated[IsoDatetime | None, Field(alias="to"), AfterValidator(storable)] = None
    # Strict JSON integers, as every admin count: `"samples": false` was read as 0.
    max_decisions: int = Field(100_000, ge=1, le=MAX_DECISIONS, strict=True)
    samples: int = Field(10, ge=0, le=100, strict=True)


def _utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _runner(request: Request) -> BacktestRunner:
    runner: BacktestRunner | None = getattr(request.app.state, "backtests", None)
    if runner is None:  # an app built without its lifespan's runner (tests of the routes alone)
        settings = request.app.state.settings
        runner = BacktestRunner(
            concurrency=settings.backtest_concurrency, time_budget_s=settings.backtest_time_budget_s
        )
        request.app.state.backtests = runner
    return runner


@router.post("/admin/policies/{policy_id}/backtest", summary="Replay stored decisions under candidate rules")
async def backtest_policy(
    policy_id: str, body: BacktestRequest, request: Request, _admin: AdminBacktestDep
) -> JsonResponse:
    try:
        PolicyRules.model_validate(body.rules)
    except ValidationError as exc:
        errors = [
            {**e, "loc": ("body", "rules", *e["loc"])} for e in exc.errors(include_url=False, include_input=False)
        ]
        raise validation_error(errors) from None
    try:
        policy_uuid = UUID(policy_id)
    except ValueError:
        raise ApiError(404, "not_found", "policy not found") from None
    pool: asyncpg.Pool = await request.app.state.resources.postgres()
    policy = await pool.fetchrow("SELECT id, customer_id, name FROM policies WHERE id = $1", policy_uuid)
    if policy is None:
        raise ApiError(404, "not_found", "policy not found")
    end = body.end or datetime.now(UTC)
    start = body.start or end - timedelta(days=7)
    runner = _runner(request)
    try:
        runner.reserve()
    except BacktestBusy as exc:
        raise ApiError(429, "rate_limited", str(exc), headers={"Retry-After": "5"}) from None
    try:
        database = request.app.state.settings.clickhouse_database
        rows = await clickhouse_rows(
            request,
            f"SELECT event FROM {database}.decisions FINAL WHERE customer_id = {{customer:UUID}}"
            " AND decided_at >= {start:DateTime64(3, 'UTC')} AND decided_at < {end:DateTime64(3, 'UTC')}"
            " ORDER BY decided_at LIMIT {limit:UInt32}",
            {"customer": policy["customer_id"], "start": _utc(start), "end": _utc(end), "limit": body.max_decisions},
        )
        # Every version of the customer's policies: the events name no others, and the replay needs no decoding
        # here to know which.
        versions = await pool.fetch(
            "SELECT v.policy_id, v.version, v.name, v.rules, v.mode FROM policy_versions v"
            " JOIN policies p ON p.id = v.policy_id WHERE p.customer_id = $1",
            policy["customer_id"],
        )
        job = ReplayJob(
            events=[row[0] for row in rows],
            versions=[(str(v["policy_id"]), v["version"], v["name"], v["rules"], v["mode"]) for v in versions],
            policy_id=str(policy["id"]),
            policy_name=policy["name"],
            candidate=body.rules,  # validated above; the worker validates it again into the same rules
            samples=body.samples,
            time_budget_s=runner.time_budget_s,
        )
        result = await runner.run(job)
    except BacktestFailed as exc:
        raise ApiError(503, "unavailable", str(exc), headers={"Retry-After": "5"}) from None
    finally:
        runner.release()
    return JsonResponse(
        {
            "policy_id": str(policy["id"]),
            "customer_id": str(policy["customer_id"]),
            "from": start.isoformat(),
            "to": end.isoformat(),
            "truncated": len(rows) >= body.max_decisions or result.time_budget_exhausted,
            "time_budget_exhausted": result.time_budget_exhausted,
            **result.report,
        }
    )
