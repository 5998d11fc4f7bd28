"""Backtests replay in a worker process, never on the event loop, with a bound on their work.

A backtest decodes and replays up to ``MAX_DECISIONS`` stored events through the engine: seconds of CPU. On the
event loop (or in a thread, holding the GIL) that would stall every check this process serves. So the replay runs
in a process pool of its own (``spawn``: a fork of a process with running threads and an open embedded ClickHouse is
not safe; this module imports only the engine and the schemas, so a worker starts quickly), at most
``concurrency`` at a time per ingress process (another one is refused rather than queued with its events in
memory), and each stops after ``time_budget_s`` of replay, answering with what it replayed and
``time_budget_exhausted: true``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any, Literal

from ingress.audit.backtest.core import backtest
from ingress.engine import PolicySnapshot
from schemas.decision_event import DecisionEvent
from schemas.policy_rules import PolicyRules

# (policy_id, version, name, rules, mode) as stored in policy_versions
VersionRow = tuple[str, int, str, Any, Literal["enforce", "shadow"]]


@dataclass(frozen=True)
class ReplayJob:
    """Everything a replay needs, as plain data (it crosses a process boundary)."""

    events: Sequence[str]  # DecisionEvent JSON, oldest first
    versions: Sequence[VersionRow]
    policy_id: str
    policy_name: str
    candidate: dict[str, Any]
    samples: int
    time_budget_s: float


@dataclass(frozen=True)
class ReplayResult:
    report: dict[str, Any]
    time_budget_exhausted: bool


def replay(job: ReplayJob) -> ReplayResult:
    """Run in the worker process: decode, replay until the events or the time budget run out."""
    deadline = time.monotonic() + job.time_budget_s
    snapshots = {
        (policy_id, version): PolicySnapshot(policy_id, version, name, PolicyRules.model_validate(rules), mode)
        for policy_id, version, name, rules, mode in job.versions
    }
    exhausted = False

    def events() -> Iterator[DecisionEvent]:
        nonlocal exhausted
        for raw in job.events:
            if time.monotonic() > deadline:
                exhausted = True
                return
            yield DecisionEvent.model_validate_json(raw)

    report = backtest(
        events(),
        lambda pid, version: snapshots.get((pid, version)),
        policy_id=job.policy_id,
        policy_name=job.policy_name,
        candidate=PolicyRules.model_validate(job.candidate),
        samples=job.samples,
    )
    return ReplayResult(report.as_dict(), exhausted)


class BacktestBusy(Exception):
    """Every replay slot of this process is taken (the route answers 429)."""


class BacktestFailed(Exception):
    """The worker process died during the replay (the route answers 503)."""


class BacktestRunner:
    """The process pool, started on first use and shut down with the app."""

    def __init__(self, *, concurrency: int = 1, time_budget_s: float = 60.0) -> None:
        self.concurrency = concurrency
        self.time_budget_s = time_budget_s
        self._pool: ProcessPoolExecutor | None = None
        self._running = 0

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.concurrency, mp_context=get_context("spawn"))
        return self._pool

    def reserve(self) -> None:
        """Claim a slot before fetching the events, or ``BacktestBusy`` when every slot is taken."""
        if self._running >= self.concurrency:
            raise BacktestBusy(f"{self.concurrency} backtest(s) already running in this process; retry shortly")
        self._running += 1

    def release(self) -> None:
        self._running = max(0, self._running - 1)

    async def run(self, job: ReplayJob) -> ReplayResult:
        """Replay ``job`` in the pool (the caller holds a slot from ``reserve``). A worker that died (killed, out of
        memory) breaks the pool: it is dropped, so the next backtest starts a fresh one, and this one raises
        ``BacktestFailed``."""
        try:
            result: ReplayResult = await asyncio.get_running_loop().run_in_executor(self._executor(), replay, job)
        except BrokenProcessPool:
            self.close()
            raise BacktestFailed("the backtest worker stopped; retry shortly") from None
        return result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
