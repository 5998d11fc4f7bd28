"""``schemas.check``: typed operations, unknown types, mass-assignment protection and the request limits."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from schemas.check import (
    MAX_DEPTH,
    MAX_OPERATIONS,
    MAX_STRING,
    CheckRequest,
    CheckResponse,
    DataAccess,
    Embedding,
    ExternalCall,
    FileUpload,
    LlmCall,
    ToolCall,
    UnknownOperation,
    target_host,
)
from schemas.decision_event import Factor, Violation

LLM = {"type": "llm_call", "model": "gpt-4", "tokens": 500}


def errors(payload: Any) -> list[ErrorDetails]:
    with pytest.raises(ValidationError) as caught:
        CheckRequest.model_validate(payload)
    return caught.value.errors(include_url=False, include_input=False)


def messages(payload: Any) -> str:
    return " | ".join(error["msg"] for error in errors(payload))


def nested(levels: int) -> dict[str, Any]:
    """A dict that is ``levels`` containers deep, itself included."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_the_guide_requests_validate() -> None:
    step4 = CheckRequest.model_validate(
        {"operations": [LLM], "context": {"user_id": "user_123", "session_id": "session_456"}}
    )
    part4 = CheckRequest.model_validate(
        {
            "operations": [{**LLM, "provider": "openai"}],
            "context": {"user_id": "user_123", "session_id": "session_abc", "department": "engineering"},
        }
    )
    assert isinstance(step4.operations[0], LlmCall)
    assert step4.operations[0].tokens == 500
    assert isinstance(part4.operations[0], LlmCall)
    assert part4.operations[0].provider == "openai"


def test_context_defaults_to_empty() -> None:
    assert CheckRequest.model_validate({"operations": [LLM]}).context == {}


@pytest.mark.parametrize("field", ["customer_id", "customerId", "allowed", "risk_score"])
def test_a_top_level_field_we_do_not_know_is_refused(field: str) -> None:
    found = errors({"operations": [LLM], field: "550e8400-e29b-41d4-a716-446655440000"})
    assert [(error["type"], error["loc"]) for error in found] == [("extra_forbidden", (field,))]


def test_operations_are_required_and_not_empty() -> None:
    assert errors({"context": {}})[0]["loc"] == ("operations",)
    assert errors({"operations": []})[0]["type"] == "too_short"


def test_at_most_100_operations() -> None:
    assert len(CheckRequest.model_validate({"operations": [LLM] * MAX_OPERATIONS}).operations) == 100
    found = errors({"operations": [LLM] * (MAX_OPERATIONS + 1)})
    assert found[0]["loc"] == ("operations",)
    assert "at most 100 operations" in found[0]["msg"]


@pytest.mark.parametrize(
    ("operation", "model"),
    [
        ({"type": "llm_call", "model": "m", "provider": "p", "tokens": 1, "prompt": "x", "metadata": {}}, LlmCall),
        ({"type": "llm_call", "model": "m", "messages": [{"role": "user", "content": "hi"}]}, LlmCall),
        ({"type": "embedding", "model": "m", "provider": "p", "tokens": 0, "input": ["a", "b"]}, Embedding),
        (
            {"type": "data_access", "dataset": "d", "rows": 0, "bytes": 10, "fields": ["a"], "purpose": "x"},
            DataAccess,
        ),
        ({"type": "data_access", "dataset": "d", "query": "select 1"}, DataAccess),
        (
            {"type": "external_call", "target": "https://api.example.com/v1", "method": "POST", "payload": {}},
            ExternalCall,
        ),
        ({"type": "external_call", "target": "api.example.com"}, ExternalCall),
        ({"type": "tool_call", "tool": "search", "arguments": {"q": "x"}}, ToolCall),
        ({"type": "file_upload", "destination": "s3://bucket/key", "filename": "a.csv", "bytes": 3}, FileUpload),
    ],
)
def test_known_operation_types_parse_to_their_model(operation: dict[str, Any], model: type) -> None:
    assert isinstance(CheckRequest.model_validate({"operations": [operation]}).operations[0], model)


@pytest.mark.parametrize(
    ("operation", "field", "kind"),
    [
        ({**LLM, "temperature": 0.2}, "temperature", "extra_forbidden"),
        ({**LLM, "tokens": "500"}, "tokens", "int_type"),
        ({**LLM, "tokens": True}, "tokens", "int_type"),
        ({**LLM, "tokens": 1.5}, "tokens", "int_type"),
        ({**LLM, "tokens": -1}, "tokens", "greater_than_equal"),
        ({"type": "llm_call", "tokens": 5}, "model", "missing"),
        ({"type": "llm_call", "model": ""}, "model", "string_too_short"),
        ({"type": "llm_call", "model": 4}, "model", "string_type"),
        ({"type": "data_access", "dataset": "d", "rows": -5}, "rows", "greater_than_equal"),
        ({"type": "data_access", "dataset": "d", "fields": "email"}, "fields", "list_type"),
        ({"type": "external_call", "target": "not a host"}, "target", "invalid_target"),
        ({"type": "external_call", "target": "https://"}, "target", "invalid_target"),
        ({"type": "tool_call", "tool": "t", "arguments": [1]}, "arguments", "dict_type"),
        ({"type": "file_upload", "destination": "  "}, "destination", "invalid_destination"),
    ],
)
def test_a_known_type_refuses_a_wrong_field_by_name(operation: dict[str, Any], field: str, kind: str) -> None:
    found = errors({"operations": [operation]})
    assert found[0]["loc"][-1] == field
    assert found[0]["loc"][:3] == ("operations", 0, operation["type"])
    assert found[0]["type"] == kind


