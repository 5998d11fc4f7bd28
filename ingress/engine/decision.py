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
from ingress.engine.operations import analyze_request
from ingress.engine.personal_data import SCAN_BUDGET_CHARS, SCAN_LIMIT
from ingress.engine.policy import DEFAULT_RULES, CompiledRules, PolicySnapshot, normalize_model
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

PERSONAL_DATA = "personal_data"
EXTERNAL_MODEL_CALL = "external_model_call"
LARGE_DATASET = "large_dataset"
UNKNOWN_OPERATION = "unknown_operation"
_FACTOR_LABELS = {
    PERSONAL_DATA: "personal data",
    EXTERNAL_MODEL_CALL: "external model call",
    LARGE_DATASET: "large dataset",
    UNKNOWN_OPERATION: "unknown operation",
}
_MODEL_TYPES = frozenset({"llm_call", "embedding"})
_DATA_TYPES = frozenset({"data_access", "file_upload"})


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
class _ModelCall:
    summary: OperationSummary
    model: str  # normalized; "" when the summary has none


_NONE = -1  # a maximum over no values: below every limit


@dataclass(frozen=True, slots=True)
class _Features:
    """What the policies are evaluated on, computed once per decision so that each policy costs a few compares."""

    personal_paths: tuple[str, ...]
    personal_categories: tuple[str, ...]
    personal_where: str  # "context", or the first path when nothing was found in the context
    model_calls: tuple[_ModelCall, ...]  # llm_call and embedding
    model_names: frozenset[str]
    external_models: tuple[_ModelCall, ...]  # model calls on a provider that is not internal
    max_llm_tokens: int
    external_calls: int  # external_call operations
    data_operations: tuple[OperationSummary, ...]  # data_access and file_upload
    max_rows: int
    max_bytes: int
    unknown: tuple[OperationSummary, ...]

    @classmethod
    def of(cls, operations: Sequence[OperationSummary], personal_data: Sequence[PersonalDataFinding]) -> _Features:
        paths = tuple(dict.fromkeys(finding.path for finding in personal_data))
        in_context = any(path == "context" or path.startswith(("context.", "context[")) for path in paths)
        model_calls = tuple(
            _ModelCall(op, normalize_model(op.model or "")) for op in operations if op.type in _MODEL_TYPES
        )
        data_operations = tuple(op for op in operations if op.type in _DATA_TYPES)
        return cls(
            personal_paths=paths,
            personal_categories=tuple(dict.fromkeys(finding.category for finding in personal_data)),
            personal_where="context" if in_context else (paths[0] if paths else ""),
            model_calls=model_calls,
            model_names=frozenset(call.model for call in model_calls),
            external_models=tuple(call for call in model_calls if call.summary.external),
            max_llm_tokens=max(
                (
                    call.summary.tokens
                    for call in model_calls
                    if call.summary.type == "llm_call" and call.summary.tokens is not None
                ),
                default=_NONE,
            ),
            external_calls=sum(1 for op in operations if op.type == "external_call"),
            data_operations=data_operations,
            max_rows=max((op.rows for op in data_operations if op.rows is not None), default=_NONE),
            max_bytes=max((op.bytes for op in data_operations if op.bytes is not None), default=_NONE),
            unknown=tuple(op for op in operations if not op.known_type),
        )

    def external_models_for(self, rules: CompiledRules) -> tuple[_ModelCall, ...]:
        """External model calls under these rules: a model the policy allows is not penalised."""
        allowed = rules.allowed_models
        if allowed is None or not self.external_models:
            return self.external_models
        return tuple(call for call in self.external_models if call.model not in allowed)

    def large_for(self, rules: CompiledRules) -> tuple[OperationSummary, ...]:
        return tuple(
            op
            for op in self.data_operations
            if (op.rows is not None and op.rows >= rules.large_dataset_rows)
            or (op.bytes is not None and op.bytes >= rules.large_dataset_bytes)
        )


