"""Large checks are analysed off the event loop, in a process of their own.

Detection is linear, but a 1 MiB prompt still costs a scan of a million characters (hundreds of milliseconds on
the worst shapes), and the scan holds the GIL: on the event loop, or on a thread beside it, it would delay every
other request of the process. So a request whose body is small (every check the guide shows, and the ordinary
prompt) is analysed inline, where that costs a few milliseconds at worst, and a larger one goes to one worker
process per ingress process. Large checks queue behind each other there, at most ``max_waiting`` of them (then
429: a tenant sending large checks faster than one core scans them waits, or is refused, alone); the other
checks of the process never wait for them, and the worker runs at a lower CPU priority, so that on a busy machine
their CPU goes to everyone else first. The worker is started on the first large check, not before.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Final

from ingress.engine import analyze_request
from schemas.check import CheckRequest
from schemas.decision_event import OperationSummary, PersonalDataFinding

INLINE_BYTES: Final = 8 * 1024
"""A body up to this size, in ASCII, is analysed on the event loop: at most a few milliseconds on any shape."""
INLINE_BYTES_UNICODE: Final = 1024
"""The same for a body that is not ASCII: normalisation can lengthen it up to 18 times."""

Features = tuple[tuple[OperationSummary, ...], list[PersonalDataFinding]]


WORKER_NICENESS: Final = 10
"""The worker runs at a lower priority: when the cores are busy, the checks of every other tenant go first."""


def _yield_the_cpu() -> None:
    os.nice(WORKER_NICENESS)


class LaneFull(Exception):
    """More large checks are waiting than the lane holds."""


def inline(raw: bytes) -> bool:
    """Whether a check with this body is analysed on the event loop."""
    return len(raw) <= (INLINE_BYTES if raw.isascii() else INLINE_BYTES_UNICODE)


class ScanLane:
    """One worker process for the analysis of large checks, and a bounded queue in front of it."""

    def __init__(self, max_waiting: int = 16) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._max_waiting = max_waiting
        self._waiting = 0

    async def analyze(self, raw: bytes, body: CheckRequest) -> Features:
        """The request's features: inline when small, in the worker process otherwise."""
        if inline(raw):
            return analyze_request(body)
        if self._waiting >= self._max_waiting:
            raise LaneFull
        self._waiting += 1
        try:
            if self._pool is None:
                # spawn: a fork of a process with threads and an event loop is not safe.
                self._pool = ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_yield_the_cpu
                )
            return await asyncio.get_running_loop().run_in_executor(self._pool, analyze_request, body)
        finally:
            self._waiting -= 1

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
