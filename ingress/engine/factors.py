"""The risk factors of a request under one policy's rules, its hard-rule breaches, and the score. Pure.

``decision.py`` combines them over every policy of a customer; the definitions are in its docstring and in
docs/scoring.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ingress.engine.policy import CompiledRules, PolicySnapshot, normalize_model
from schemas.decision_event import Factor, OperationSummary, PersonalDataFinding, Violation

PERSONAL_DATA = "personal_data"
EXTERNAL_MODEL_CALL = "external_model_call"
LARGE_DATASET = "large_dataset"
UNKNOWN_OPERATION = "unknown_operation"
FACTOR_LABELS = {
    PERSONAL_DATA: "personal data",
    EXTERNAL_MODEL_CALL: "external model call",
    LARGE_DATASET: "large dataset",
    UNKNOWN_OPERATION: "unknown operation",
}
MODEL_TYPES = frozenset({"llm_call", "embedding"})
DATA_TYPES = frozenset({"data_access", "file_upload"})


@dataclass(frozen=True, slots=True)
class ModelCall:
    summary: OperationSummary
    model: str  # normalized; "" when the summary has none


NONE_VALUE = -1  # a maximum over no values: below every limit


@dataclass(frozen=True, slots=True)
class Features:
    """What the policies are evaluated on, computed once per decision so that each policy costs a few compares."""

    personal_paths: tuple[str, ...]
    personal_categories: tuple[str, ...]
    personal_where: str  # "context", or the first path when nothing was found in the context
    model_calls: tuple[ModelCall, ...]  # llm_call and embedding
    model_names: frozenset[str]
    external_models: tuple[ModelCall, ...]  # model calls on a provider that is not internal
    max_llm_tokens: int
    external_calls: int  # external_call operations
    data_operations: tuple[OperationSummary, ...]  # data_access and file_upload
    max_rows: int
    max_bytes: int
    unknown: tuple[OperationSummary, ...]

    @classmethod
    def of(cls, operations: Sequence[OperationSummary], personal_data: Sequence[PersonalDataFinding]) -> Features:
        paths = tuple(dict.fromkeys(finding.path for finding in personal_data))
        in_context = any(path == "context" or path.startswith(("context.", "context[")) for path in paths)
        model_calls = tuple(
            ModelCall(op, normalize_model(op.model or "")) for op in operations if op.type in MODEL_TYPES
        )
        data_operations = tuple(op for op in operations if op.type in DATA_TYPES)
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
                default=NONE_VALUE,
            ),
            external_calls=sum(1 for op in operations if op.type == "external_call"),
            data_operations=data_operations,
            max_rows=max((op.rows for op in data_operations if op.rows is not None), default=NONE_VALUE),
            max_bytes=max((op.bytes for op in data_operations if op.bytes is not None), default=NONE_VALUE),
            unknown=tuple(op for op in operations if not op.known_type),
        )

    def external_models_for(self, rules: CompiledRules) -> tuple[ModelCall, ...]:
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


def scorer(features: Features) -> Callable[[CompiledRules], tuple[int, bool]]:
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
class Breach:
    """A broken rule; its detail names the policy, so it is finished per policy: head + 'name' + tail."""

    rule: str
    head: str
    tail: str = ""


def breaches(features: Features, rules: CompiledRules) -> tuple[Breach, ...]:
    found: list[Breach] = []
    if rules.allowed_models is not None:
        refused = tuple(
            dict.fromkeys(
                call.summary.model or "" for call in features.model_calls if call.model not in rules.allowed_models
            )
        )
        if len(refused) == 1:
            found.append(Breach("allowed_models", f"Model '{refused[0]}' is not in the allowed models of policy "))
        elif refused:
            names = ", ".join(f"'{model}'" for model in refused)
            found.append(Breach("allowed_models", f"Models {names} are not in the allowed models of policy "))
    if rules.max_tokens is not None and features.max_llm_tokens > rules.max_tokens:
        over = [
            call.summary
            for call in features.model_calls
            if call.summary.type == "llm_call" and call.summary.tokens is not None
            if call.summary.tokens > rules.max_tokens
        ]
        more = f" (and {len(over) - 1} more)" if len(over) > 1 else ""
        found.append(
            Breach(
                "max_tokens",
                f"operations[{over[0].index}] requests {over[0].tokens} tokens{more}, "
                f"above the max_tokens of {rules.max_tokens} of policy ",
            )
        )
    if rules.max_external_calls is not None:
        count = features.external_calls + len(features.external_models_for(rules))
        if count > rules.max_external_calls:
            found.append(
                Breach(
                    "max_external_calls",
                    f"{count} external calls exceed the max_external_calls of {rules.max_external_calls} of policy ",
                )
            )
    if rules.block_personal_data and features.personal_paths:
        categories = ", ".join(features.personal_categories)
        found.append(
            Breach(
                "block_personal_data",
                f"Personal data ({categories}) detected in {features.personal_where}; policy ",
                " blocks personal data",
            )
        )
    return tuple(found)


def violations_of(policy: PolicySnapshot, breaches: tuple[Breach, ...]) -> list[Violation]:
    return [
        Violation(
            rule=breach.rule,
            policy_id=policy.policy_id,
            policy_version=policy.version,
            detail=f"{breach.head}'{policy.name}'{breach.tail}",
        )
        for breach in breaches
    ]


def factors_of(features: Features, rules: CompiledRules) -> tuple[Factor, ...]:
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


def labels_of(factors: tuple[Factor, ...]) -> str:
    return ", ".join(FACTOR_LABELS[factor.name] for factor in factors if factor.points > 0)
