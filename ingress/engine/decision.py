"""The decision: risk factors, hard policy rules, several policies and shadow mode. Pure: data in, data out.

Definitions (docs/scoring.md explains them to integrators):

* **Personal data** (factor ``personal_data``): at least one personal-data finding anywhere in the request.
* **External model call** (factor ``external_model_call``): an ``llm_call`` or ``embedding`` whose provider is not
  internal (a missing provider is not internal) and whose model is not in the evaluated policy's
  ``allowed_models``. A model the policy approves is not penalised; without any policy, or with a policy that
  sets no ``allowed_models``, every model on an external provider counts.
* **Large dataset** (factor ``large_dataset``): a ``data_access`` with ``rows >= large_dataset_rows`` or
  ``bytes >= large_dataset_bytes``, or a ``file_upload`` with ``bytes >= large_dataset_bytes``.
* **Unknown operation** (factor ``unknown_operation``): an operation whose type we do not know.

Each factor counts once per decision, whatever the number of occurrences, and lists where it was found. The
score of a policy is the sum of its weights for the factors present, capped at 100.

Several policies: every ``enforce`` policy is evaluated with its own rules. The check is blocked when any of them
reports a violation or scores at or above its own threshold. ``risk_score`` is the highest score of all, and the
factors are those of the policy that scored it. ``threshold`` is that of the deciding policy: the highest-scoring
policy among those whose score reaches their threshold, or else the highest-scoring policy (ties: the lower
threshold, then the earlier policy). So ``risk_score >= threshold`` exactly when the score blocked the check.
``shadow`` policies are evaluated the same way and only reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ingress.engine.budgets import budget_findings
from ingress.engine.factors import (
    Breach,
    Features,
    breaches,
    factors_of,
    labels_of,
    scorer,
    violations_of,
)
from ingress.engine.operations import analyze_request
from ingress.engine.personal_data import SCAN_BUDGET_CHARS, SCAN_LIMIT
from ingress.engine.policy import DEFAULT_RULES, CompiledRules, PolicySnapshot
from ingress.engine.policy_set import PolicyIndex, index_of
from schemas.check import CheckRequest
from schemas.decision_event import (
    BudgetUsage,
    Factor,
    OperationSummary,
    PersonalDataFinding,
    PolicyRef,
    ShadowOutcome,
    Violation,
)

ALLOWED_REASON = "Within policy limits"


@dataclass(frozen=True)
class Decision:
    """What the engine decided, and everything a ``DecisionEvent`` records about why."""

    allowed: bool
    risk_score: int
    threshold: int
    reason: str
    factors: tuple[Factor, ...]
    violations: tuple[Violation, ...]
    policies: tuple[PolicyRef, ...]
    operations: tuple[OperationSummary, ...]
    personal_data: tuple[PersonalDataFinding, ...]
    shadow: tuple[ShadowOutcome, ...]
    budgets: tuple[BudgetUsage, ...] = ()


@dataclass(frozen=True, slots=True)
class _Group:
    """Policies of one mode with equal rules: scored once."""

    key: str
    rules: CompiledRules
    score: int

    @property
    def blocks_on_score(self) -> bool:
        return self.score >= self.rules.threshold


_Evaluated = tuple[_Group | None, _Group | None, dict[str, tuple[Breach, ...]], dict[str, _Group]]


def _evaluate_groups(
    features: Features, index: PolicyIndex, score_of: Callable[[CompiledRules], tuple[int, bool]]
) -> _Evaluated:
    """The top enforce group, the deciding one (the top among those that block on score), the broken groups and
    the shadow groups' outcomes.

    Ranking: the higher score; on a tie the lower threshold; on a tie again the earlier policy (a later group must
    rank strictly higher to replace one). Many rule sets are evaluated as bit sets, the same way (``RuleTable``).
    """
    top: _Group | None = None
    decider: _Group | None = None
    broken: dict[str, tuple[Breach, ...]] = {}
    shadows: dict[str, _Group] = {}
    members = index.members
    if index.table is not None and index.table.handles(features):
        (first, score), best, breaking = index.table.evaluate(features)
        top = _Group(index.enforce[first], members[index.enforce[first]].compiled, score)
        if best is not None:
            key = index.enforce[best[0]]
            decider = top if best[0] == first else _Group(key, members[key].compiled, best[1])
        for position in breaking:
            key = index.enforce[position]
            broken[key] = breaches(features, members[key].compiled)
        for key in index.shadow:
            rules = members[key].compiled
            score, is_broken = score_of(rules)
            if is_broken:
                broken[key] = breaches(features, rules)
            shadows[key] = _Group(key, rules, score)
        return top, decider, broken, shadows
    top_rank = (-1, 0)
    decider_rank = (-1, 0)
    for key, member in members.items():
        rules = member.compiled
        score, is_broken = score_of(rules)
        if is_broken:
            broken[key] = breaches(features, rules)
        if member.mode == "shadow":
            shadows[key] = _Group(key, rules, score)
            continue
        rank = (score, -rules.threshold)
        group = None  # made only for a group that ranks first so far
        if rank > top_rank:
            group = top = _Group(key, rules, score)
            top_rank = rank
        if score >= rules.threshold and rank > decider_rank:
            decider = group or _Group(key, rules, score)
            decider_rank = rank
    return top, decider, broken, shadows


def _reports(
    policies: Sequence[PolicySnapshot],
    index: PolicyIndex,
    broken: dict[str, tuple[Breach, ...]],
    shadows: dict[str, _Group],
) -> tuple[list[Violation], list[ShadowOutcome]]:
    """The violations of enforce policies and the outcomes of shadow ones, in policy order. Only the policies that
    report something are visited, when the index knows where they are."""
    violations: list[Violation] = []
    shadow: list[ShadowOutcome] = []
    if not broken and not shadows:
        return violations, shadow
    reporting: Iterable[PolicySnapshot] = policies
    if index.positions is not None:
        at = index.positions
        reporting = [policies[p] for p in sorted(p for key in broken.keys() | shadows.keys() for p in at[key])]
    for policy in reporting:
        key = policy.group_key
        found = violations_of(policy, broken[key]) if key in broken else []
        if policy.mode == "shadow":
            outcome = shadows[key]
            shadow.append(
                ShadowOutcome(
                    policy_id=policy.policy_id,
                    version=policy.version,
                    allowed=not found and not outcome.blocks_on_score,
                    risk_score=outcome.score,
                    violations=found,
                )
            )
        else:
            violations.extend(found)
    return violations, shadow


def decide_from_features(
    operations: Sequence[OperationSummary],
    personal_data: Sequence[PersonalDataFinding],
    policies: Sequence[PolicySnapshot],
    budgets: Sequence[BudgetUsage] = (),
) -> Decision:
    """The decision for these features under these policies; ``decide`` is this applied to a request's features.

    A stored ``DecisionEvent`` (its ``operations`` and ``personal_data``) replays to the same decision, which is
    what policy backtesting relies on.
    """
    stopped = next((finding for finding in personal_data if finding.category == SCAN_LIMIT), None)
    personal = personal_data if stopped is None else [f for f in personal_data if f.category != SCAN_LIMIT]
    features = Features.of(operations, personal)
    index = index_of(policies)
    score_of = scorer(features)
    top, decider, broken, shadows = _evaluate_groups(features, index, score_of)
    violations, shadow = _reports(policies, index, broken, shadows)

    if top is None:  # no enforce policy: default scoring and no hard rules
        score, _ = score_of(DEFAULT_RULES)
        top = _Group("", DEFAULT_RULES, score)
        decider = top if top.blocks_on_score else None
    factors = factors_of(features, top.rules)
    if budgets:
        budget_factors, budget_violations = budget_findings(budgets)
        factors += tuple(budget_factors)
        violations.extend(budget_violations)
    if stopped is not None:
        violations.append(_scan_limit_violation(stopped.path))
    allowed = not violations and decider is None
    return Decision(
        allowed=allowed,
        risk_score=top.score,
        threshold=(decider or top).rules.threshold,
        reason=ALLOWED_REASON if allowed else _reason(features, violations, decider, policies, len(shadow)),
        factors=factors,
        violations=tuple(violations),
        policies=index.refs,
        operations=tuple(operations),
        personal_data=tuple(personal_data),
        shadow=tuple(shadow),
        budgets=tuple(budgets),
    )


def _scan_limit_violation(path: str) -> Violation:
    """A request with more text than one check may scan is refused: what was not read may hold anything."""
    detail = (
        f"Request text exceeds the personal-data scan limit of {SCAN_BUDGET_CHARS} characters "
        f"(scanning stopped at {path}); the check fails closed"
    )
    return Violation(rule=SCAN_LIMIT, policy_id="", policy_version=0, detail=detail)


def _reason(
    features: Features,
    violations: list[Violation],
    decider: _Group | None,
    policies: Sequence[PolicySnapshot],
    shadow_count: int,
) -> str:
    if any(violation.rule == "block_personal_data" for violation in violations):
        return f"Personal data detected in {features.personal_where}"
    if violations:
        return violations[0].detail
    if decider is None:  # pragma: no cover - a blocked decision has a violation or a decider
        raise AssertionError("a blocked decision needs a violation or a deciding policy")
    labels = labels_of(factors_of(features, decider.rules))
    because = f" ({labels})" if labels else ""
    of_policy = ""
    if len(policies) - shadow_count > 1:  # name the deciding policy when there is a choice
        name = next((policy.name for policy in policies if policy.group_key == decider.key), None)
        of_policy = f" of policy '{name}'" if name is not None else ""
    return f"Risk score {decider.score} reaches the threshold {decider.rules.threshold}{of_policy}{because}"


def decide(request: CheckRequest, policies: Sequence[PolicySnapshot], budgets: Sequence[BudgetUsage] = ()) -> Decision:
    """Decide a check: its features (one pass over the request), then ``decide_from_features``."""
    operations, personal_data = analyze_request(request)
    return decide_from_features(operations, personal_data, policies, budgets)
