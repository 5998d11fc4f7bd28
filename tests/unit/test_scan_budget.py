"""The per-request scan budget: past it, the check fails closed with a reason naming the limit, and the stop is
recorded as a finding of its own (never as personal data)."""

from __future__ import annotations

from ingress.engine import decide
from ingress.engine.personal_data import SCAN_BUDGET_CHARS, SCAN_LIMIT, Scanner
from schemas.check import CheckRequest


def _request(prompt: str, context: dict[str, object] | None = None) -> CheckRequest:
    return CheckRequest.model_validate(
        {"operations": [{"type": "llm_call", "model": "gpt-4", "prompt": prompt}], "context": context or {}}
    )


def test_text_that_normalisation_lengthens_past_the_budget_fails_closed() -> None:
    # One U+FDFA becomes 18 characters under NFKC: 60 000 of them are over a million.
    decision = decide(_request("\ufdfa" * 60_000), ())
    assert decision.allowed is False
    assert decision.violations[0].rule == SCAN_LIMIT
    assert str(SCAN_BUDGET_CHARS) in decision.reason
    assert "operations[0].prompt" in decision.reason
    assert [(f.category, f.path) for f in decision.personal_data] == [(SCAN_LIMIT, "operations[0].prompt")]


def test_a_request_within_the_budget_is_scanned_whole() -> None:
    decision = decide(_request("hello " * 1000, {"note": "mail jane@example.com"}), ())
    assert all(f.category != SCAN_LIMIT for f in decision.personal_data)
    assert ("email", "context.note") in {(f.category, f.path) for f in decision.personal_data}


def test_the_scan_stops_where_the_budget_runs_out() -> None:
    scanner = Scanner(budget=100)
    scanner.scan({"first": "a" * 60, "second": "b" * 60, "third": "jane@example.com"}, "context")
    assert scanner.exhausted
    assert [(f.category, f.path) for f in scanner.findings()] == [(SCAN_LIMIT, "context.second")]


def test_the_stop_is_not_personal_data_to_the_policies() -> None:
    # A blocked decision names the limit, not personal data, even under a policy that blocks personal data.
    decision = decide(_request("\ufdfa" * 60_000), ())
    assert not decision.reason.startswith("Personal data")
