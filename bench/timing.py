"""Timing in process and the statistics every figure uses."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence


def time_per_call_us(call: Callable[[], object], *, seconds: float, rounds: int = 3) -> float:
    """Mean microseconds per call, the median of ``rounds`` rounds of about ``seconds / rounds`` each.

    The median of rounds keeps one round disturbed by another process on the machine from moving the figure.
    """
    for _ in range(20):  # warm caches and the allocator
        call()
    started = time.perf_counter()
    call()
    single = max(time.perf_counter() - started, 1e-7)
    per_round = max(seconds / rounds, single)
    calls = max(1, int(per_round / single))
    results = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            call()
        results.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(results)


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values (``nan`` when there are none)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0 or math.isnan(numerator + denominator):
        return None
    return round(numerator / denominator, 3)
