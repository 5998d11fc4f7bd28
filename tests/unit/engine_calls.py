"""Calling the engine in the decision tests: a policy snapshot, a check of some operations under the guide's
policy (or others), and what a decision says (its factors, the rules it broke)."""

from __future__ import annotations

from typing import Any

from ingress.engine import Decision, PolicySnapshot, decide
from schemas.check import CheckRequest
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
