"""The rules a policy may hold, validated on write (admin API and CLI) and read by the engine.

An unknown rule or a wrong type is refused with the field named. Every rule is optional; an empty ``{}`` is a
policy that only scores.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from schemas.check import MAX_COUNT


class RiskWeights(BaseModel):
    """Points each risk factor adds to the score (the score is capped at 100)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    personal_data: StrictInt = Field(70, ge=0, le=100)
    external_model_call: StrictInt = Field(50, ge=0, le=100)
    large_dataset: StrictInt = Field(30, ge=0, le=100)
    unknown_operation: StrictInt = Field(20, ge=0, le=100)


class SessionBudget(BaseModel):
    """A budget over a window per session or per user, e.g. "at most 3 external model calls per session per day".

    Counted atomically in Redis per (policy, budget, session or user, window); the check that would exceed it is
    blocked with the rule ``session_budget``. A check without the scope's field in its context is not counted.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, description="a label, unique within the policy")
    scope: Literal["session_id", "user_id"] = Field(description="the context field the budget is kept per")
    counts: Literal["operations", "external_model_calls", "personal_data_operations", "llm_tokens"]
    limit: StrictInt = Field(gt=0, le=MAX_COUNT, description="what one session or user may use in one window")
    window_s: StrictInt = Field(gt=0, le=31 * 86_400, description="the window, in seconds (86400 = a day)")


class PolicyRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_external_calls: StrictInt | None = Field(
        None, ge=0, le=MAX_COUNT, description="external calls allowed in one check"
    )
    block_personal_data: StrictBool = Field(False, description="block any check in which personal data is found")
    allowed_models: list[str] | None = Field(None, description="models an llm_call may use; others are violations")
    max_tokens: StrictInt | None = Field(None, gt=0, le=MAX_COUNT, description="tokens one llm_call may request")
    risk_threshold: StrictInt = Field(50, ge=0, le=100, description="block when the risk score reaches this")
    risk_weights: RiskWeights = Field(default_factory=RiskWeights)
    large_dataset_rows: StrictInt = Field(
        10_000, gt=0, le=MAX_COUNT, description="a data_access of this many rows is large"
    )
    large_dataset_bytes: StrictInt = Field(
        100 * 1024 * 1024, gt=0, le=MAX_COUNT, description="... or of this many bytes"
    )
    session_budgets: list[SessionBudget] = Field(default_factory=list, max_length=20)

    @field_validator("session_budgets")
    @classmethod
    def _unique_budget_names(cls, budgets: list[SessionBudget]) -> list[SessionBudget]:
        names = [budget.name for budget in budgets]
        if len(set(names)) != len(names):
            raise ValueError("session budget names must be unique within a policy")
        return budgets