def test_an_unknown_type_is_accepted_and_keeps_its_fields() -> None:
    request = CheckRequest.model_validate(
        {"operations": [{"type": "vector_search", "index": "docs", "k": 5, "filters": {"team": "a"}}]}
    )
    operation = request.operations[0]
    assert isinstance(operation, UnknownOperation)
    assert operation.type == "vector_search"
    assert operation.attributes == {"index": "docs", "k": 5, "filters": {"team": "a"}}
    assert request.model_dump()["operations"][0] == {
        "type": "vector_search",
        "index": "docs",
        "k": 5,
        "filters": {"team": "a"},
    }


@pytest.mark.parametrize(
    ("operation", "kind"),
    [
        ({"type": ""}, "string_too_short"),
        ({"type": "x" * 65}, "string_too_long"),
        ({"type": "   "}, "blank_type"),
        ({"type": 7}, "string_type"),
        ({"model": "gpt-4"}, "missing"),
    ],
)
def test_type_must_be_a_non_empty_string_of_at_most_64_characters(operation: dict[str, Any], kind: str) -> None:
    found = errors({"operations": [operation]})
    assert found[0]["type"] == kind
    assert found[0]["loc"][:2] == ("operations", 0)


def test_an_operation_must_be_an_object() -> None:
    assert errors({"operations": ["llm_call"]})[0]["loc"][:2] == ("operations", 0)


def test_type_of_64_characters_is_accepted() -> None:
    assert CheckRequest.model_validate({"operations": [{"type": "x" * 64}]}).operations[0].type == "x" * 64


def test_nesting_up_to_the_limit_is_accepted() -> None:
    CheckRequest.model_validate({"operations": [LLM], "context": nested(MAX_DEPTH)})
    CheckRequest.model_validate({"operations": [{**LLM, "metadata": nested(MAX_DEPTH)}]})


def test_context_nesting_beyond_the_limit_is_refused() -> None:
    found = errors({"operations": [LLM], "context": nested(MAX_DEPTH + 1)})
    assert found[0]["loc"] == ("context",)
    assert found[0]["msg"] == "context nesting exceeds the limit of 32 levels"


def test_lists_count_as_levels_too() -> None:
    value: Any = []
    for _ in range(MAX_DEPTH):
        value = [value]
    assert "nesting exceeds the limit of 32 levels" in messages({"operations": [LLM], "context": {"a": value}})


def test_operation_payload_nesting_beyond_the_limit_is_refused() -> None:
    found = errors({"operations": [LLM, {**LLM, "metadata": nested(MAX_DEPTH + 1)}]})
    assert found[0]["loc"] == ("operations",)
    assert found[0]["msg"] == "operations[1].metadata nesting exceeds the limit of 32 levels"
    unknown = messages({"operations": [{"type": "custom", "blob": nested(MAX_DEPTH + 1)}]})
    assert unknown == "operations[0].blob nesting exceeds the limit of 32 levels"


def test_very_deep_input_is_refused_without_recursing() -> None:
    assert "nesting exceeds the limit" in messages({"operations": [LLM], "context": nested(50_000)})


def test_strings_up_to_the_limit_are_accepted() -> None:
    CheckRequest.model_validate(
        {"operations": [{**LLM, "prompt": "x" * MAX_STRING}], "context": {"n": "x" * MAX_STRING}}
    )


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ({"operations": [LLM], "context": {"notes": "x" * (MAX_STRING + 1)}}, "context.notes"),
        ({"operations": [LLM], "context": {"items": ["a", "b", "x" * (MAX_STRING + 1)]}}, "context.items[2]"),
        ({"operations": [LLM], "context": {"user": {"bio": "x" * (MAX_STRING + 1)}}}, "context.user.bio"),
        ({"operations": [{**LLM, "prompt": "x" * (MAX_STRING + 1)}]}, "operations[0].prompt"),
        ({"operations": [{"type": "custom", "note": "x" * (MAX_STRING + 1)}]}, "operations[0].note"),
    ],
)
def test_a_string_beyond_the_limit_is_refused_with_its_path(payload: dict[str, Any], path: str) -> None:
    assert messages(payload) == f"string longer than 65536 characters at {path}"


def test_a_key_beyond_the_limit_is_refused() -> None:
    assert "string longer than 65536 characters at context" in messages(
        {"operations": [LLM], "context": {"k" * (MAX_STRING + 1): 1}}
    )


def test_target_host_keeps_only_the_host() -> None:
    assert target_host("https://user:secret@API.Example.com:8443/v1/users?email=a@b.co") == "api.example.com"
    assert target_host("api.example.com/v1") == "api.example.com"
    assert target_host("10.0.0.5:8080") == "10.0.0.5"
    assert target_host("http://[::1") == ""


def test_check_response_shape() -> None:
    response = CheckResponse(
        allowed=False,
        risk_score=70,
        reason="Personal data detected in context",
        request_id="req_1",
        event_id="6f1c0b8e-0000-4000-8000-000000000000",
        factors=[Factor(name="personal_data", points=70, paths=["context.email"])],
        violations=[Violation(rule="block_personal_data", policy_id="p", policy_version=1)],
    )
    assert response.model_dump()["factors"][0]["paths"] == ["context.email"]
    with pytest.raises(ValidationError):
        CheckResponse(allowed=True, risk_score=101, reason="", request_id="r", event_id="e")
    with pytest.raises(ValidationError):
        CheckResponse.model_validate(
            {"allowed": True, "risk_score": 0, "reason": "", "request_id": "r", "event_id": "e", "extra": 1}
        )


def test_json_schemas_export() -> None:
    request = CheckRequest.model_json_schema()
    assert request["additionalProperties"] is False
    assert {"LlmCall", "DataAccess", "ExternalCall", "UnknownOperation"} <= set(request["$defs"])
    assert "event_id" in CheckResponse.model_json_schema()["properties"]
