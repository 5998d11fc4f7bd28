"""What the benchmark sends and decides: the integrator guide's request and policy, contexts of a given size, and
policy sets of a given count. Deterministic, so two runs measure the same work."""

from __future__ import annotations

from typing import Any, Final

import orjson

from ingress.engine import PolicySnapshot
from ingress.engine.policy_set import PolicySet
from schemas.policy_rules import PolicyRules

# docs/integrators.md, step 4, and the policy it is decided under (tests/ingress/check/test_check.py holds the
# same two).
GUIDE_RULES: Final[dict[str, Any]] = {
    "max_external_calls": 5,
    "block_personal_data": True,
    "allowed_models": ["gpt-4", "claude-3"],
    "max_tokens": 10000,
}
GUIDE_STEP4: Final[dict[str, Any]] = {
    "operations": [{"type": "llm_call", "model": "gpt-4", "tokens": 500}],
    "context": {"user_id": "user_123", "session_id": "session_456"},
}

# The personal-data variant: the same call with an e-mail address and a phone number in its context, which the
# guide's policy blocks (block_personal_data): every check is answered, one in four with a blocked decision.
GUIDE_STEP4_PERSONAL: Final[dict[str, Any]] = {
    "operations": [{"type": "llm_call", "model": "gpt-4", "tokens": 500}],
    "context": {"user_id": "user_123", "email": "jane.doe@example.com", "phone": "+1 415 555 0132"},
}
PERSONAL_SHARE: Final = 0.25

KIB: Final = 1024


def _record(index: int) -> dict[str, Any]:
    # Ordinary business text: ids, amounts, dates and prose, the kind of value a context carries. Nothing in it is
    # personal data, so every candidate the scanner considers is confirmed and dropped (the common, allowed path).
    return {
        "order_id": f"ORD-{index:06d}",
        "created_at": f"2025-0{1 + index % 9}-1{index % 10}T10:{index % 60:02d}:00Z",
        "title": f"Quarterly review of region {index % 12}",
        "note": "Summarise the revenue figures by product line and flag anything that changed by more than 5%.",
        "amount": round(1250.5 + index * 3.25, 2),
        "quantity": index % 17,
        "tags": ["finance", "q3", f"team-{index % 5}"],
    }


def business_context(size_bytes: int) -> dict[str, Any]:
    """A JSON object of about ``size_bytes`` bytes (serialised), made of ordinary business records."""
    context: dict[str, Any] = {"user_id": "user_123", "session_id": "session_456", "records": []}
    records: list[dict[str, Any]] = context["records"]
    size = len(orjson.dumps(context))
    index = 0
    while size < size_bytes:
        record = _record(index)
        size += len(orjson.dumps(record)) + 1
        records.append(record)
        index += 1
    return context


def check_request(context_bytes: int = KIB) -> dict[str, Any]:
    """The guide's step 4 with a context of ``context_bytes``."""
    return {**GUIDE_STEP4, "context": business_context(context_bytes)}


def _distinct_rules(index: int) -> dict[str, Any]:
    # Every policy different in every rule the engine reads, and every one of them allowing the guide's request.
    return {
        "max_external_calls": 5 + index % 7,
        "block_personal_data": index % 2 == 0,
        "allowed_models": ["gpt-4", "claude-3", f"model-{index}"],
        "max_tokens": 10_000 + index,
        "risk_threshold": 51 + index % 49,
        "risk_weights": {
            "personal_data": 60 + index % 40,
            "external_model_call": 10 + index % 30,
            "large_dataset": 20 + index % 50,
            "unknown_operation": 5 + index % 20,
        },
        "large_dataset_rows": 10_000 + index * 10,
        "large_dataset_bytes": 1_000_000 + index * 1000,
    }


def policy_set(count: int, *, distinct: bool) -> PolicySet:
    """``count`` enforce policies, as a customer's configuration holds them: all with the guide's rules, or each
    with rules of its own."""
    return PolicySet(
        PolicySnapshot(
            policy_id=f"00000000-0000-0000-0000-{index:012d}",
            version=1,
            name=f"bench policy {index}",
            rules=PolicyRules.model_validate(_distinct_rules(index) if distinct else GUIDE_RULES),
        )
        for index in range(count)
    )
