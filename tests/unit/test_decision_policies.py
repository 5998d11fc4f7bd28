"""The decision engine with several policies (each scores with its own rules, the deciding policy's threshold) and
shadow policies, which never change the answer and are reported apart."""

from __future__ import annotations

from schemas.decision_event import PolicyRef
from tests.unit.engine_calls import GUIDE_RULES, check, llm, policy


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
