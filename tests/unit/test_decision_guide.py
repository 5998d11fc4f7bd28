"""The decision engine on the onboarding guide's requests, and without any policy: default scoring."""

from __future__ import annotations

import pytest

from tests.unit.engine_calls import check, factor_names, llm, rules_broken


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
