"""Rule evaluation: a subject's window state, its rules and its open alerts in, alert transitions out. Pure: the
caller passes ``now``; nothing here reads a clock, a database or settings.

Per (rule, subject) there is at most one open alert:

* the condition holds and no alert is open → ``opened``;
* it holds, an alert is open and ``renotify_s`` passed since the last notification → ``renotified``;
* it no longer holds (or the rule was switched off) and an alert is open → ``resolved``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from consumers.alerts.windows import SubjectWindow
from schemas.alerting import (
    AuthFailuresParams,
    BlockRateParams,
    HighRiskParams,
    PersonalDataParams,
    RateLimitedParams,
    RuleKind,
    RuleParams,
    VolumeSpikeParams,
)


@dataclass(frozen=True)
class Observation:
    firing: bool
    value: float
    threshold: float
    summary: str


@dataclass(frozen=True)
class OpenAlert:
    alert_id: UUID
    rule: RuleKind
    subject: str
    opened_at: datetime
    last_notified_at: datetime
    sequence: int  # sequence of the alert's last event


@dataclass(frozen=True)
class Transition:
    kind: Literal["opened", "renotified", "resolved"]
    rule: RuleKind
    subject: str
    params: RuleParams | None  # None: the rule was switched off (only ever with "resolved")
    observation: Observation
    alert: OpenAlert | None  # the open alert it changes; None for "opened"
    at: datetime


def _block_rate(p: BlockRateParams, window: SubjectWindow, now: float) -> Observation:
    c = window.totals(now, p.window_s)
    rate = 100.0 * c.blocked / c.decisions if c.decisions else 0.0
    firing = c.decisions >= p.min_volume and rate > p.threshold_percent
    return Observation(
        firing,
        round(rate, 2),
        p.threshold_percent,
        f"block rate {rate:.1f}% over the last {p.window_s} s ({c.blocked} of {c.decisions} decisions);"
        f" alerts above {p.threshold_percent:g}% from {p.min_volume} decisions",
    )


def _high_risk(p: HighRiskParams, window: SubjectWindow, now: float) -> Observation:
    c = window.totals(now, p.window_s)
    top = max(c.max_risk, 0)
    return Observation(
        c.max_risk >= p.min_risk_score,
        float(top),
        float(p.min_risk_score),
        f"highest risk score {top} over the last {p.window_s} s; alerts at {p.min_risk_score}",
    )


def _personal_data(p: PersonalDataParams, window: SubjectWindow, now: float) -> Observation:
    c = window.totals(now, p.window_s)
    return Observation(
        c.personal_data > p.max_detections,
        float(c.personal_data),
        float(p.max_detections),
        f"{c.personal_data} personal-data detections over the last {p.window_s} s; alerts above {p.max_detections}",
    )


def _volume_spike(p: VolumeSpikeParams, window: SubjectWindow, now: float) -> Observation:
    series = window.series(now, p.window_s, p.baseline_windows + 1)
    current = series[0].decisions
    baseline_total = sum(c.decisions for c in series[1:])
    baseline = baseline_total / p.baseline_windows
    limit = p.factor * baseline
    # No decision at all in the baseline: no baseline to compare with (a new customer is not a spike).
    firing = baseline_total > 0 and current >= p.min_volume and current > limit
    return Observation(
        firing,
        float(current),
        round(limit, 2),
        f"{current} decisions over the last {p.window_s} s against a baseline of {baseline:.1f} per window"
        f" ({p.baseline_windows} windows); alerts above {p.factor:g}x from {p.min_volume} decisions",
    )


def _rate_limited(p: RateLimitedParams, window: SubjectWindow, now: float) -> Observation:
    c = window.totals(now, p.window_s)
    return Observation(
        c.rate_limited > p.max_rejections,
        float(c.rate_limited),
        float(p.max_rejections),
        f"{c.rate_limited} rate-limit rejections over the last {p.window_s} s; alerts above {p.max_rejections}",
    )


def _auth_failures(p: AuthFailuresParams, window: SubjectWindow, now: float) -> Observation:
    c = window.totals(now, p.window_s)
    return Observation(
        c.auth_failures > p.max_failures,
        float(c.auth_failures),
        float(p.max_failures),
        f"{c.auth_failures} authentication failures over the last {p.window_s} s; alerts above {p.max_failures}",
    )


def observe(params: RuleParams, window: SubjectWindow, now: float) -> Observation:
    """Measure one rule over the window ending at ``now`` (seconds since the epoch)."""
    if isinstance(params, BlockRateParams):
        return _block_rate(params, window, now)
    if isinstance(params, HighRiskParams):
        return _high_risk(params, window, now)
    if isinstance(params, PersonalDataParams):
        return _personal_data(params, window, now)
    if isinstance(params, VolumeSpikeParams):
        return _volume_spike(params, window, now)
    if isinstance(params, RateLimitedParams):
        return _rate_limited(params, window, now)
    if isinstance(params, AuthFailuresParams):
        return _auth_failures(params, window, now)
    raise TypeError(f"no evaluation for {type(params).__name__}")


_SWITCHED_OFF = Observation(False, 0.0, 0.0, "the rule was switched off")


def next_transition(
    rule: RuleKind,
    subject: str,
    *,
    params: RuleParams | None,
    observation: Observation | None,
    alert: OpenAlert | None,
    now: datetime,
) -> Transition | None:
    if params is None or observation is None:  # switched off
        return None if alert is None else Transition("resolved", rule, subject, None, _SWITCHED_OFF, alert, now)
    if not observation.firing:
        return None if alert is None else Transition("resolved", rule, subject, params, observation, alert, now)
    if alert is None:
        return Transition("opened", rule, subject, params, observation, None, now)
    if (now - alert.last_notified_at).total_seconds() >= params.renotify_s:
        return Transition("renotified", rule, subject, params, observation, alert, now)
    return None


def evaluate(
    subject: str,
    rules: Mapping[RuleKind, RuleParams | None],
    window: SubjectWindow,
    open_alerts: Mapping[RuleKind, OpenAlert],
    now: datetime,
) -> list[Transition]:
    """The transitions due for ``subject`` at ``now``: at most one per rule in ``rules``."""
    epoch = now.astimezone(UTC).timestamp()
    transitions = []
    for rule, params in rules.items():
        observation = observe(params, window, epoch) if params is not None else None
        transition = next_transition(
            rule, subject, params=params, observation=observation, alert=open_alerts.get(rule), now=now
        )
        if transition is not None:
            transitions.append(transition)
    return transitions
