"""The pure core of alerting: windows, rule evaluation and transitions with an injected clock; rule parameters;
the webhook backoff and signature. No services."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pydantic
import pytest

from consumers.alerts.evaluate import OpenAlert, Transition, evaluate, observe
from consumers.alerts.partitions import PartitionState
from consumers.alerts.store import build_event, event_id_for
from consumers.alerts.windows import SubjectWindow
from schemas.alerting import (
    UNKNOWN_SUBJECT,
    AlertRuleCreate,
    AuthFailuresParams,
    BlockRateParams,
    HighRiskParams,
    PersonalDataParams,
    RateLimitedParams,
    RuleBook,
    RuleKind,
    RuleParams,
    StoredRule,
    VolumeSpikeParams,
    parse_params,
)
from workers.webhooks.delivery import retry_delay
from workers.webhooks.signing import sign

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
SUBJECT = str(uuid.uuid4())


class Clock:
    """The time the evaluation is told: tests move it by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    @property
    def epoch(self) -> float:
        return self.now.timestamp()


class Alerting:
    """Drives evaluate() the way the consumer does: transitions applied to an in-memory set of open alerts."""

    def __init__(self, rules: dict[RuleKind, RuleParams | None], clock: Clock) -> None:
        self.rules = rules
        self.clock = clock
        self.window = SubjectWindow()
        self.open: dict[RuleKind, OpenAlert] = {}
        self.log: list[tuple[str, RuleKind]] = []

    def step(self) -> list[Transition]:
        transitions = evaluate(SUBJECT, self.rules, self.window, self.open, self.clock.now)
        for t in transitions:
            self.log.append((t.kind, t.rule))
            if t.kind == "opened":
                self.open[t.rule] = OpenAlert(uuid.uuid4(), t.rule, SUBJECT, t.at, t.at, 1)
            elif t.kind == "renotified":
                assert t.alert is not None
                self.open[t.rule] = OpenAlert(
                    t.alert.alert_id, t.rule, SUBJECT, t.alert.opened_at, t.at, t.alert.sequence + 1
                )
            else:
                del self.open[t.rule]
        return transitions

    def decisions(self, n: int, *, allowed: bool = True, risk: int = 10, pii: int = 0) -> None:
        for _ in range(n):
            self.window.add_decision(self.clock.epoch, allowed=allowed, risk_score=risk, personal_data=pii)


def test_window_counts_whole_seconds_and_forgets_old_ones() -> None:
    clock = Clock()
    window = SubjectWindow()
    window.add_decision(clock.epoch, allowed=False, risk_score=40, personal_data=2)
    clock.advance(9.5)
    window.add_decision(clock.epoch, allowed=True, risk_score=10, personal_data=0)
    window.add_signal(clock.epoch, kind="rate_limited", count=7)
    window.add_signal(clock.epoch, kind="auth_failure", count=3)

    last_ten = window.totals(clock.epoch, 10)
    assert (last_ten.decisions, last_ten.blocked, last_ten.personal_data, last_ten.max_risk) == (2, 1, 2, 40)
    assert (last_ten.rate_limited, last_ten.auth_failures) == (7, 3)
    assert window.totals(clock.epoch, 9).decisions == 1  # the first second is outside a 9 s window
    assert window.totals(clock.epoch, 5, windows_back=1).decisions == 1  # seconds 0-4 of the ten
    assert window.totals(clock.epoch, 5, windows_back=2).decisions == 0
    assert [c.decisions for c in window.series(clock.epoch, 5, 2)] == [1, 1]

    window.prune(clock.epoch, 5)
    assert window.totals(clock.epoch, 3600).decisions == 1
    clock.advance(60)
    window.prune(clock.epoch, 5)
    assert window.empty


