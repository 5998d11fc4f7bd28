"""The decision engine's risk factors (each counted once, the score capped, weights and threshold from the policy)
and its rules (each broken rule a violation naming its policy; the first is the reason)."""

from __future__ import annotations

from tests.unit.engine_calls import GUIDE_RULES, check, factor_names, llm, policy, rules_broken


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
