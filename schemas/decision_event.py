"""``DecisionEvent`` v1: what is published to ``governance.decisions.v1`` for every decision we return.

It carries what an analyst or a replay needs (operation summaries, detected personal-data categories and field
paths, factors, violations, the policy versions that decided) and never a raw personal-data value or a key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from schemas.event_schema import every_field_required
from schemas.receipt import Receipt

EVENT_TYPE: Literal["decision"] = "decision"
SCHEMA_VERSION: Literal[1] = 1


class OperationSummary(BaseModel):
    """The non-personal features of one requested operation: enough to replay the decision exactly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int = Field(ge=0)
    type: str
    model: str | None = None
    provider: str | None = None
    tokens: int | None = None
    dataset: str | None = None
    rows: int | None = None
    bytes: int | None = None
    target: str | None = None
    external: bool = False
    known_type: bool = True


class PersonalDataFinding(BaseModel):
    """A detected personal-data category and where it was found. Never the value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    category: str
    path: str


class Factor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    points: int
    detail: str = ""
    paths: list[str] = Field(default_factory=list)


class Violation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str
    policy_id: str
    policy_version: int
    detail: str = ""


class PolicyRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    policy_id: str
    version: int
    mode: Literal["enforce", "shadow"] = "enforce"


class ShadowOutcome(BaseModel):
    """What a shadow policy would have decided; it never affects the response."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy_id: str
    version: int
    allowed: bool
    risk_score: int
    violations: list[Violation] = Field(default_factory=list)


class BudgetUsage(BaseModel):
    """One session budget as counted for this check: enough to replay the decision without Redis."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy_id: str
    policy_version: int
    budget: str
    scope: Literal["session_id", "user_id"]
    counts: str
    window_s: int
    window_start: int  # epoch seconds
    requested: int  # what this check would use
    used: int  # used in the window after this check (unchanged when refused)
    limit: int
    exceeded: bool


class DecisionEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=every_field_required)

    schema_version: Literal[1] = SCHEMA_VERSION
    event_type: Literal["decision"] = EVENT_TYPE
    event_id: UUID
    request_id: str
    customer_id: UUID
    key_id: str
    decided_at: datetime
    allowed: bool
    risk_score: int = Field(ge=0, le=100)
    threshold: int = Field(ge=0, le=100)
    reason: str
    factors: list[Factor] = Field(default_factory=list)
    violations: list[Violation] = Field(default_factory=list)
    policies: list[PolicyRef] = Field(default_factory=list)
    operations: list[OperationSummary] = Field(default_factory=list)
    personal_data: list[PersonalDataFinding] = Field(default_factory=list)
    shadow: list[ShadowOutcome] = Field(default_factory=list)
    budgets: list[BudgetUsage] = Field(default_factory=list)
    latency_ms: float = Field(ge=0)
    request_digest: str = ""
    receipt: Receipt | None = None

    @property
    def decision(self) -> Literal["allow", "block"]:
        return "allow" if self.allowed else "block"
