"""Session risk budgets, the pure part: what a check would use of each budget, and what exceeding one means.

Counting happens outside the engine (atomically in Redis, ``ingress.check.budgets``): the check path asks
:func:`budget_demands` what this check would use, reserves it, and passes the resulting :class:`BudgetUsage`
list to ``decide_from_features``, which turns an exceeded budget into a ``session_budget`` violation and factor.
The usages are stored in the decision event, so a replay needs no Redis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ingress.engine.policy import PolicySnapshot, normalize_model
from schemas.decision_event import BudgetUsage, Factor, OperationSummary, PersonalDataFinding, Violation
from schemas.policy_rules import SessionBudget

SESSION_BUDGET = "session_budget"
_MODEL_TYPES = frozenset({"llm_call", "embedding"})
_COUNT_LABELS = {
    "operations": "operations",
    "external_model_calls": "external model calls",
    "personal_data_operations": "operations on personal data",
    "llm_tokens": "LLM tokens",
}


@dataclass(frozen=True)
class BudgetDemand:
    policy: PolicySnapshot
    budget: SessionBudget
    amount: int


def _operations_on_personal_data(
    operations: Sequence[OperationSummary], personal_data: Sequence[PersonalDataFinding]
) -> int:
    paths = [finding.path for finding in personal_data]
    if any(path == "context" or path.startswith(("context.", "context[")) for path in paths):
        return len(operations)  # personal data in the context reaches every operation
    touched = {op.index for op in operations if any(p.startswith(f"operations[{op.index}]") for p in paths)}
    return len(touched)


def _amount(
    budget: SessionBudget,
    policy: PolicySnapshot,
    operations: Sequence[OperationSummary],
    personal_data: Sequence[PersonalDataFinding],
) -> int:
    if budget.counts == "operations":
        return len(operations)
    if budget.counts == "llm_tokens":
        return sum(op.tokens or 0 for op in operations if op.type == "llm_call")
    if budget.counts == "personal_data_operations":
        return _operations_on_personal_data(operations, personal_data)
    allowed = policy.compiled.allowed_models  # external model calls, as the risk factor defines them
    return sum(
        1
        for op in operations
        if op.type in _MODEL_TYPES
        and op.external
        and (allowed is None or normalize_model(op.model or "") not in allowed)
    )


def budget_demands(
    operations: Sequence[OperationSummary],
    personal_data: Sequence[PersonalDataFinding],
    policies: Sequence[PolicySnapshot],
) -> list[BudgetDemand]:
    """What this check would use of every enforce policy's budgets (zero-use budgets are left out)."""
    demands = []
    for policy in policies:
        if policy.mode != "enforce" or not policy.rules.session_budgets:
            continue
        for budget in policy.rules.session_budgets:
            amount = _amount(budget, policy, operations, personal_data)
            if amount > 0:
                demands.append(BudgetDemand(policy, budget, amount))
    return demands


def budget_findings(budgets: Sequence[BudgetUsage]) -> tuple[list[Factor], list[Violation]]:
    factors: list[Factor] = []
    violations: list[Violation] = []
    for usage in budgets:
        if not usage.exceeded:
            continue
        label = _COUNT_LABELS.get(usage.counts, usage.counts)
        per = "session" if usage.scope == "session_id" else "user"
        detail = (
            f"Session budget '{usage.budget}' exceeded: {usage.used} of {usage.limit} {label} used per {per} "
            f"per {usage.window_s} s, this check needs {usage.requested} more"
        )
        factors.append(Factor(name=SESSION_BUDGET, points=0, detail=detail, paths=[f"context.{usage.scope}"]))
        violations.append(
            Violation(
                rule=SESSION_BUDGET, policy_id=usage.policy_id, policy_version=usage.policy_version, detail=detail
            )
        )
    return factors, violations
