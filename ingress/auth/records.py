"""What authentication works with and answers: a stored key's record, the principal a key proves, and the
refusals (401 ``AuthFailure``, 503 ``AuthUnavailable``) with their messages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from ingress.auth.keys import KeyKind

FailureReason = Literal["missing", "malformed", "unknown", "revoked", "expired"]


@dataclass(frozen=True)
class KeyRecord:
    """What the verifier needs of a stored key; ``customer_id`` and ``tier`` are None for admin keys."""

    id: UUID
    key_id: str
    key_hash: str
    name: str
    active: bool
    revoked_at: datetime | None
    expires_at: datetime | None
    customer_id: UUID | None = None
    tier: str | None = None
    customer_deleted: bool = False
    key_tag: str | None = None  # written at the key's first accepted use (``ingress.auth.keys.key_tag``)
    key_verifier: str | None = None  # SHA-256 of the key, written once bcrypt accepted it (``keys.key_verifier``)


@dataclass(frozen=True)
class Principal:
    kind: KeyKind
    key_id: str
    record_id: UUID
    name: str
    customer_id: UUID | None
    tier: str | None


class AuthFailure(Exception):
    """A refusal (401). ``key_id`` and ``customer_id`` are set only when the presented key id is a real key's (a
    wrong secret for it): signals name the key under attack, and never a forger's made-up key id."""

    def __init__(
        self, reason: FailureReason, message: str, *, key_id: str | None = None, customer_id: UUID | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.key_id = key_id
        self.customer_id = customer_id


class AuthUnavailable(Exception):
    """The key is not cached and its record cannot be read (PostgreSQL down): answer 503, never 200."""


RecordLoader = Callable[[KeyKind, str], Awaitable[KeyRecord | None]]
# (kind, key_id, key_hash it matched, tag, verifier)
TagWriter = Callable[[KeyKind, str, str, str, str], Coroutine[Any, Any, None]]

_MESSAGES: dict[FailureReason, str] = {
    "missing": "missing API key: send 'Authorization: Bearer <key>'",
    "malformed": "malformed API key: check that the whole key was copied (sk_live_... or sk_admin_...)",
    "unknown": "invalid API key",
    "revoked": "this API key has been revoked",
    "expired": "this API key has expired",
}


def failure(reason: FailureReason, record: KeyRecord | None = None) -> AuthFailure:
    if record is None:
        return AuthFailure(reason, _MESSAGES[reason])
    return AuthFailure(reason, _MESSAGES[reason], key_id=record.key_id, customer_id=record.customer_id)
