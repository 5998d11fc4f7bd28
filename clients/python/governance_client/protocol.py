"""The check protocol shared by the sync and async clients: the answer read into a result or an error, the retry
plan, and the outage policies. No I/O here; the clients only send and sleep."""

from __future__ import annotations

import email.utils
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from governance_client.errors import (
    AuthenticationError,
    GovernanceError,
    GovernanceUnavailable,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    ServerError,
    ValidationFailed,
)
from governance_client.results import CheckResult

CHECK_PATH = "/v1/check"
KEYS_PATH = "/v1/receipts/keys"


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded, jittered retries. A 429 or 503 waits what its ``Retry-After`` (or ``X-RateLimit-Reset``) says,
    plus up to ``jitter_s`` so that many callers do not return at the same instant; a timeout, a connection
    failure or another 5xx backs off exponentially from ``backoff_s`` up to ``max_backoff_s``. Nothing is
    retried past ``max_attempts``, past the call's deadline, or when the service asks to wait longer than
    ``max_wait_s``. A 500, 401, 403, 413 or 422 is never retried: the same request would get the same answer."""

    max_attempts: int = 3
    backoff_s: float = 0.2
    max_backoff_s: float = 2.0
    max_wait_s: float = 10.0
    jitter_s: float = 0.25

    def delay(
        self, error: GovernanceError, attempt: int, remaining_s: float, rng: random.Random | None = None
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None when the error is final."""
        if attempt >= self.max_attempts or isinstance(error, ServerError):
            return None
        draw = (rng or _RNG).random()
        if isinstance(error, RateLimited | GovernanceUnavailable) and error.retry_after is not None:
            wait = error.retry_after + draw * self.jitter_s
            if error.retry_after > self.max_wait_s:
                return None
        elif isinstance(error, RateLimited):
            wait = self.backoff_s * 2 ** (attempt - 1) + draw * self.jitter_s
        elif isinstance(error, GovernanceUnavailable):
            step = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
            wait = step / 2 + draw * step / 2
        else:
            return None
        return wait if wait < remaining_s else None


NO_RETRIES = RetryPolicy(max_attempts=1)
_RNG = random.Random()  # noqa: S311 - jitter, not a secret


class FailClosed:
    """The default outage policy: when the service cannot decide, raise :class:`GovernanceUnavailable`."""

    def __repr__(self) -> str:
        return "FailClosed()"


@dataclass(frozen=True)
class FailOpen:
    """When the service cannot decide, call ``on_outage(error)`` (a plain or async function: log it, count it,
    page someone) and answer allowed, with ``fail_open=True`` on the result. Only an outage fails open: a 401,
    403, 413, 422 or an exhausted 429 is still raised."""

    on_outage: Callable[[GovernanceUnavailable], Any]


FAIL_CLOSED = FailClosed()
OutagePolicy = FailClosed | FailOpen


def check_body(operations: Any, context: Any) -> dict[str, Any]:
    return {"operations": list(operations), "context": dict(context or {})}


def read_answer(response: httpx.Response, secret: str) -> CheckResult:
    """A 200 as a result; anything else as the error the caller handles (see errors.py)."""
    status = response.status_code
    body = _json_object(response)
    request_id = _text(body.get("request_id")) or response.headers.get("x-request-id")
    if status == 200:
        try:
            return CheckResult.from_response(body, response.headers)
        except (KeyError, TypeError, ValueError):
            raise GovernanceUnavailable(
                "the check answered 200 without a decision (is base_url the governance service?)",
                status=status,
                request_id=request_id,
            ) from None
    message = redact(_text(body.get("message")) or response.reason_phrase or f"HTTP {status}", secret)
    details = body.get("details")
    kwargs: dict[str, Any] = {"status": status, "code": _text(body.get("error")), "request_id": request_id}
    if status == 401:
        raise AuthenticationError(message, details=details, **kwargs)
    if status == 403:
        raise PermissionDenied(message, details=details, **kwargs)
    if status == 413:
        raise PayloadTooLarge(message, details=details, **kwargs)
    if status == 422:
        raise ValidationFailed(message, details=_redact_details(details, secret), **kwargs)
    if status == 429:
        raise RateLimited(
            message,
            retry_after=wait_hint(response.headers),
            reset_at=_int(response.headers.get("x-ratelimit-reset")),
            details=details,
            **kwargs,
        )
    if status == 500:
        raise ServerError(message, details=details, **kwargs)
    if status >= 500:
        raise GovernanceUnavailable(message, retry_after=wait_hint(response.headers), details=details, **kwargs)
    raise GovernanceError(message, details=details, **kwargs)


def transport_failure(exc: httpx.TransportError) -> GovernanceUnavailable:
    """A timeout or connection failure, described without the request (whose headers hold the key)."""
    if isinstance(exc, httpx.TimeoutException):
        return GovernanceUnavailable(f"the governance service did not answer in time ({type(exc).__name__})")
    return GovernanceUnavailable(f"the governance service could not be reached ({type(exc).__name__})")


def deadline_exceeded(deadline_s: float) -> GovernanceUnavailable:
    return GovernanceUnavailable(f"no decision within the call's deadline of {deadline_s:g} s")


def wait_hint(headers: Any, now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date), else from ``X-RateLimit-Reset``."""
    now = time.time() if now is None else now
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        text = str(retry_after).strip()
        try:
            return max(0.0, float(text))
        except ValueError:
            try:
                moment = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError):
                moment = None
            if moment is not None:
                return max(0.0, moment.timestamp() - now)
    reset = _int(headers.get("x-ratelimit-reset"))
    if reset is not None:
        return max(0.0, reset - now)
    return None


def redact(text: str, secret: str) -> str:
    return text.replace(secret, "[redacted]") if secret and secret in text else text


def _redact_details(details: Any, secret: str) -> Any:
    if not secret or not isinstance(details, list):
        return details
    return json.loads(redact(json.dumps(details), secret))


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return str(value) if value is not None else None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
