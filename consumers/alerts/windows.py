"""Sliding-window state for one subject (a customer, or ``unknown``): counts per whole second. Pure: no clock.

A window of ``W`` seconds ending at ``now`` covers the ``W`` whole seconds up to and including ``int(now)``.
Seconds are kept only while some rule may still look at them (:meth:`SubjectWindow.prune`), and only seconds
that saw an event are stored, so a quiet customer costs almost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Counts:
    decisions: int = 0
    blocked: int = 0
    personal_data: int = 0  # detections (findings), not decisions
    max_risk: int = -1  # -1: no decision
    rate_limited: int = 0
    auth_failures: int = 0

    def add(self, other: Counts) -> None:
        self.decisions += other.decisions
        self.blocked += other.blocked
        self.personal_data += other.personal_data
        self.max_risk = max(self.max_risk, other.max_risk)
        self.rate_limited += other.rate_limited
        self.auth_failures += other.auth_failures


@dataclass
class SubjectWindow:
    buckets: dict[int, Counts] = field(default_factory=dict)

    def _bucket(self, at: float) -> Counts:
        second = int(at)
        bucket = self.buckets.get(second)
        if bucket is None:
            bucket = self.buckets[second] = Counts()
        return bucket

    def add_decision(self, at: float, *, allowed: bool, risk_score: int, personal_data: int) -> None:
        bucket = self._bucket(at)
        bucket.decisions += 1
        bucket.blocked += 0 if allowed else 1
        bucket.personal_data += personal_data
        bucket.max_risk = max(bucket.max_risk, risk_score)

    def add_signal(self, at: float, *, kind: str, count: int) -> None:
        bucket = self._bucket(at)
        if kind == "rate_limited":
            bucket.rate_limited += count
        elif kind == "auth_failure":
            bucket.auth_failures += count

    def totals(self, now: float, window_s: int, *, windows_back: int = 0) -> Counts:
        """Sum over the window of ``window_s`` seconds ending at ``now``, or the one ``windows_back`` before it."""
        end = int(now) + 1 - windows_back * window_s  # exclusive
        start = end - window_s
        total = Counts()
        for second, bucket in self.buckets.items():
            if start <= second < end:
                total.add(bucket)
        return total

    def series(self, now: float, window_s: int, windows: int) -> list[Counts]:
        """``windows`` consecutive window totals, the current one first; one pass over the buckets."""
        end = int(now) + 1
        start = end - window_s * windows
        totals = [Counts() for _ in range(windows)]
        for second, bucket in self.buckets.items():
            if start <= second < end:
                totals[(end - 1 - second) // window_s].add(bucket)
        return totals

    def prune(self, now: float, keep_s: int) -> None:
        """Forget seconds no window of up to ``keep_s`` seconds ending at ``now`` can reach."""
        oldest = int(now) + 1 - keep_s
        for second in [s for s in self.buckets if s < oldest]:
            del self.buckets[second]

    @property
    def empty(self) -> bool:
        return not self.buckets
