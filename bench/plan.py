"""How long each part runs, per mode: ``full`` (make bench, under 15 minutes), ``quick`` (development) and ``smoke``
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
    latency_s: float  # per endpoint
    memory_first_s: float  # RSS is read this long after the load starts ("after its first minute")…
    memory_total_s: float  # …and this long after ("after a 5-minute run"); the soak fills the time between
    e2e_s: float
    e2e_per_s: float
    wrk_connections: int = 32
    keys_per_customer: int = 2
    customers: int = 4

    def describe_memory(self) -> str:
        return (
            f"{self.mode}: RSS after {self.memory_total_s:.0f} s of load ÷ after its first {self.memory_first_s:.0f} s"
        )


PLANS = {
    "full": Plan("full", 8.0, CONTEXT_SIZES_KIB, 3, 50_000, 5, 3, 15, 30, 60, 300, 30, 10),
    "quick": Plan("quick", 2.0, CONTEXT_SIZES_KIB, 1, 10_000, 3, 1, 6, 8, 15, 60, 10, 10),
    "smoke": Plan("smoke", 0.3, (1, 4, 16), 1, 500, 1, 1, 2, 2, 3, 10, 3, 5),
}