def _scorer(features: _Features) -> Callable[[CompiledRules], tuple[int, bool]]:
    """Scores one set of rules against these features: (score, whether any hard rule is broken).

    The per-policy hot path: a handful of comparisons against aggregates computed once per decision (held in the
    closure, the cheapest variables to read), a walk over the few external model calls only when the policy
    allows some models, and no other allocation.
    """
    personal = bool(features.personal_paths)
    external_models = features.external_models
    model_names = features.model_names
    max_tokens = features.max_llm_tokens
    external_calls = features.external_calls
    max_rows = features.max_rows
    max_bytes = features.max_bytes
    unknown = bool(features.unknown)

    def score(rules: CompiledRules) -> tuple[int, bool]:
        allowed = rules.allowed_models
        external = len(external_models)
        if external and allowed is not None:
            external = 0
            for call in external_models:
                if call.model not in allowed:
                    external += 1
        points = rules.personal_data_points if personal else 0
        if external:
            points += rules.external_model_call_points
        if max_rows >= rules.large_dataset_rows or max_bytes >= rules.large_dataset_bytes:
            points += rules.large_dataset_points
        if unknown:
            points += rules.unknown_operation_points
        broken = (
            (allowed is not None and not model_names <= allowed)
            or (rules.max_tokens is not None and max_tokens > rules.max_tokens)
            or (rules.max_external_calls is not None and external_calls + external > rules.max_external_calls)
            or (personal and rules.block_personal_data)
        )
        return min(points, 100), broken

    return score


@dataclass(frozen=True, slots=True)
class _Breach:
    """A broken rule; its detail names the policy, so it is finished per policy: head + 'name' + tail."""

    rule: str
    head: str
    tail: str = ""


def _breaches(features: _Features, rules: CompiledRules) -> tuple[_Breach, ...]:
    found: list[_Breach] = []
    if rules.allowed_models is not None:
        refused = tuple(
            dict.fromkeys(
                call.summary.model or "" for call in features.model_calls if call.model not in rules.allowed_models
            )
        )
        if len(refused) == 1:
            found.append(_Breach("allowed_models", f"Model '{refused[0]}' is not in the allowed models of policy "))
        elif refused:
            names = ", ".join(f"'{model}'" for model in refused)
            found.append(_Breach("allowed_models", f"Models {names} are not in the allowed models of policy "))
    if rules.max_tokens is not None and features.max_llm_tokens > rules.max_tokens:
        over = [
            call.summary
            for call in features.model_calls
            if call.summary.type == "llm_call" and call.summary.tokens is not None
            if call.summary.tokens > rules.max_tokens
        ]
        more = f" (and {len(over) - 1} more)" if len(over) > 1 else ""
        found.append(
            _Breach(
                "max_tokens",
                f"operations[{over[0].index}] requests {over[0].tokens} tokens{more}, "
                f"above the max_tokens of {rules.max_tokens} of policy ",
            )
        )
    if rules.max_external_calls is not None:
        count = features.external_calls + len(features.external_models_for(rules))
        if count > rules.max_external_calls:
            found.append(
                _Breach(
                    "max_external_calls",
                    f"{count} external calls exceed the max_external_calls of {rules.max_external_calls} of policy ",
                )
            )
    if rules.block_personal_data and features.personal_paths:
        categories = ", ".join(features.personal_categories)
        found.append(
            _Breach(
                "block_personal_data",
                f"Personal data ({categories}) detected in {features.personal_where}; policy ",
                " blocks personal data",
            )
        )
    return tuple(found)


def _violations(policy: PolicySnapshot, breaches: tuple[_Breach, ...]) -> list[Violation]:
    return [
        Violation(
            rule=breach.rule,
            policy_id=policy.policy_id,
            policy_version=policy.version,
            detail=f"{breach.head}'{policy.name}'{breach.tail}",
        )
        for breach in breaches
    ]


