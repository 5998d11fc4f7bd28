"""What the decision engine records: ``decide`` is ``decide_from_features`` of the request, changes nothing and
repeats; operation summaries and the recorded event carry no personal data value, only its category and path."""

from __future__ import annotations

import json

from ingress.engine import decide, decide_from_features, summarize_operations
from schemas.check import CheckRequest
from schemas.decision_event import DecisionEvent
from tests.unit.engine_calls import GUIDE_POLICY, check, event_of, llm, policy


def test_decide_is_decide_from_features_of_the_request() -> None:
    request = CheckRequest.model_validate(
        {
            "operations": [llm(prompt="hi jane@example.com"), {"type": "x", "e": "bob@example.org"}],
            "context": {"ip": "1.2.3.4"},
        }
    )
    decision = decide(request, (GUIDE_POLICY,))
    assert decision.operations == summarize_operations(request)
    assert decision == decide_from_features(decision.operations, decision.personal_data, (GUIDE_POLICY,))


def test_decide_does_not_change_its_inputs_and_is_repeatable() -> None:
    payload = {"operations": [llm(prompt="x", metadata={"a": [1, {"b": "jane@example.com"}]})], "context": {"k": "v"}}
    request = CheckRequest.model_validate(payload)
    before = request.model_dump()
    assert decide(request, (GUIDE_POLICY,)) == decide(request, (GUIDE_POLICY,))
    assert request.model_dump() == before


def test_summaries_hold_no_personal_data() -> None:
    request = CheckRequest.model_validate(
        {
            "operations": [
                {"type": "external_call", "target": "https://bob:pw@api.example.com/users?email=jane@example.com"},
                {"type": "data_access", "dataset": "export for jane@example.com"},
                {"type": "tool_call", "tool": "lookup", "arguments": {"phone": "+44 20 7946 0958"}},
            ]
        }
    )
    decision = decide(request, (GUIDE_POLICY,))
    summaries = decision.operations
    assert summaries[0].target == "api.example.com"
    assert summaries[0].external is True
    assert summaries[1].dataset == "<redacted>"
    assert summaries[2].target == "lookup"
    assert {(f.category, f.path) for f in decision.personal_data} == {
        ("email", "operations[0].target"),
        ("email", "operations[1].dataset"),
        ("phone", "operations[2].arguments.phone"),
    }


def test_the_recorded_event_never_carries_a_personal_data_value() -> None:
    secrets = ["jane@example.com", "+44 20 7946 0958", "4111 1111 1111 1111", "123-45-6789", "DE89370400440532013000"]
    request = CheckRequest.model_validate(
        {
            "operations": [
                llm(prompt=f"card {secrets[2]}", messages=[{"role": "user", "content": secrets[1]}]),
                {"type": "custom", "owner": secrets[0], secrets[0]: 1},
                {"type": "external_call", "target": f"https://api.example.com/?e={secrets[0]}"},
            ],
            "context": {"ssn": secrets[3], "notes": f"iban {secrets[4]}"},
        }
    )
    decision = decide(request, (GUIDE_POLICY, policy({}, mode="shadow", policy_id="s")))
    event = event_of(decision, latency_ms=0.1, payload=request.model_dump(mode="json"))
    text = event.model_dump_json()
    for secret in secrets:
        assert secret not in text
        assert secret.replace(" ", "") not in text
    assert {f.category for f in decision.personal_data} == {"email", "phone", "payment_card", "ssn", "iban"}
    replayed = DecisionEvent.model_validate(json.loads(text))
    assert decide_from_features(replayed.operations, replayed.personal_data, (GUIDE_POLICY,)).allowed is False


def test_data_access_of_personal_fields_is_personal_data() -> None:
    decision = check([{"type": "data_access", "dataset": "users", "fields": ["id", "email", "dateOfBirth"]}])
    assert [(f.category, f.path) for f in decision.personal_data] == [
        ("email", "operations[0].fields[1]"),
        ("date_of_birth", "operations[0].fields[2]"),
    ]
    assert decision.reason == "Personal data detected in operations[0].fields[1]"
