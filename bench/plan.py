"""How long each part runs, per mode: ``full`` (make bench, under 20 minutes), ``quick`` (development) and ``smoke``
(CI: a few seconds per part, every figure present, none of them meaningful)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.engine import CONTEXT_SIZES_KIB


@dataclass(frozen=True)
class Plan:
    mode: str
    engine_s: float  # per engine figure
    context_sizes_kib: tuple[int, ...]
    opa_runs: int
    writer_rows: int
    warmup_s: float
    r1_rounds: int
    r1_s: float  # per endpoint per round
    latency_s: float  # per side of the overhead figure
    e2e_s: float
    e2e_per_s: float
    slo_trial_s: float  # per rate tried by the SLO search
    slo_max_trials: int  # per endpoint, before refining
    slo_refine: int  # bisections after the first miss
    heavy_events: int  # stored decisions the export and the backtest read
    heavy_s: float  # per side of the heavy-reads figure
    cold_s: float  # the cold-start run…
    cold_restart_at_s: float  # …with the restart this far into it
    customers: int = 50
    keys_per_customer: int = 10
    wrk_connections: int = 32
    slo_start_check: float = 50.0
    slo_start_bare: float = 200.0
    slo_factor: float = 1.5
    slo_floor: float = 10.0  # the lowest rate the search tries
    cold_good_windows: int = 5  # recovered: this many one-second windows in a row with p99 under the target


PLANS = {
    "full": Plan("full", 8.0, CONTEXT_SIZES_KIB, 3, 50_000, 5, 3, 10, 30, 20, 10, 8, 12, 3, 100_000, 30, 40, 8),
    "quick": Plan("quick", 2.0, CONTEXT_SIZES_KIB, 1, 10_000, 3, 1, 5, 8, 8, 10, 4, 10, 1, 20_000, 10, 25, 5),
    "smoke": Plan(
        "smoke",
        0.3,
        (1, 4, 16),
        1,
        500,
        1,
        1,
        1,
        1,
        2,
        5,
        1,
        1,
        0,
        300,
        2,
        4,
        1,
        customers=2,
        keys_per_customer=3,
        cold_good_windows=1,
    ),
}
