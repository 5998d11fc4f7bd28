"""Alerting contracts: the rule kinds and their parameters, admin requests and responses for alert rules, alerts
and webhooks. No I/O.

Every customer is watched by every rule kind with the built-in defaults below. An operator can override a kind
for one customer, or for the whole fleet (``customer_id`` null), through ``/admin/alert-rules``; the most
specific stored rule wins: customer rule → fleet rule → built-in default. Parameters are validated per kind and
stored as written, so a later change of a default reaches every rule that left it out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from schemas.admin import PartialUpdate
from schemas.check import MAX_COUNT

RuleKind = Literal["block_rate", "high_risk", "personal_data", "volume_spike", "rate_limited", "auth_failures"]
RULE_KINDS: tuple[RuleKind, ...] = (
    "block_rate",
    "high_risk",
    "personal_data",
    "volume_spike",
    "rate_limited",
    "auth_failures",
)
# Which stream feeds which rule: decisions (DecisionEvent) or refusals (SignalEvent).
DECISION_RULES: frozenset[RuleKind] = frozenset({"block_rate", "high_risk", "personal_data", "volume_spike"})
SIGNAL_RULES: frozenset[RuleKind] = frozenset({"rate_limited", "auth_failures"})

Severity = Literal["info", "warning", "critical"]
AlertStatus = Literal["open", "resolved"]
AlertTransition = Literal["opened", "renotified", "resolved"]
DeliveryStatus = Literal["pending", "delivered", "failed", "cancelled"]
RuleSource = Literal["customer", "fleet", "default"]

# Authentication failures whose key does not name a customer of ours are counted under this subject.
UNKNOWN_SUBJECT = "unknown"

# Webhook contract: the signature header (``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``) and
# the other headers every delivery carries; secrets start with the prefix.
SIGNATURE_HEADER = "X-Governance-Signature"
EVENT_HEADER = "X-Governance-Event"  # alert.opened, alert.renotified, alert.resolved
DELIVERY_HEADER = "X-Governance-Delivery"  # the delivery id, the same on every retry
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret

MAX_WINDOW_S = 3600
MAX_SPAN_S = 24 * 3600
StrictFloat = Annotated[float, Field(strict=True)]


class RuleParams(BaseModel):
    """Parameters every rule kind has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_severity: ClassVar[Severity] = "warning"

    window_s: StrictInt = Field(300, ge=1, le=MAX_WINDOW_S, description="length of the sliding window, seconds")
    renotify_s: StrictInt = Field(
        3600, ge=1, le=7 * 24 * 3600, description="while the alert stays open, notify again this often"
    )
    severity: Severity | None = Field(None, description="severity of the alert; null = the kind's default")

    @property
    def span_s(self) -> int:
        """How much history the rule looks at, seconds."""
        return self.window_s

    @property
    def effective_severity(self) -> Severity:
        return self.severity or self.default_severity


class BlockRateParams(RuleParams):
    """Block rate above ``threshold_percent`` over the window, once at least ``min_volume`` decisions were made."""

    threshold_percent: StrictFloat = Field(50.0, gt=0, le=100, description="percent of decisions blocked")
    min_volume: StrictInt = Field(
        20, ge=1, le=MAX_COUNT, description="decisions needed in the window before the rate counts"
    )


class HighRiskParams(RuleParams):
    """Any single decision with a risk score of at least ``min_risk_score`` in the window."""

    default_severity: ClassVar[Severity] = "critical"

    min_risk_score: StrictInt = Field(90, ge=0, le=100, description="risk score that alerts on its own")


class PersonalDataParams(RuleParams):
    """More than ``max_detections`` personal-data detections (findings) in the window."""

    max_detections: StrictInt = Field(20, ge=0, le=MAX_COUNT, description="detections allowed per window")


