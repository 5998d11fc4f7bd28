"""``POST /v1/check``: the request (typed operations and a free-form context) and the response. No I/O.

Known operation types have typed, closed schemas (an unknown field or a wrong type is refused with the field
named). An operation of any other ``type`` is accepted as an :class:`UnknownOperation` that keeps its fields; the
engine scores it as an unknown operation rather than refusing the check.

The limits below are enforced on the raw request before it is parsed, so that a hostile body costs at most one
bounded walk: more than :data:`MAX_OPERATIONS` operations, containers nested deeper than
:data:`MAX_DEPTH` levels, or a string (value or key) longer than :data:`MAX_STRING` characters is a validation
error that names the limit.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import SplitResult, urlsplit

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator
from pydantic_core import PydanticCustomError

from schemas.decision_event import Factor, Violation

MAX_OPERATIONS = 100
MAX_DEPTH = 32
MAX_STRING = 65_536
MAX_TYPE_LENGTH = 64
# Counts (tokens, rows, bytes) fit a signed 64-bit column downstream.
MAX_COUNT = 2**63 - 1

Count = Annotated[int, Field(strict=True, ge=0, le=MAX_COUNT)]
Name = Annotated[str, Field(min_length=1)]
JsonObject = dict[str, Any]


def split_target(target: str) -> SplitResult:
    """Split an ``external_call`` target (a URL or a bare ``host[:port][/path]``) into URL parts."""
    text = target.strip()
    return urlsplit(text if "://" in text else f"//{text}")


def target_host(target: str) -> str:
    """The lower-cased host of a target, without scheme, credentials, port or path ("" when there is none)."""
    try:
        return split_target(target).hostname or ""
    except ValueError:
        return ""


class _KnownOperation(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    metadata: JsonObject | None = Field(None, description="free-form tags; scanned for personal data")


class LlmCall(_KnownOperation):
    """A call to a generative model."""

    type: Literal["llm_call"]
    model: Name
    provider: str | None = Field(None, description="e.g. openai, anthropic; 'internal' or 'self-hosted' is ours")
    tokens: Count | None = Field(None, description="tokens the call may use (prompt and completion)")
    prompt: str | None = None
    messages: list[JsonObject] | None = Field(None, description="chat messages, e.g. {role, content}")


class Embedding(_KnownOperation):
    """A call to an embedding model."""

    type: Literal["embedding"]
    model: Name
    provider: str | None = None
    tokens: Count | None = None
    input: str | list[str] | None = None


class DataAccess(_KnownOperation):
    """Reading a dataset (a table, a bucket, an index)."""

    type: Literal["data_access"]
    dataset: Name
    rows: Count | None = None
    bytes: Count | None = None
    fields: list[str] | None = Field(None, description="field names read; personal-data names are findings")
    purpose: str | None = None
    query: str | None = None


class ExternalCall(_KnownOperation):
    """A call to a system outside the customer's boundary (an HTTP API, a webhook, a SaaS)."""

    type: Literal["external_call"]
    target: Name = Field(description="a URL or a host name")
    method: str | None = None
    payload: JsonObject | list[Any] | str | None = None

    @field_validator("target")
    @classmethod
    def _target_has_host(cls, value: str) -> str:
        if any(ch.isspace() for ch in value.strip()) or not target_host(value):
            raise PydanticCustomError("invalid_target", "target must be a URL or a host name")
        return value


class ToolCall(_KnownOperation):
    """An agent invoking a tool or function."""

    type: Literal["tool_call"]
    tool: Name
    arguments: JsonObject | None = None


class FileUpload(_KnownOperation):
    """Sending a file somewhere (a model provider's file API, a bucket, a share)."""

    type: Literal["file_upload"]
    destination: Name = Field(description="a URL or a host name")
    filename: str | None = None
    content_type: str | None = None
    bytes: Count | None = None

    @field_validator("destination")
    @classmethod
    def _destination_has_host(cls, value: str) -> str:
        if any(ch.isspace() for ch in value.strip()) or not target_host(value):
            raise PydanticCustomError("invalid_destination", "destination must be a URL or a host name")
        return value


class UnknownOperation(BaseModel):
    """An operation of a type we do not know: accepted, its fields kept, scored as an unknown operation."""

    model_config = ConfigDict(extra="allow", strict=True)

    type: str = Field(min_length=1, max_length=MAX_TYPE_LENGTH)

    @field_validator("type")
    @classmethod
    def _type_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("blank_type", "type must not be blank")
        return value

    @property
    def attributes(self) -> dict[str, Any]:
        """Every field other than ``type``, as sent."""
        return dict(self.model_extra or {})


