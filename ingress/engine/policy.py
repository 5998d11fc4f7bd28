"""A policy as the engine sees it, with its rules compiled once when the snapshot is made (not per decision)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from schemas.decision_event import PolicyRef
from schemas.policy_rules import PolicyRules


def normalize_model(model: str) -> str:
    """Model names compare case-insensitively, surrounding spaces ignored: ``GPT-4`` is ``gpt-4``."""
    return model.strip().casefold()


@dataclass(frozen=True, slots=True)
class CompiledRules:
    """The rules in the shape the hot path reads: plain ints, a frozenset of models."""

    key: str  # equal keys mean equal rules; evaluations are shared between policies with equal rules
    allowed_models: frozenset[str] | None
    max_tokens: int | None
    max_external_calls: int | None
    block_personal_data: bool
    threshold: int
    personal_data_points: int
    external_model_call_points: int
    large_dataset_points: int
    unknown_operation_points: int
    large_dataset_rows: int
    large_dataset_bytes: int

    @classmethod
    def of(cls, rules: PolicyRules) -> CompiledRules:
        weights = rules.risk_weights
        allowed = None if rules.allowed_models is None else frozenset(map(normalize_model, rules.allowed_models))
        return cls(
            key=rules.model_dump_json(),
            allowed_models=allowed,
            max_tokens=rules.max_tokens,
            max_external_calls=rules.max_external_calls,
            block_personal_data=rules.block_personal_data,
            threshold=rules.risk_threshold,
            personal_data_points=weights.personal_data,
            external_model_call_points=weights.external_model_call,
            large_dataset_points=weights.large_dataset,
            unknown_operation_points=weights.unknown_operation,
            large_dataset_rows=rules.large_dataset_rows,
            large_dataset_bytes=rules.large_dataset_bytes,
        )


DEFAULT_RULES = CompiledRules.of(PolicyRules())
"""What a customer without any enforce policy is scored with: default weights and threshold, no hard rules."""


@dataclass(frozen=True)
class PolicySnapshot:
    """One active policy version. Build it once when policies are loaded; it is immutable and reusable."""

    policy_id: str
    version: int
    name: str
    rules: PolicyRules
    mode: Literal["enforce", "shadow"] = "enforce"
    compiled: CompiledRules = field(init=False, repr=False, compare=False)
    ref: PolicyRef = field(init=False, repr=False, compare=False)
    group_key: str = field(init=False, repr=False, compare=False)
    """Equal for policies of the same mode and rules: the engine evaluates such a group once."""

    def __post_init__(self) -> None:
        # Frozen: the derived fields are set once, here, so that a decision does no per-policy set-up.
        compiled = CompiledRules.of(self.rules)
        object.__setattr__(self, "compiled", compiled)
        object.__setattr__(self, "ref", PolicyRef(policy_id=self.policy_id, version=self.version, mode=self.mode))
        object.__setattr__(self, "group_key", f"{self.mode}:{compiled.key}")