class VolumeSpikeParams(RuleParams):
    """Decisions in the window above ``factor`` times the average of the ``baseline_windows`` windows before it,
    and at least ``min_volume``. A customer without any decision in the baseline has no baseline: no alert."""

    factor: StrictFloat = Field(5.0, gt=1, le=1000, description="how many times the baseline counts as a spike")
    baseline_windows: StrictInt = Field(12, ge=1, le=288, description="windows before the current one averaged")
    min_volume: StrictInt = Field(100, ge=1, le=MAX_COUNT, description="decisions needed in the window to alert at all")

    @property
    def span_s(self) -> int:
        return self.window_s * (self.baseline_windows + 1)

    @model_validator(mode="after")
    def _span_fits(self) -> VolumeSpikeParams:
        if self.span_s > MAX_SPAN_S:
            raise ValueError(f"window_s * (baseline_windows + 1) must be at most {MAX_SPAN_S} seconds")
        return self


class RateLimitedParams(RuleParams):
    """More than ``max_rejections`` rate-limit rejections (429) in the window."""

    max_rejections: StrictInt = Field(100, ge=0, le=MAX_COUNT, description="rejections allowed per window")


class AuthFailuresParams(RuleParams):
    """More than ``max_failures`` authentication failures (401) in the window."""

    max_failures: StrictInt = Field(20, ge=0, le=MAX_COUNT, description="failures allowed per window")


PARAMS_BY_KIND: dict[RuleKind, type[RuleParams]] = {
    "block_rate": BlockRateParams,
    "high_risk": HighRiskParams,
    "personal_data": PersonalDataParams,
    "volume_spike": VolumeSpikeParams,
    "rate_limited": RateLimitedParams,
    "auth_failures": AuthFailuresParams,
}


def parse_params(kind: RuleKind, params: Mapping[str, Any]) -> RuleParams:
    """Validate ``params`` for ``kind`` (raises ``pydantic.ValidationError`` naming the field)."""
    return PARAMS_BY_KIND[kind].model_validate(dict(params))


def stored_params(params: RuleParams) -> dict[str, Any]:
    """What the operator wrote, without the defaults they left out."""
    return params.model_dump(mode="json", exclude_unset=True)


def full_params(params: RuleParams) -> dict[str, Any]:
    data = params.model_dump(mode="json")
    data["severity"] = params.effective_severity
    return data


# --- resolving the rules in force -----------------------------------------------------------------------------


