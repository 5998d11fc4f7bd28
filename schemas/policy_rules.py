"""The rules a policy may hold, validated on write (admin API and CLI) and read by the engine.

An unknown rule or a wrong type is refused with the field named. Every rule is optional; an empty ``{}`` is a
policy that only scores.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt


class RiskWeights(BaseModel):
    """Points each risk factor adds to the score (the score is capped at 100)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    personal_data: StrictInt = Field(70, ge=0, le=100)
    external_model_call: StrictInt = Field(50, ge=0, le=100)
    large_dataset: StrictInt = Field(30, ge=0, le=100)
    unknown_operation: StrictInt = Field(20, ge=0, le=100)


class PolicyRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_external_calls: StrictInt | None = Field(None, ge=0, description="external calls allowed in one check")
    block_personal_data: StrictBool = Field(False, description="block any check in which personal data is found")
    allowed_models: list[str] | None = Field(None, description="models an llm_call may use; others are violations")
    max_tokens: StrictInt | None = Field(None, gt=0, description="tokens one llm_call may request")
    risk_threshold: StrictInt = Field(50, ge=0, le=100, description="block when the risk score reaches this")
    risk_weights: RiskWeights = Field(default_factory=RiskWeights)
    large_dataset_rows: StrictInt = Field(10_000, gt=0, description="a data_access of this many rows is large")
    large_dataset_bytes: StrictInt = Field(100 * 1024 * 1024, gt=0, description="... or of this many bytes")