KnownOperation = LlmCall | Embedding | DataAccess | ExternalCall | ToolCall | FileUpload
KNOWN_OPERATION_TYPES: frozenset[str] = frozenset(
    {"llm_call", "embedding", "data_access", "external_call", "tool_call", "file_upload"}
)
_UNKNOWN_TAG = "unknown"


def _operation_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if isinstance(kind, str) and kind in KNOWN_OPERATION_TYPES else _UNKNOWN_TAG


Operation = Annotated[
    Annotated[LlmCall, Tag("llm_call")]
    | Annotated[Embedding, Tag("embedding")]
    | Annotated[DataAccess, Tag("data_access")]
    | Annotated[ExternalCall, Tag("external_call")]
    | Annotated[ToolCall, Tag("tool_call")]
    | Annotated[FileUpload, Tag("file_upload")]
    | Annotated[UnknownOperation, Tag(_UNKNOWN_TAG)],
    Discriminator(_operation_tag),
]


def _operations_limit_error(operations: Any) -> PydanticCustomError | None:
    """The first limit the raw operations break, or None."""
    if not isinstance(operations, list):
        return None
    if len(operations) > MAX_OPERATIONS:
        return PydanticCustomError(
            "too_many_operations",
            "at most {limit} operations are allowed in one check, got {count}",
            {"limit": MAX_OPERATIONS, "count": len(operations)},
        )
    for index, operation in enumerate(operations):
        if isinstance(operation, dict):
            for key, value in operation.items():
                error = _walk_limits(key, f"operations[{index}]") or _walk_limits(value, f"operations[{index}].{key}")
                if error is not None:
                    return error
    return None


def _walk_limits(root: Any, root_path: str) -> PydanticCustomError | None:
    # Each entry: (value, depth, parent entry, key or index). Paths are built only for an error message.
    stack: list[tuple[Any, int, Any, object]] = [(root, 1, None, None)]
    while stack:
        entry = stack.pop()
        value, depth = entry[0], entry[1]
        if isinstance(value, str):
            if len(value) > MAX_STRING:
                return PydanticCustomError(
                    "string_too_long",
                    "string longer than {limit} characters at {path}",
                    {"limit": MAX_STRING, "path": _entry_path(entry, root_path)},
                )
        elif isinstance(value, dict | list | tuple):
            if depth > MAX_DEPTH:
                return PydanticCustomError(
                    "nesting_too_deep",
                    "{path} nesting exceeds the limit of {limit} levels",
                    {"limit": MAX_DEPTH, "path": root_path},
                )
            if isinstance(value, dict):
                for key, item in value.items():
                    if isinstance(key, str) and len(key) > MAX_STRING:
                        return PydanticCustomError(
                            "string_too_long",
                            "string longer than {limit} characters at {path} (a key)",
                            {"limit": MAX_STRING, "path": _entry_path(entry, root_path)},
                        )
                    stack.append((item, depth + 1, entry, key))
            else:
                stack.extend((item, depth + 1, entry, index) for index, item in enumerate(value))
    return None


_MAX_KEY_IN_MESSAGE = 64


def _entry_path(entry: tuple[Any, int, Any, object], root_path: str) -> str:
    segments: list[str] = []
    while entry[2] is not None:
        step = entry[3]
        if isinstance(step, int):
            segments.append(f"[{step}]")
        else:
            key = str(step)
            segments.append("." + (key if len(key) <= _MAX_KEY_IN_MESSAGE else key[:_MAX_KEY_IN_MESSAGE] + "…"))
        entry = entry[2]
    return root_path + "".join(reversed(segments))


class CheckRequest(BaseModel):
    """What the customer is about to do. The customer comes from the API key, never from the body."""

    model_config = ConfigDict(extra="forbid", strict=True)

    operations: list[Operation] = Field(min_length=1, max_length=MAX_OPERATIONS)
    context: JsonObject = Field(default_factory=dict, description="free-form; scanned for personal data")

    # Limits are checked on the raw input, before any parsing, in one bounded walk.
    @field_validator("operations", mode="before")
    @classmethod
    def _operations_within_limits(cls, value: Any) -> Any:
        error = _operations_limit_error(value)
        if error is not None:
            raise error
        return value

    @field_validator("context", mode="before")
    @classmethod
    def _context_within_limits(cls, value: Any) -> Any:
        error = _walk_limits(value, "context")
        if error is not None:
            raise error
        return value


class CheckResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allowed: bool
    risk_score: int = Field(ge=0, le=100)
    reason: str
    request_id: str
    event_id: str
    factors: list[Factor] = Field(default_factory=list)
    violations: list[Violation] = Field(default_factory=list)