def test_block_rate_opens_once_renotifies_and_resolves() -> None:
    clock = Clock()
    params = BlockRateParams(threshold_percent=50, min_volume=10, window_s=60, renotify_s=120)
    alerting = Alerting({"block_rate": params}, clock)

    alerting.decisions(9, allowed=False)
    assert alerting.step() == []  # below the minimum volume
    alerting.decisions(1, allowed=False)
    [opened] = alerting.step()
    assert opened.kind == "opened"
    assert opened.observation.value == 100.0
    assert "10 of 10 decisions" in opened.observation.summary

    for _ in range(5):  # a storm of blocks keeps one alert open, silently
        clock.advance(10)
        alerting.decisions(20, allowed=False)
        assert alerting.step() == []
    clock.advance(70)  # 120 s since the last notification; the last 60 s still block
    alerting.decisions(20, allowed=False)
    assert [t.kind for t in alerting.step()] == ["renotified"]

    clock.advance(30)
    alerting.decisions(40, allowed=True)  # 20 blocked of 60 in the window: 33%
    [resolved] = alerting.step()
    assert resolved.kind == "resolved"
    assert resolved.observation.value == pytest.approx(33.33, abs=0.01)
    assert alerting.log == [("opened", "block_rate"), ("renotified", "block_rate"), ("resolved", "block_rate")]


def test_condition_clearing_with_time_alone_resolves() -> None:
    clock = Clock()
    alerting = Alerting({"high_risk": HighRiskParams(min_risk_score=80, window_s=30)}, clock)
    alerting.decisions(1, risk=79)
    assert alerting.step() == []
    alerting.decisions(1, risk=95)
    assert [t.kind for t in alerting.step()] == ["opened"]
    clock.advance(29)
    assert alerting.step() == []
    clock.advance(1)
    assert [t.kind for t in alerting.step()] == ["resolved"]


def test_personal_data_counts_detections() -> None:
    clock = Clock()
    alerting = Alerting({"personal_data": PersonalDataParams(max_detections=5, window_s=60)}, clock)
    alerting.decisions(2, pii=2)  # 4 detections
    assert alerting.step() == []
    alerting.decisions(1, pii=2)  # 6
    [opened] = alerting.step()
    assert (opened.observation.value, opened.observation.threshold) == (6.0, 5.0)


def test_volume_spike_needs_a_baseline_and_the_minimum() -> None:
    clock = Clock()
    params = VolumeSpikeParams(factor=3, baseline_windows=4, min_volume=20, window_s=10)
    alerting = Alerting({"volume_spike": params}, clock)

    alerting.decisions(50)
    assert alerting.step() == []  # a customer with no earlier traffic has no baseline

    for _ in range(4):  # four quiet windows of 5 decisions each
        clock.advance(10)
        alerting.decisions(5)
    clock.advance(10)
    alerting.decisions(15)  # 3x the baseline is 15: not above it
    assert alerting.step() == []
    alerting.decisions(1)  # 16 > 15 but below the minimum volume of 20
    assert alerting.step() == []
    alerting.decisions(4)
    [opened] = alerting.step()
    assert opened.kind == "opened"
    assert opened.observation.value == 20.0
    assert opened.observation.threshold == 15.0


@pytest.mark.parametrize(
    ("rule", "params", "kind"),
    [
        ("rate_limited", RateLimitedParams(max_rejections=10, window_s=60), "rate_limited"),
        ("auth_failures", AuthFailuresParams(max_failures=10, window_s=60), "auth_failure"),
    ],
)
def test_signal_rules_count_refusals(rule: RuleKind, params: RuleParams, kind: str) -> None:
    clock = Clock()
    alerting = Alerting({rule: params}, clock)
    alerting.window.add_signal(clock.epoch, kind=kind, count=10)
    assert alerting.step() == []
    alerting.window.add_signal(clock.epoch, kind=kind, count=1)
    assert [t.kind for t in alerting.step()] == ["opened"]
    clock.advance(60)
    assert [t.kind for t in alerting.step()] == ["resolved"]


def test_switching_a_rule_off_resolves_its_open_alert() -> None:
    clock = Clock()
    alerting = Alerting({"high_risk": HighRiskParams(min_risk_score=50)}, clock)
    alerting.decisions(1, risk=99)
    assert [t.kind for t in alerting.step()] == ["opened"]
    alerting.rules = {"high_risk": None}
    [resolved] = alerting.step()
    assert resolved.kind == "resolved"
    assert resolved.params is None
    assert alerting.step() == []


