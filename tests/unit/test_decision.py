"""The decision engine: the guide's outcomes, each factor and rule, several policies, shadow mode, reasons."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from ingress.engine import Decision, PolicySnapshot, decide, decide_from_features, summarize_operations
from schemas.check import CheckRequest
from schemas.decision_event import DecisionEvent, PolicyRef
from schemas.policy_rules import PolicyRules

GUIDE_RULES = {
    "max_external_calls": 5,
    "block_personal_data": True,
    "allowed_models": ["gpt-4", "claude-3"],
    "max_tokens": 10000,
}


def policy(
    rules: dict[str, Any] | None = None,
    *,
    name: str = "Allow Internal Data Only",
    policy_id: str = "pol_1",
    version: int = 1,
    mode: str = "enforce",
) -> PolicySnapshot:
    return PolicySnapshot(
        policy_id=policy_id,
        version=version,
        name=name,
        rules=PolicyRules.model_validate(rules or {}),
        mode=mode,  # type: ignore[arg-type]
    )


GUIDE_POLICY = policy(GUIDE_RULES)


def check(
    operations: list[dict[str, Any]], context: dict[str, Any] | None = None, policies: Any = (GUIDE_POLICY,)
) -> Decision:
    return decide(CheckRequest.model_validate({"operations": operations, "context": context or {}}), policies)


def llm(model: str = "gpt-4", **fields: Any) -> dict[str, Any]:
    return {"type": "llm_call", "model": model, **fields}


def factor_names(decision: Decision) -> list[str]:
    return [factor.name for factor in decision.factors]


def rules_broken(decision: Decision) -> list[str]:
    return [violation.rule for violation in decision.violations]


# --- the guide --------------------------------------------------------------------------------------------------


def test_guide_step_4_is_allowed() -> None:
    decision = check([llm(tokens=500)], {"user_id": "user_123", "session_id": "session_456"})
    assert decision.allowed is True
    assert decision.reason == "Within policy limits"
    assert decision.risk_score < decision.threshold
    assert decision.violations == ()
    assert decision.personal_data == ()


def test_guide_part_4_python_payload_is_allowed() -> None:
    decision = check(
        [llm(tokens=500, provider="openai")],
        {"user_id": "user_123", "session_id": "session_abc", "department": "engineering"},
    )
    assert decision.allowed is True
    assert decision.reason == "Within policy limits"
    # gpt-4 is approved by the policy, so it is not penalised as an external model call.
    assert "external_model_call" not in factor_names(decision)


def test_guide_personal_data_in_context_is_blocked() -> None:
    decision = check([llm(tokens=500)], {"user_id": "user_123", "email": "jane@example.com"})
    assert decision.allowed is False
    assert decision.reason == "Personal data detected in context"
    assert decision.risk_score >= 70
    assert rules_broken(decision) == ["block_personal_data"]
    assert decision.violations[0].policy_id == "pol_1"
    assert [(f.category, f.path) for f in decision.personal_data] == [("email", "context.email")]


def test_personal_data_in_an_operation_names_its_path() -> None:
    decision = check([llm(tokens=500, prompt="Draft a letter to SSN 123-45-6789")])
    assert decision.allowed is False
    assert decision.reason == "Personal data detected in operations[0].prompt"


def test_context_is_named_first_when_personal_data_is_in_both() -> None:
    decision = check([llm(prompt="mail jane@example.com")], {"phone": "+44 20 7946 0958"})
    assert decision.reason == "Personal data detected in context"


# --- without any policy -----------------------------------------------------------------------------------------


def test_without_policies_an_external_model_call_reaches_the_default_threshold() -> None:
    decision = check([llm(tokens=500, provider="openai")], policies=())
    assert (decision.allowed, decision.risk_score, decision.threshold) == (False, 50, 50)
    assert decision.reason == "Risk score 50 reaches the threshold 50 (external model call)"
    assert decision.policies == ()
    assert decision.factors[0].paths == ["operations[0]"]


def test_a_missing_provider_is_external() -> None:
    assert check([llm()], policies=()).risk_score == 50


@pytest.mark.parametrize("provider", ["internal", "self-hosted", "Self_Hosted", "local", "on-prem", "private"])
def test_an_internal_provider_is_not_external(provider: str) -> None:
    decision = check([llm(provider=provider)], policies=())
    assert (decision.allowed, decision.risk_score, decision.reason) == (True, 0, "Within policy limits")


def test_embedding_counts_as_a_model_call() -> None:
    decision = check([{"type": "embedding", "model": "text-embedding-3", "provider": "openai"}], policies=())
    assert factor_names(decision) == ["external_model_call"]


def test_personal_data_alone_blocks_on_score_without_policies() -> None:
    decision = check([llm(provider="internal")], {"email": "jane@example.com"}, policies=())
    assert (decision.allowed, decision.risk_score) == (False, 70)
    assert decision.reason == "Risk score 70 reaches the threshold 50 (personal data)"


# --- factors ----------------------------------------------------------------------------------------------------


def test_an_unapproved_model_is_external_and_a_violation() -> None:
    decision = check([llm("gpt-5", provider="openai")])
    assert factor_names(decision) == ["external_model_call"]
    assert rules_broken(decision) == ["allowed_models"]
    assert decision.reason == "Model 'gpt-5' is not in the allowed models of policy 'Allow Internal Data Only'"


def test_model_names_compare_case_insensitively() -> None:
    assert check([llm(" GPT-4 ", provider="openai")]).allowed is True


def test_a_policy_without_allowed_models_penalises_every_external_model() -> None:
    decision = check([llm(provider="openai")], policies=(policy({}),))
    assert (decision.allowed, decision.risk_score) == (False, 50)


def test_large_dataset_by_rows_or_bytes() -> None:
    scoring = (policy({"risk_threshold": 100}),)
    small = check([{"type": "data_access", "dataset": "users", "rows": 9_999}], policies=scoring)
    by_rows = check([{"type": "data_access", "dataset": "users", "rows": 10_000}], policies=scoring)
    by_bytes = check([{"type": "data_access", "dataset": "users", "bytes": 100 * 1024 * 1024}], policies=scoring)
    upload = check([{"type": "file_upload", "destination": "s3://b/k", "bytes": 200 * 1024 * 1024}], policies=scoring)
    assert small.factors == ()
    assert [(f.name, f.points, f.paths) for f in by_rows.factors] == [("large_dataset", 30, ["operations[0]"])]
    assert factor_names(by_bytes) == ["large_dataset"]
    assert factor_names(upload) == ["large_dataset"]


def test_large_dataset_limits_come_from_the_policy() -> None:
    operation = {"type": "data_access", "dataset": "users", "rows": 500}
    assert factor_names(check([operation], policies=(policy({"large_dataset_rows": 100}),))) == ["large_dataset"]


def test_unknown_operations_count_once_with_every_path() -> None:
    decision = check([{"type": "a"}, llm(provider="internal"), {"type": "b"}, {"type": "a"}], policies=())
    assert [(f.name, f.points, f.paths) for f in decision.factors] == [
        ("unknown_operation", 20, ["operations[0]", "operations[2]", "operations[3]"])
    ]
    assert (decision.risk_score, decision.allowed) == (20, True)


def test_each_factor_counts_once_and_the_score_is_capped() -> None:
    decision = check(
        [
            llm("x", provider="openai"),
            llm("y", provider="anthropic"),
            {"type": "data_access", "dataset": "d", "rows": 10**6},
            {"type": "mystery"},
        ],
        {"a": "jane@example.com", "b": "bob@example.com"},
        policies=(),
    )
    assert factor_names(decision) == ["personal_data", "external_model_call", "large_dataset", "unknown_operation"]
    assert [f.points for f in decision.factors] == [70, 50, 30, 20]
    assert decision.risk_score == 100
    assert decision.factors[0].paths == ["context.a", "context.b"]
    assert decision.factors[1].paths == ["operations[0]", "operations[1]"]


def test_weights_and_threshold_come_from_the_policy() -> None:
    rules = {"risk_threshold": 80, "risk_weights": {"personal_data": 75, "external_model_call": 10}}
    decision = check([llm(provider="openai")], {"email": "jane@example.com"}, policies=(policy(rules),))
    assert (decision.risk_score, decision.threshold, decision.allowed) == (85, 80, False)
    assert decision.reason == "Risk score 85 reaches the threshold 80 (personal data, external model call)"


# --- rules ------------------------------------------------------------------------------------------------------


def test_max_tokens() -> None:
    assert check([llm(tokens=10_000)]).allowed is True
    decision = check([llm(tokens=10_001)])
    assert rules_broken(decision) == ["max_tokens"]
    assert decision.reason == (
        "operations[0] requests 10001 tokens, above the max_tokens of 10000 of policy 'Allow Internal Data Only'"
    )


def test_max_external_calls_counts_external_calls_and_external_model_calls() -> None:
    rules = {"max_external_calls": 2, "risk_threshold": 100}
    calls = [{"type": "external_call", "target": f"https://api{i}.example.com"} for i in range(2)]
    assert check(calls, policies=(policy(rules),)).allowed is True
    decision = check([*calls, llm(provider="openai")], policies=(policy(rules),))
    assert rules_broken(decision) == ["max_external_calls"]
    assert decision.violations[0].detail.startswith("3 external calls exceed the max_external_calls of 2")
    # An approved model does not count as an external call.
    approved = {**rules, "allowed_models": ["gpt-4"]}
    assert check([*calls, llm(provider="openai")], policies=(policy(approved),)).allowed is True


def test_several_rules_broken_are_all_reported_the_first_is_the_reason() -> None:
    decision = check([llm("gpt-5", tokens=50_000)])
    assert rules_broken(decision) == ["allowed_models", "max_tokens"]
    assert decision.reason == decision.violations[0].detail


def test_a_broken_rule_blocks_even_at_a_low_score() -> None:
    decision = check([llm("gpt-5", provider="internal")])
    assert (decision.risk_score, decision.allowed) == (0, False)
    assert decision.threshold == 50


def test_violations_name_the_policy_and_its_version() -> None:
    decision = check([llm("gpt-5")], policies=(policy(GUIDE_RULES, policy_id="pol_9", version=4),))
    assert (decision.violations[0].policy_id, decision.violations[0].policy_version) == ("pol_9", 4)


# --- several policies and shadow mode ---------------------------------------------------------------------------


def test_several_policies_score_with_their_own_rules_and_the_highest_score_is_reported() -> None:
    lenient = policy({"risk_threshold": 90, "allowed_models": ["gpt-4"]}, name="lenient", policy_id="a")
    strict = policy({"risk_threshold": 40}, name="strict", policy_id="b")
    decision = check([llm(provider="openai")], policies=(lenient, strict))
    # lenient approves gpt-4 (score 0); strict does not (score 50 >= 40).
    assert (decision.allowed, decision.risk_score, decision.threshold) == (False, 50, 40)
    assert decision.reason == "Risk score 50 reaches the threshold 40 of policy 'strict' (external model call)"
    assert decision.policies == (PolicyRef(policy_id="a", version=1), PolicyRef(policy_id="b", version=1))


def test_the_threshold_is_the_deciding_policys() -> None:
    high = policy({"risk_threshold": 100, "risk_weights": {"personal_data": 90}}, name="high", policy_id="h")
    low = policy({"risk_threshold": 60}, name="low", policy_id="l")
    blocked = check([llm(provider="internal")], {"email": "jane@example.com"}, policies=(high, low))
    # high scores 90 (< 100), low scores 70 (>= 60): low decides; the reported score is the highest.
    assert (blocked.allowed, blocked.risk_score, blocked.threshold) == (False, 90, 60)
    assert blocked.reason == "Risk score 70 reaches the threshold 60 of policy 'low' (personal data)"
    assert [f.points for f in blocked.factors] == [90]
    allowed = check([{"type": "mystery"}], policies=(high, low))
    assert (allowed.allowed, allowed.risk_score, allowed.threshold) == (True, 20, 60)


def test_allowed_decisions_report_a_score_below_their_threshold() -> None:
    a = policy({"risk_threshold": 95, "risk_weights": {"unknown_operation": 60}}, policy_id="a")
    b = policy({"risk_threshold": 30}, policy_id="b")
    decision = check([{"type": "mystery"}], policies=(a, b))
    assert decision.allowed is True
    assert decision.risk_score < decision.threshold


def test_policies_with_equal_rules_all_report_their_violations() -> None:
    policies = [policy(GUIDE_RULES, name=f"copy {i}", policy_id=f"p{i}") for i in range(3)]
    decision = check([llm("gpt-5")], policies=policies)
    assert [(v.policy_id, v.detail) for v in decision.violations] == [
        (f"p{i}", f"Model 'gpt-5' is not in the allowed models of policy 'copy {i}'") for i in range(3)
    ]


def test_a_shadow_policy_never_changes_the_answer() -> None:
    shadow = policy({"block_personal_data": True, "risk_threshold": 10}, mode="shadow", policy_id="s", name="s")
    enforce = policy({"allowed_models": ["gpt-4"]}, policy_id="e", name="e")
    decision = check([llm(provider="openai")], {"email": "jane@example.com"}, policies=(shadow, enforce))
    baseline = check([llm(provider="openai")], {"email": "jane@example.com"}, policies=(enforce,))
    assert (decision.allowed, decision.risk_score, decision.reason, decision.threshold) == (
        baseline.allowed,
        baseline.risk_score,
        baseline.reason,
        baseline.threshold,
    )
    assert decision.violations == baseline.violations
    [outcome] = decision.shadow
    assert (outcome.policy_id, outcome.allowed, outcome.risk_score) == ("s", False, 100)
    assert [v.rule for v in outcome.violations] == ["block_personal_data"]
    assert decision.policies == (
        PolicyRef(policy_id="s", version=1, mode="shadow"),
        PolicyRef(policy_id="e", version=1),
    )


def test_only_shadow_policies_means_default_scoring() -> None:
    shadow = policy(GUIDE_RULES, mode="shadow")
    decision = check([llm(provider="openai")], policies=(shadow,))
    assert (decision.allowed, decision.risk_score, decision.threshold) == (False, 50, 50)
    assert decision.shadow[0].allowed is True
    assert decision.violations == ()


def test_a_shadow_policy_with_the_same_rules_as_an_enforced_one_is_reported_separately() -> None:
    enforce = policy(GUIDE_RULES, policy_id="e")
    shadow = policy(GUIDE_RULES, policy_id="s", mode="shadow")
    decision = check([llm("gpt-5")], policies=(enforce, shadow))
    assert [v.policy_id for v in decision.violations] == ["e"]
    assert [v.policy_id for v in decision.shadow[0].violations] == ["s"]


# --- purity, features and what is recorded ----------------------------------------------------------------------


def test_decide_is_decide_from_features_of_the_request() -> None:
    request = CheckRequest.model_validate(
        {
            "operations": [llm(prompt="hi jane@example.com"), {"type": "x", "e": "bob@example.org"}],
            "context": {"ip": "1.2.3.4"},
        }
    )
    decision = decide(request, (GUIDE_POLICY,))
    assert decision.operations == summarize_operations(request)
    assert decision == decide_from_features(decision.operations, decision.personal_data, (GUIDE_POLICY,))


def test_decide_does_not_change_its_inputs_and_is_repeatable() -> None:
    payload = {"operations": [llm(prompt="x", metadata={"a": [1, {"b": "jane@example.com"}]})], "context": {"k": "v"}}
    request = CheckRequest.model_validate(payload)
    before = request.model_dump()
    assert decide(request, (GUIDE_POLICY,)) == decide(request, (GUIDE_POLICY,))
    assert request.model_dump() == before


def test_summaries_hold_no_personal_data() -> None:
    request = CheckRequest.model_validate(
        {
            "operations": [
                {"type": "external_call", "target": "https://bob:pw@api.example.com/users?email=jane@example.com"},
                {"type": "data_access", "dataset": "export for jane@example.com"},
                {"type": "tool_call", "tool": "lookup", "arguments": {"phone": "+44 20 7946 0958"}},
            ]
        }
    )
    decision = decide(request, (GUIDE_POLICY,))
    summaries = decision.operations
    assert summaries[0].target == "api.example.com"
    assert summaries[0].external is True
    assert summaries[1].dataset == "<redacted>"
    assert summaries[2].target == "lookup"
    assert {(f.category, f.path) for f in decision.personal_data} == {
        ("email", "operations[0].target"),
        ("email", "operations[1].dataset"),
        ("phone", "operations[2].arguments.phone"),
    }


def test_the_recorded_event_never_carries_a_personal_data_value() -> None:
    secrets = ["jane@example.com", "+44 20 7946 0958", "4111 1111 1111 1111", "123-45-6789", "DE89370400440532013000"]
    request = CheckRequest.model_validate(
        {
            "operations": [
                llm(prompt=f"card {secrets[2]}", messages=[{"role": "user", "content": secrets[1]}]),
                {"type": "custom", "owner": secrets[0], secrets[0]: 1},
                {"type": "external_call", "target": f"https://api.example.com/?e={secrets[0]}"},
            ],
            "context": {"ssn": secrets[3], "notes": f"iban {secrets[4]}"},
        }
    )
    decision = decide(request, (GUIDE_POLICY, policy({}, mode="shadow", policy_id="s")))
    event = DecisionEvent(
        event_id=uuid.uuid4(),
        request_id="req_1",
        customer_id=uuid.uuid4(),
        key_id="key_1",
        decided_at=datetime.now(UTC),
        allowed=decision.allowed,
        risk_score=decision.risk_score,
        threshold=decision.threshold,
        reason=decision.reason,
        factors=list(decision.factors),
        violations=list(decision.violations),
        policies=list(decision.policies),
        operations=list(decision.operations),
        personal_data=list(decision.personal_data),
        shadow=list(decision.shadow),
        latency_ms=0.1,
    )
    text = event.model_dump_json()
    for secret in secrets:
        assert secret not in text
        assert secret.replace(" ", "") not in text
    assert {f.category for f in decision.personal_data} == {"email", "phone", "payment_card", "ssn", "iban"}
    replayed = DecisionEvent.model_validate(json.loads(text))
    assert decide_from_features(replayed.operations, replayed.personal_data, (GUIDE_POLICY,)).allowed is False


def test_data_access_of_personal_fields_is_personal_data() -> None:
    decision = check([{"type": "data_access", "dataset": "users", "fields": ["id", "email", "dateOfBirth"]}])
    assert [(f.category, f.path) for f in decision.personal_data] == [
        ("email", "operations[0].fields[1]"),
        ("date_of_birth", "operations[0].fields[2]"),
    ]
    assert decision.reason == "Personal data detected in operations[0].fields[1]"