class StoredRule(BaseModel):
    """A rule as stored: the scope (a customer or the fleet), the kind, on or off, the parameters as written."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    customer_id: UUID | None
    rule: RuleKind
    enabled: bool
    params: dict[str, Any]


class EffectiveRule(BaseModel):
    rule: RuleKind
    enabled: bool
    source: RuleSource
    rule_id: UUID | None = Field(None, description="the stored rule in force; null for the built-in default")
    params: dict[str, Any] = Field(description="every parameter, defaults filled in")


def effective_rule(kind: RuleKind, customer: StoredRule | None, fleet: StoredRule | None) -> EffectiveRule:
    chosen = customer or fleet
    source: RuleSource = "customer" if customer else "fleet" if fleet else "default"
    params = parse_params(kind, chosen.params if chosen else {})
    return EffectiveRule(
        rule=kind,
        enabled=chosen.enabled if chosen else True,
        source=source,
        rule_id=chosen.id if chosen else None,
        params=full_params(params),
    )


class RuleBook:
    """The stored rules, indexed for lookup: which parameters apply to a subject (``None``: the kind is off)."""

    def __init__(self, stored: Iterable[StoredRule] = ()) -> None:
        # Parsed once here: lookups happen for every subject on every evaluation.
        self._defaults: dict[RuleKind, RuleParams] = {kind: model() for kind, model in PARAMS_BY_KIND.items()}
        self._fleet: dict[RuleKind, RuleParams | None] = {}
        self._customer: dict[tuple[str, RuleKind], RuleParams | None] = {}
        for rule in stored:
            params = parse_params(rule.rule, rule.params) if rule.enabled else None
            if rule.customer_id is None:
                self._fleet[rule.rule] = params
            else:
                self._customer[(str(rule.customer_id), rule.rule)] = params

    def params_for(self, subject: str, kind: RuleKind) -> RuleParams | None:
        """The parameters in force for ``subject`` (a customer id or ``unknown``); None: the kind is off."""
        if (subject, kind) in self._customer:
            return self._customer[(subject, kind)]
        if kind in self._fleet:
            return self._fleet[kind]
        return self._defaults[kind]

    def rules_for(self, subject: str, kinds: Iterable[RuleKind] = RULE_KINDS) -> dict[RuleKind, RuleParams | None]:
        return {kind: self.params_for(subject, kind) for kind in kinds}

    def max_span_s(self) -> int:
        """The longest history any rule in force needs (built-in defaults included)."""
        found = [*self._defaults.values(), *self._fleet.values(), *self._customer.values()]
        return max(params.span_s for params in found if params is not None)


# --- admin API: alert rules -----------------------------------------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AlertRuleCreate(_Request):
    customer_id: UUID | None = Field(None, description="the customer; null = a fleet-wide rule for every customer")
    rule: RuleKind
    enabled: StrictBool = True
    params: dict[str, Any] = Field(default_factory=dict, description="the kind's parameters; left out = default")

    @field_validator("params")
    @classmethod
    def _params_fit_the_kind(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        kind = info.data.get("rule")
        if kind is None:
            return params  # the rule itself is refused; its error says why
        # A ValidationError raised here is reported under ``params.<field>``.
        return stored_params(parse_params(kind, params))


class AlertRuleUpdate(PartialUpdate):
    """``PATCH``: what is left out stays; ``params`` replaces the parameters whole (validated for the rule's kind)."""

    enabled: StrictBool | None = None
    params: dict[str, Any] | None = None


class AlertRule(BaseModel):
    id: UUID
    customer_id: UUID | None
    rule: RuleKind
    enabled: bool
    params: dict[str, Any] = Field(description="as written")
    effective_params: dict[str, Any] = Field(description="every parameter, defaults filled in")
    created_at: datetime
    updated_at: datetime


# --- admin API: alerts ----------------------------------------------------------------------------------------


class Alert(BaseModel):
    id: UUID
    rule: RuleKind
    customer_id: UUID | None = Field(description="null for the 'unknown' subject")
    subject: str = Field(description="the customer id, or 'unknown'")
    status: AlertStatus
    severity: Severity
    summary: str
    value: float
    threshold: float
    params: dict[str, Any]
    sequence: int = Field(description="sequence number of the alert's last event (1 = opened)")
    opened_at: datetime
    last_notified_at: datetime
    resolved_at: datetime | None


class AlertEventRecord(BaseModel):
    event_id: UUID
    transition: AlertTransition
    sequence: int
    created_at: datetime
    published_at: datetime | None


class AlertDetail(Alert):
    events: list[AlertEventRecord]


# --- admin API: webhooks --------------------------------------------------------------------------------------


def _valid_url(url: str) -> str:
    if any(ord(ch) <= 32 or ord(ch) == 127 for ch in url):
        raise ValueError("must not contain spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials; the signature authenticates us")
    if parts.fragment:
        raise ValueError("must not have a #fragment")
    return url


class WebhookCreate(_Request):
    customer_id: UUID | None = Field(
        None, description="the customer whose alerts it receives; null = an operator endpoint receiving every alert"
    )
    url: str = Field(
        min_length=8,
        max_length=2000,
        description="http:// or https://; no credentials, no #fragment",
        # What `_valid_url` checks, as far as a pattern can say it (for the OpenAPI document).
        json_schema_extra={"pattern": "^[hH][tT][tT][pP][sS]?://[^\\x00-\\x20\\x7f@/?#]+([/?][^\\x00-\\x20\\x7f#]*)?$"},
    )
    description: str = Field("", max_length=200)

    @field_validator("url")
    @classmethod
    def _url_is_usable(cls, url: str) -> str:
        return _valid_url(url)


class Webhook(BaseModel):
    id: UUID
    customer_id: UUID | None
    url: str
    description: str
    active: bool
    created_at: datetime


class WebhookCreated(Webhook):
    """The only shape that carries the signing secret: returned once, at creation."""

    secret: str


class WebhookAttempt(BaseModel):
    attempt: int
    started_at: datetime
    duration_ms: float
    status_code: int | None
    error: str | None
    outcome: Literal["delivered", "retry", "failed"]
    next_attempt_at: datetime | None


class WebhookDelivery(BaseModel):
    id: UUID
    webhook_id: UUID
    event_id: UUID
    alert_id: UUID
    transition: AlertTransition
    sequence: int
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = Field(description="when the next attempt is due; null once settled")
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    attempt_log: list[WebhookAttempt]