def _factors(features: _Features, rules: CompiledRules) -> tuple[Factor, ...]:
    factors: list[Factor] = []
    if features.personal_paths:
        factors.append(
            Factor(
                name=PERSONAL_DATA,
                points=rules.personal_data_points,
                detail=", ".join(features.personal_categories),
                paths=list(features.personal_paths),
            )
        )
    external = features.external_models_for(rules)
    if external:
        calls = (f"'{call.summary.model}' via {call.summary.provider or 'an unnamed provider'}" for call in external)
        factors.append(
            Factor(
                name=EXTERNAL_MODEL_CALL,
                points=rules.external_model_call_points,
                detail=", ".join(dict.fromkeys(calls)),
                paths=[f"operations[{call.summary.index}]" for call in external],
            )
        )
    large = features.large_for(rules)
    if large:
        factors.append(
            Factor(
                name=LARGE_DATASET,
                points=rules.large_dataset_points,
                detail=f"rows >= {rules.large_dataset_rows} or bytes >= {rules.large_dataset_bytes}",
                paths=[f"operations[{op.index}]" for op in large],
            )
        )
    if features.unknown:
        factors.append(
            Factor(
                name=UNKNOWN_OPERATION,
                points=rules.unknown_operation_points,
                detail=", ".join(dict.fromkeys(f"'{op.type}'" for op in features.unknown)),
                paths=[f"operations[{op.index}]" for op in features.unknown],
            )
        )
    return tuple(factors)


def _labels(factors: tuple[Factor, ...]) -> str:
    return ", ".join(_FACTOR_LABELS[factor.name] for factor in factors if factor.points > 0)


@dataclass(frozen=True, slots=True)
class _Group:
    """Policies of one mode with equal rules: scored once."""

    key: str
    rules: CompiledRules
    score: int

    @property
    def blocks_on_score(self) -> bool:
        return self.score >= self.rules.threshold


_Evaluated = tuple[_Group | None, _Group | None, dict[str, tuple[_Breach, ...]], dict[str, _Group]]


def _evaluate_groups(
    features: _Features, index: PolicyIndex, score_of: Callable[[CompiledRules], tuple[int, bool]]
) -> _Evaluated:
    """The top enforce group, the deciding one (the top among those that block on score), the broken groups and
    the shadow groups' outcomes.

    Ranking: the higher score; on a tie the lower threshold; on a tie again the earlier policy (a later group must
    rank strictly higher to replace one). Many rule sets are evaluated as bit sets, the same way (``RuleTable``).
    """
    top: _Group | None = None
    decider: _Group | None = None
    broken: dict[str, tuple[_Breach, ...]] = {}
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
            broken[key] = _breaches(features, members[key].compiled)
        for key in index.shadow:
            rules = members[key].compiled
            score, is_broken = score_of(rules)
            if is_broken:
                broken[key] = _breaches(features, rules)
            shadows[key] = _Group(key, rules, score)
        return top, decider, broken, shadows
    top_rank = (-1, 0)
    decider_rank = (-1, 0)
    for key, member in members.items():
        rules = member.compiled
        score, is_broken = score_of(rules)
        if is_broken:
            broken[key] = _breaches(features, rules)
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
    broken: dict[str, tuple[_Breach, ...]],
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
        found = _violations(policy, broken[key]) if key in broken else []
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
    features = _Features.of(operations, personal)
    index = index_of(policies)
    score_of = _scorer(features)
    top, decider, broken, shadows = _evaluate_groups(features, index, score_of)
    violations, shadow = _reports(policies, index, broken, shadows)

    if top is None:  # no enforce policy: default scoring and no hard rules
        score, _ = score_of(DEFAULT_RULES)
        top = _Group("", DEFAULT_RULES, score)
        decider = top if top.blocks_on_score else None
    factors = _factors(features, top.rules)
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
    features: _Features,
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
    labels = _labels(_factors(features, decider.rules))
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
