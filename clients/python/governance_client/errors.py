"""What can go wrong with a check, one exception per answer the caller handles differently.

Every error carries the service's ``request_id`` when the service sent one (quote it to support) and never the
API key: messages are built from the status, the service's error code and its message only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from governance_client.results import CheckResult


class GovernanceError(Exception):
    """Base of every error this package raises."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.details = details

    def __str__(self) -> str:
        suffix = f" (request_id {self.request_id})" if self.request_id else ""
        return f"{self.message}{suffix}"


class Blocked(GovernanceError):
    """The check was decided and the answer is no: the guarded operation must not run."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(f"blocked by governance: {result.reason}", status=200, request_id=result.request_id)
        self.result = result
        self.reason = result.reason
        self.risk_score = result.risk_score


class AuthenticationError(GovernanceError):
    """401: the API key is missing, malformed, unknown, revoked or expired (``reason`` says which)."""

    @property
    def reason(self) -> str | None:
        if isinstance(self.details, dict):
            value = self.details.get("reason")
            return str(value) if value is not None else None
        return None


class PermissionDenied(GovernanceError):
    """403: the key is genuine but may not do this (for instance a customer key on an operator endpoint)."""


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str
    type: str = ""


class ValidationFailed(GovernanceError):
    """422: the request was refused; ``errors`` names each field and what is wrong with it (never its value)."""

    @property
    def errors(self) -> list[FieldError]:
        found: list[FieldError] = []
        if isinstance(self.details, list):
            for item in self.details:
                if isinstance(item, dict):
                    found.append(
                        FieldError(str(item.get("field", "")), str(item.get("message", "")), str(item.get("type", "")))
                    )
        return found

    def __str__(self) -> str:
        fields = "; ".join(f"{e.field}: {e.message}" if e.field else e.message for e in self.errors)
        return f"{super().__str__()}{': ' + fields if fields else ''}"


class PayloadTooLarge(GovernanceError):
    """413: the request body is over the service's size limit."""


class RateLimited(GovernanceError):
    """429 after the retries the call allowed: ``retry_after`` seconds until the bucket has a token again."""

    def __init__(self, message: str, *, retry_after: float | None, reset_at: int | None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.reset_at = reset_at


class GovernanceUnavailable(GovernanceError):
    """The service could not decide: unreachable, timed out, or a 5xx, after the retries the deadline allowed.

    Under the default outage policy (fail closed) this is raised and the guarded operation does not run.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(GovernanceUnavailable):
    """A 500: a bug on the service's side; send its ``request_id`` to support."""


class ReceiptInvalid(GovernanceError):
    """A receipt did not verify against the service's published keys."""