def test_rules_book_resolves_customer_then_fleet_then_default() -> None:
    customer = str(uuid.uuid4())
    other = str(uuid.uuid4())
    book = RuleBook(
        [
            StoredRule(id=uuid.uuid4(), customer_id=None, rule="block_rate", enabled=True, params={"min_volume": 5}),
            StoredRule(
                id=uuid.uuid4(),
                customer_id=uuid.UUID(customer),
                rule="block_rate",
                enabled=True,
                params={"threshold_percent": 10},
            ),
            StoredRule(id=uuid.uuid4(), customer_id=uuid.UUID(customer), rule="high_risk", enabled=False, params={}),
            StoredRule(
                id=uuid.uuid4(),
                customer_id=None,
                rule="volume_spike",
                enabled=True,
                params={"window_s": 600, "baseline_windows": 24},
            ),
        ]
    )
    mine = book.params_for(customer, "block_rate")
    assert isinstance(mine, BlockRateParams)
    assert (mine.threshold_percent, mine.min_volume) == (10, 20)  # the customer's rule replaces the fleet's whole
    fleet = book.params_for(other, "block_rate")
    assert isinstance(fleet, BlockRateParams)
    assert (fleet.threshold_percent, fleet.min_volume) == (50, 5)
    assert book.params_for(customer, "high_risk") is None
    assert book.params_for(UNKNOWN_SUBJECT, "auth_failures") == AuthFailuresParams()
    assert book.max_span_s() == 600 * 25


def test_rule_parameters_are_validated_per_kind() -> None:
    assert parse_params("block_rate", {}).window_s == 300
    with pytest.raises(pydantic.ValidationError) as refused:
        AlertRuleCreate.model_validate({"rule": "block_rate", "params": {"threshold_percent": 150, "bogus": 1}})
    locs = {tuple(e["loc"]) for e in refused.value.errors()}
    assert locs == {("params", "threshold_percent"), ("params", "bogus")}
    with pytest.raises(pydantic.ValidationError):
        AlertRuleCreate.model_validate({"rule": "volume_spike", "params": {"window_s": 3600, "baseline_windows": 288}})
    with pytest.raises(pydantic.ValidationError):
        AlertRuleCreate.model_validate({"rule": "high_risk", "params": {"min_risk_score": "90"}})  # strict types
    created = AlertRuleCreate.model_validate({"rule": "high_risk", "params": {"min_risk_score": 70}})
    assert created.params == {"min_risk_score": 70}  # stored as written


def test_alert_event_is_built_from_a_transition() -> None:
    clock = Clock()
    alerting = Alerting({"high_risk": HighRiskParams(min_risk_score=50)}, clock)
    alerting.decisions(1, risk=99)
    [opened] = alerting.step()
    alert_id = uuid.uuid4()
    event = build_event(opened, alert_id=alert_id, sequence=1, opened_at=opened.at, params=HighRiskParams())
    assert event.event_id == event_id_for(alert_id, 1)  # the same change always has the same id
    assert (event.transition, event.status, event.severity, event.customer_id) == (
        "opened",
        "open",
        "critical",
        uuid.UUID(SUBJECT),
    )
    assert event.params["min_risk_score"] == 90
    assert observe(HighRiskParams(), alerting.window, clock.epoch).value == 99.0


def test_retry_delays_grow_exponentially_with_jitter_and_a_cap() -> None:
    lows = [retry_delay(n, initial_s=10, max_s=300, rng=lambda: 0.0) for n in range(1, 8)]
    highs = [retry_delay(n, initial_s=10, max_s=300, rng=lambda: 1.0) for n in range(1, 8)]
    assert highs == [10, 20, 40, 80, 160, 300, 300]
    assert lows == [h / 2 for h in highs]


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    header = sign("whsec_test", 1_700_000_000, b'{"a":1}')
    assert header == "t=1700000000,v1=" + (
        __import__("hmac").new(b"whsec_test", b'1700000000.{"a":1}', "sha256").hexdigest()
    )


def test_after_a_rewind_records_fetched_before_it_are_dropped_once() -> None:
    state = PartitionState("decisions", replay_until=15, live_from=30, next_offset=0, rewinding_since=100.0)
    assert state.stale(15, now=100.1)  # a batch fetched from the committed offset before the rewind
    assert state.stale(29, now=100.1)
    assert not state.stale(0, now=100.2)  # the rewound records arrive: from now on all is as usual
    assert not state.stale(15, now=100.3)
    waiting = PartitionState("decisions", replay_until=15, live_from=30, next_offset=0, rewinding_since=100.0)
    assert not waiting.stale(20, now=200.0)  # the rewound records never came (gone from the log): stop waiting
    assert not waiting.caught_up
