"""The decision engine in process: per decision (R2's engine side), against the number of policies, and the
personal-data scan against the size of the context."""

from __future__ import annotations

from functools import partial
from typing import Any

import orjson

from bench.timing import time_per_call_us
from bench.workload import KIB, business_context, check_request, policy_set
from ingress.engine import decide, detect_personal_data
from ingress.engine.policy_set import PolicySet
from schemas.check import CheckRequest

POLICY_COUNTS = (1, 10, 100, 1000)
CONTEXT_SIZES_KIB = (1, 4, 16, 64, 256, 1024)


def decision_us(seconds: float) -> float:
    """Microseconds per decision of the guide's request with a 1 KiB context under the guide's policy.

    The request is parsed once, as OPA's input is: both sides time the evaluation alone.
    """
    request = CheckRequest.model_validate(check_request(KIB))
    policies = policy_set(1, distinct=False)
    return time_per_call_us(lambda: decide(request, policies), seconds=seconds)


def _variants() -> list[CheckRequest]:
    """Requests that take every branch of a decision: personal data, a refused model, too many tokens, a large
    dataset, an unknown operation, many external calls."""
    base = check_request(KIB)
    personal = {**base, "context": {**base["context"], "contact": "jane.doe@example.com"}}
    operations = [
        {"type": "llm_call", "model": "llama-3", "tokens": 20_000, "provider": "openai"},
        {"type": "data_access", "dataset": "orders", "rows": 50_000, "bytes": 5_000_000},
        {"type": "teleport", "where": "mars"},
        *({"type": "external_call", "target": f"https://api{i}.example.com"} for i in range(8)),
    ]
    return [CheckRequest.model_validate(body) for body in (base, personal, {**base, "operations": operations})]


def paths_agree(policies: PolicySet) -> bool:
    """Whether a prepared policy set (indexed once, bit sets from ``VECTOR_FROM`` rule sets) decides exactly as the
    same policies unprepared (grouped on the fly and evaluated one rule set at a time)."""
    return all(decide(request, policies) == decide(request, tuple(policies)) for request in _variants())


def policy_scaling(seconds: float) -> dict[str, Any]:
    """Engine time at 1…1000 policies per customer, with one rule set for all and with a rule set for each.

    The policies are a ``PolicySet``, as the customer configuration holds them.
    """
    request = CheckRequest.model_validate(check_request(KIB))
    result: dict[str, Any] = {"paths_agree": True}
    for label, distinct in (("identical_rules", False), ("distinct_rules", True)):
        times: dict[str, float] = {}
        for count in POLICY_COUNTS:
            policies = policy_set(count, distinct=distinct)
            decision = decide(request, policies)
            if not decision.allowed:  # every set allows the guide's request: the same path at every count
                raise AssertionError(f"{label} x{count}: {decision.reason}")
            result["paths_agree"] = result["paths_agree"] and paths_agree(policies)
            times[str(count)] = round(
                time_per_call_us(partial(decide, request, policies), seconds=seconds / len(POLICY_COUNTS)), 2
            )
        result[label] = {
            "us_per_decision": times,
            "ratio_1000_to_1": round(times[str(POLICY_COUNTS[-1])] / times[str(POLICY_COUNTS[0])], 3),
        }
    result["worst_ratio_1000_to_1"] = max(
        result[label]["ratio_1000_to_1"] for label in ("identical_rules", "distinct_rules")
    )
    return result


def context_scaling(seconds: float, sizes_kib: tuple[int, ...] = CONTEXT_SIZES_KIB) -> dict[str, Any]:
    """Personal-data scan time per KiB of context, from 1 KiB to 1 MiB."""
    rows = []
    for size in sizes_kib:
        context = business_context(size * KIB)
        actual_kib = len(orjson.dumps(context)) / KIB
        us = time_per_call_us(partial(detect_personal_data, context), seconds=seconds / len(sizes_kib))
        rows.append({"kib": round(actual_kib, 1), "us": round(us, 1), "us_per_kib": round(us / actual_kib, 2)})
    first, last = rows[0]["us_per_kib"], rows[-1]["us_per_kib"]
    return {
        "sizes": rows,
        "us_per_kib_largest_to_smallest": round(last / first, 3) if first else None,
    }
