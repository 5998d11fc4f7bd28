"""Properties of the decision: exact replay from recorded features, bounded and monotonic scores."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st

from ingress.engine import (
    Decision,
    PolicySnapshot,
    decide,
    decide_from_features,
    detect_personal_data,
    summarize_operations,
)
from schemas.check import CheckRequest
from schemas.decision_event import DecisionEvent, OperationSummary, PersonalDataFinding
from tests.unit.engine_calls import event_of
from tests.unit.strategies import policy_lists, requests

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def record(decision: Decision) -> DecisionEvent:
    """The event ingress publishes, through JSON as a consumer or a backtest reads it."""
    return DecisionEvent.model_validate_json(event_of(decision).model_dump_json())


@PROPERTY_SETTINGS
@given(requests, policy_lists())
def test_a_recorded_decision_replays_exactly(payload: dict[str, Any], policies: list[PolicySnapshot]) -> None:
    request = CheckRequest.model_validate(payload)
    decision = decide(request, policies)
    assert decision.operations == summarize_operations(request)
    assert decision == decide_from_features(decision.operations, decision.personal_data, policies)
    event = record(decision)
    replayed = decide_from_features(event.operations, event.personal_data, policies)
    assert replayed == decision
    assert (event.allowed, event.risk_score, event.threshold, event.reason) == (
        replayed.allowed,
        replayed.risk_score,
        replayed.threshold,
        replayed.reason,
    )


@PROPERTY_SETTINGS
@given(requests)
def test_context_findings_are_those_of_the_detector(payload: dict[str, Any]) -> None:
    request = CheckRequest.model_validate(payload)
    decision = decide(request, ())
    in_context = [finding for finding in decision.personal_data if finding.path.startswith("context")]
    assert in_context == detect_personal_data(request.context)


@PROPERTY_SETTINGS
@given(requests, policy_lists())
def test_the_decision_is_consistent(payload: dict[str, Any], policies: list[PolicySnapshot]) -> None:
    decision = decide(CheckRequest.model_validate(payload), policies)
    assert 0 <= decision.risk_score <= 100
    assert 0 <= decision.threshold <= 100
    assert all(0 <= outcome.risk_score <= 100 for outcome in decision.shadow)
    assert decision.allowed == (not decision.violations and decision.risk_score < decision.threshold)
    assert (decision.reason == "Within policy limits") == decision.allowed
    assert sum(factor.points for factor in decision.factors) >= decision.risk_score
    assert min(100, sum(factor.points for factor in decision.factors)) == decision.risk_score
    enforced = [policy for policy in policies if policy.mode == "enforce"]
    assert {violation.policy_id for violation in decision.violations} <= {policy.policy_id for policy in enforced}
    assert [outcome.policy_id for outcome in decision.shadow] == [p.policy_id for p in policies if p.mode == "shadow"]


def added_factor(
    kind: str, operations: tuple[OperationSummary, ...], findings: tuple[PersonalDataFinding, ...]
) -> tuple[tuple[OperationSummary, ...], tuple[PersonalDataFinding, ...]]:
    index = len(operations)
    if kind == "personal_data":
        return operations, (*findings, PersonalDataFinding(category="email", path="context.added"))
    extra = {
        "external_model_call": OperationSummary(index=index, type="llm_call", model="unlisted-model", external=True),
        "large_dataset": OperationSummary(index=index, type="data_access", dataset="d", rows=10**12, bytes=10**15),
        "unknown_operation": OperationSummary(index=index, type="mystery", known_type=False),
    }[kind]
    return (*operations, extra), findings


FACTORS = st.sampled_from(["personal_data", "external_model_call", "large_dataset", "unknown_operation"])


@PROPERTY_SETTINGS
@given(requests, policy_lists(), FACTORS)
def test_adding_a_factor_never_lowers_the_score_nor_unblocks(
    payload: dict[str, Any], policies: list[PolicySnapshot], kind: str
) -> None:
    before = decide(CheckRequest.model_validate(payload), policies)
    after = decide_from_features(*added_factor(kind, before.operations, before.personal_data), policies)
    assert after.risk_score >= before.risk_score
    assert not (before.allowed is False and after.allowed is True)
    for outcome_before, outcome_after in zip(before.shadow, after.shadow, strict=True):
        assert outcome_after.risk_score >= outcome_before.risk_score


@PROPERTY_SETTINGS
@given(requests, FACTORS)
def test_without_policies_a_new_factor_adds_its_default_weight(payload: dict[str, Any], kind: str) -> None:
    before = decide(CheckRequest.model_validate(payload), ())
    if kind in {factor.name for factor in before.factors}:
        return
    after = decide_from_features(*added_factor(kind, before.operations, before.personal_data), ())
    weight = {"personal_data": 70, "external_model_call": 50, "large_dataset": 30, "unknown_operation": 20}[kind]
    assert after.risk_score == min(100, before.risk_score + weight)
