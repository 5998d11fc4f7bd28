"""The typed answer of a check, built from the JSON the service returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from governance_client.errors import Blocked, GovernanceUnavailable


@dataclass(frozen=True)
class Factor:
    """A risk factor that added points: where it was found (paths), never the value."""

    name: str
    points: int
    detail: str = ""
    paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class Violation:
    """A hard policy rule the operation broke."""

    rule: str
    detail: str = ""
    policy_id: str | None = None
    policy_version: int | None = None


@dataclass(frozen=True)
class RateLimit:
    """The ``X-RateLimit-*`` headers of the answer: the bucket's capacity, whole tokens left, and when it is full."""

    limit: int | None
    remaining: int | None
    reset_at: int | None

    @classmethod
    def from_headers(cls, headers: Any) -> RateLimit:
        return cls(
            _int_or_none(headers.get("x-ratelimit-limit")),
            _int_or_none(headers.get("x-ratelimit-remaining")),
            _int_or_none(headers.get("x-ratelimit-reset")),
        )


@dataclass(frozen=True)
class CheckResult:
    """The decision on one check.

    ``fail_open`` is true only for a result made up by the client under a fail-open outage policy: the service
    was not reached (``outage`` says why), nothing was recorded, and ``request_id`` is the one of the failed
    answer if the service sent one.
    """

    allowed: bool
    risk_score: int
    reason: str
    request_id: str | None
    event_id: str | None = None
    factors: tuple[Factor, ...] = ()
    violations: tuple[Violation, ...] = ()
    receipt: dict[str, Any] | None = None
    rate_limit: RateLimit = field(default_factory=lambda: RateLimit(None, None, None))
    fail_open: bool = False
    outage: GovernanceUnavailable | None = None

    @property
    def blocked(self) -> bool:
        return not self.allowed

    def raise_if_blocked(self) -> CheckResult:
        """Raise :class:`Blocked` when the check said no; otherwise return the result itself."""
        if not self.allowed:
            raise Blocked(self)
        return self

    @classmethod
    def from_response(cls, body: dict[str, Any], headers: Any) -> CheckResult:
        return cls(
            allowed=bool(body["allowed"]),
            risk_score=int(body["risk_score"]),
            reason=str(body.get("reason", "")),
            request_id=_str_or_none(body.get("request_id")) or _str_or_none(headers.get("x-request-id")),
            event_id=_str_or_none(body.get("event_id")),
            factors=tuple(_factor(item) for item in body.get("factors") or () if isinstance(item, dict)),
            violations=tuple(_violation(item) for item in body.get("violations") or () if isinstance(item, dict)),
            receipt=body.get("receipt") if isinstance(body.get("receipt"), dict) else None,
            rate_limit=RateLimit.from_headers(headers),
        )

    @classmethod
    def failed_open(cls, outage: GovernanceUnavailable) -> CheckResult:
        return cls(
            allowed=True,
            risk_score=0,
            reason=f"governance unavailable, failed open: {outage.message}",
            request_id=outage.request_id,
            fail_open=True,
            outage=outage,
        )


def _factor(item: dict[str, Any]) -> Factor:
    paths = item.get("paths") or ()
    return Factor(
        name=str(item.get("name", "")),
        points=int(item.get("points", 0)),
        detail=str(item.get("detail", "")),
        paths=tuple(str(p) for p in paths),
    )


def _violation(item: dict[str, Any]) -> Violation:
    version = item.get("policy_version")
    return Violation(
        rule=str(item.get("rule", "")),
        detail=str(item.get("detail", "")),
        policy_id=_str_or_none(item.get("policy_id")),
        policy_version=int(version) if isinstance(version, int) else None,
    )


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _str_or_none(value: Any) -> str | None:
    return str(value) if value is not None else None
