"""Hypothesis strategies for check requests (with and without personal data) and policies."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from ingress.engine import PolicySnapshot
from schemas.policy_rules import PolicyRules

PERSONAL_VALUES = [
    "jane@example.com",
    "call +44 20 7946 0958",
    "(555) 123-4567",
    "4111 1111 1111 1111",
    "DE89 3704 0044 0532 0130 00",
    "SSN 123-45-6789",
    "from 203.0.113.7",
    "born on 1990-01-15",
]
ORDINARY_VALUES = ["user_123", "session_abc", "engineering", "Q3 2024 report", "v1.2.3", "2024-01-15", "500", ""]
KEYS = ["user_id", "session_id", "department", "notes", "items", "email", "phone", "ssn", "address", "meta", "tags"]
MODELS = ["gpt-4", "claude-3", "gpt-5", "llama-3", "text-embedding-3"]
PROVIDERS = [None, "openai", "anthropic", "internal", "self-hosted"]

leaves = st.one_of(
    st.sampled_from(PERSONAL_VALUES),
    st.sampled_from(ORDINARY_VALUES),
    st.text(max_size=20),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)
json_values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children, max_size=4),
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), json_values, max_size=5)
counts = st.one_of(st.none(), st.integers(min_value=0, max_value=10**9))
texts = st.one_of(st.none(), st.sampled_from(PERSONAL_VALUES + ORDINARY_VALUES))


def _without_none(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


llm_calls = st.builds(
    lambda model, provider, tokens, prompt, metadata: _without_none(
        type="llm_call", model=model, provider=provider, tokens=tokens, prompt=prompt, metadata=metadata
    ),
    st.sampled_from(MODELS),
    st.sampled_from(PROVIDERS),
    st.one_of(st.none(), st.integers(min_value=0, max_value=50_000)),
    texts,
    st.one_of(st.none(), json_objects),
)
embeddings = st.builds(
    lambda model, provider, tokens, text: _without_none(
        type="embedding", model=model, provider=provider, tokens=tokens, input=text
    ),
    st.sampled_from(MODELS),
    st.sampled_from(PROVIDERS),
    counts,
    st.one_of(st.none(), texts, st.lists(st.sampled_from(PERSONAL_VALUES + ORDINARY_VALUES), max_size=3)),
)
data_accesses = st.builds(
    lambda dataset, rows, size, fields, purpose: _without_none(
        type="data_access", dataset=dataset, rows=rows, bytes=size, fields=fields, purpose=purpose
    ),
    st.sampled_from(["users", "orders", "events"]),
    st.one_of(st.none(), st.integers(min_value=0, max_value=50_000)),
    st.one_of(st.none(), st.integers(min_value=0, max_value=300 * 1024 * 1024)),
    st.one_of(st.none(), st.lists(st.sampled_from(KEYS), max_size=3)),
    texts,
)
external_calls = st.builds(
    lambda host, query, payload: _without_none(
        type="external_call", target=f"https://{host}/v1{query}", payload=payload
    ),
    st.sampled_from(["api.example.com", "hooks.example.org", "10.0.0.5"]),
    st.sampled_from(["", "?user=jane@example.com", "?page=2"]),
    st.one_of(st.none(), json_objects),
)
tool_calls = st.builds(
    lambda tool, arguments: _without_none(type="tool_call", tool=tool, arguments=arguments),
    st.sampled_from(["search", "send_email"]),
    st.one_of(st.none(), json_objects),
)
file_uploads = st.builds(
    lambda filename, size: _without_none(
        type="file_upload", destination="s3://bucket/key", filename=filename, bytes=size
    ),
    texts,
    st.one_of(st.none(), st.integers(min_value=0, max_value=300 * 1024 * 1024)),
)
unknown_operations = st.builds(
    lambda kind, extra: {**extra, "type": kind},
    st.sampled_from(["vector_search", "crm_lookup", "x"]),
    json_objects,
)
operations = st.one_of(
    llm_calls, embeddings, data_accesses, external_calls, tool_calls, file_uploads, unknown_operations
)
requests = st.fixed_dictionaries({"operations": st.lists(operations, min_size=1, max_size=6), "context": json_objects})

weights = st.fixed_dictionaries(
    {},
    optional={
        "personal_data": st.integers(0, 100),
        "external_model_call": st.integers(0, 100),
        "large_dataset": st.integers(0, 100),
        "unknown_operation": st.integers(0, 100),
    },
)
rules = st.fixed_dictionaries(
    {},
    optional={
        "max_external_calls": st.integers(0, 4),
        "block_personal_data": st.booleans(),
        "allowed_models": st.lists(st.sampled_from(MODELS), max_size=3),
        "max_tokens": st.integers(1, 40_000),
        "risk_threshold": st.integers(0, 100),
        "risk_weights": weights,
        "large_dataset_rows": st.integers(1, 40_000),
        "large_dataset_bytes": st.integers(1, 300 * 1024 * 1024),
    },
)


@st.composite
def policy_lists(draw: st.DrawFn, max_size: int = 4) -> list[PolicySnapshot]:
    drawn = draw(st.lists(st.tuples(rules, st.sampled_from(["enforce", "enforce", "shadow"])), max_size=max_size))
    return [
        PolicySnapshot(
            policy_id=f"pol_{index}",
            version=index + 1,
            name=f"policy {index}",
            rules=PolicyRules.model_validate(policy_rules),
            mode=mode,  # type: ignore[arg-type]
        )
        for index, (policy_rules, mode) in enumerate(drawn)
    ]
