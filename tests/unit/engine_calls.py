"""Calling the engine in the decision tests: a policy snapshot, a check of some operations under the guide's
policy (or others), what a decision says (its factors, the rules it broke), and the event that records it."""

from __future__ import annotations

import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.receipt_keys import ReceiptKeyring
from ingress.check.receipts import ReceiptSigner
from ingress.check.route import build_event
from ingress.engine import Decision, PolicySnapshot, decide
from schemas.check import CheckRequest
from schemas.decision_event import DecisionEvent
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


def event_of(decision: Decision, latency_ms: float = 1.0, payload: Any = None) -> DecisionEvent:
    """The decision event ingress publishes for ``decision`` (``build_event``, the check route's own), its receipt
    signed by a key made for the call; ``payload`` is the request the digest is taken of."""
    with tempfile.TemporaryDirectory() as keys:
        return build_event(
            request_id="req",
            customer_id=uuid.uuid4(),
            key_id="key",
            decision=decision,
            decided_at=datetime.now(UTC),
            latency_ms=latency_ms,
            payload=payload if payload is not None else {},
            signer=ReceiptSigner(ReceiptKeyring(Path(keys))),
        )
