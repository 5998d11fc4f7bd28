"""Admin API contracts: customers, their API keys and policies (requests and responses). No I/O.

Requests forbid unknown fields, so a field the server owns (``id``, ``created_at``, ``version``, ``key_hash``…)
is refused with its path rather than silently ignored. The operator CLI validates through the same models.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
)

from schemas.policy_rules import PolicyRules

Tier = Literal["free", "pro"]
PolicyMode = Literal["enforce", "shadow"]
KeyStatus = Literal["active", "rotated", "expired", "revoked"]

DEFAULT_GRACE_PERIOD_S = 7 * 24 * 3600
MAX_GRACE_PERIOD_S = 365 * 24 * 3600
_INT4_MAX = 2**31 - 1


def _printable(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and control characters in names only ever confuse a reader.
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("must not contain control characters")
    return value


# The pattern only tells the OpenAPI document what `_printable` refuses; `_printable` words the error.
_PRINTABLE_PATTERN = "^[^\\x00-\\x1f\\x7f]*$"
Name = Annotated[
    str,
    Field(min_length=1, max_length=200, json_schema_extra={"pattern": _PRINTABLE_PATTERN}),
    AfterValidator(_printable),
]


def _no_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if isinstance(value, list):
        for item in value:
            _no_nul(item)
    return value


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _patch_schema(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """In the OpenAPI document, a field of a partial update that may not be null does not offer null either."""
    nullable: frozenset[str] = getattr(model, "_nullable", frozenset())
    for name, prop in schema.get("properties", {}).items():
        options = prop.get("anyOf")
        if name in nullable or not options or {"type": "null"} not in options:
            continue
        rest = [option for option in options if option != {"type": "null"}]
        del prop["anyOf"]
        if len(rest) == 1:
            prop.update(rest[0])
        else:
            prop["anyOf"] = rest
        if "default" in prop and prop["default"] is None:
            del prop["default"]


class PartialUpdate(_Request):
    """A partial update: a field may be left out, but not set to null unless it says so."""

    model_config = ConfigDict(json_schema_extra=_patch_schema)

    _nullable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls._nullable:
            raise ValueError("may be left out, but not null")
        return value


class RateLimit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    capacity: StrictInt = Field(gt=0, le=_INT4_MAX, description="requests allowed per window")
    window_s: StrictInt = Field(gt=0, le=_INT4_MAX, description="window length in seconds")


class CustomerCreate(_Request):
    name: Name
    tier: Tier = "free"
    rate_limit: RateLimit | None = Field(None, description="per-key override of the tier's limit; null = tier default")


class CustomerUpdate(PartialUpdate):
    _nullable: ClassVar[frozenset[str]] = frozenset({"rate_limit"})

    name: Name | None = None
    tier: Tier | None = None
    rate_limit: RateLimit | None = Field(None, description="null resets to the tier default")


class Customer(BaseModel):
    id: UUID
    name: str
    tier: Tier
    rate_limit: RateLimit | None
    created_at: datetime
    updated_at: datetime


class CustomerDeleted(BaseModel):
    id: UUID
    deleted_at: datetime
    keys_revoked: int
    policies_deactivated: int


class KeyCreate(_Request):
    customer_id: UUID
    name: Name


class KeyRotate(_Request):
    grace_period_s: StrictInt = Field(
        DEFAULT_GRACE_PERIOD_S, ge=0, le=MAX_GRACE_PERIOD_S, description="seconds the old key keeps working"
    )


class KeyCreated(BaseModel):
    """The only shape that ever carries the whole key: returned once, at creation or rotation."""

    id: UUID
    key_id: str
    key: str
    name: str
    customer_id: UUID
    created_at: datetime
    replaces: UUID | None = Field(None, description="on rotation: the id of the key this one replaces")
    replaces_key_id: str | None = Field(None, description="on rotation: the key_id of the key this one replaces")
    replaced_key_expires_at: datetime | None = Field(None, description="on rotation: when the old key stops")


class ApiKey(BaseModel):
    id: UUID
    key_id: str
    name: str
    customer_id: UUID
    active: bool
    status: KeyStatus
    created_at: datetime
    rotated_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    age_days: int
    replaces: UUID | None


class AdminKeyCreated(BaseModel):
    id: UUID
    key_id: str
    key: str
    name: str
    created_at: datetime


class AdminKey(BaseModel):
    id: UUID
    key_id: str
    name: str
    active: bool
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class _PolicyFields(_Request):
    @field_validator("rules", mode="after", check_fields=False)
    @classmethod
    def _rules_storable(cls, rules: PolicyRules | None) -> PolicyRules | None:
        if rules is not None and rules.allowed_models is not None:
            _no_nul(rules.allowed_models)
        return rules


class PolicyCreate(_PolicyFields):
    customer_id: UUID
    name: Name
    rules: PolicyRules
    active: StrictBool = True
    mode: PolicyMode = "enforce"


class PolicyReplace(_PolicyFields):
    """``PUT``: every field the operator controls; what is left out takes its default."""

    name: Name
    rules: PolicyRules
    active: StrictBool = True
    mode: PolicyMode = "enforce"


class PolicyUpdate(PartialUpdate, _PolicyFields):
    name: Name | None = None
    rules: PolicyRules | None = None
    active: StrictBool | None = None
    mode: PolicyMode | None = None


class Policy(BaseModel):
    id: UUID
    customer_id: UUID
    name: str
    rules: dict[str, Any]
    active: bool
    mode: PolicyMode
    version: int
    created_at: datetime
    updated_at: datetime


class PolicyVersion(BaseModel):
    policy_id: UUID
    version: int
    name: str
    rules: dict[str, Any]
    active: bool
    mode: PolicyMode
    created_at: datetime


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


def stored_rules(rules: PolicyRules) -> dict[str, Any]:
    """What the operator wrote, without the defaults they left out, so they read back what they sent."""
    return rules.model_dump(mode="json", exclude_unset=True)
