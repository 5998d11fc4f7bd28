"""Signed decision receipts: the signed fields, their canonical encoding, and verification. No I/O.

A receipt proves that we made a decision and that it has not been changed since: an Ed25519 signature over
the canonical encoding (JSON, keys sorted, no whitespace, UTF-8) of the fields in :class:`ReceiptBody`. Public
keys are published at ``GET /v1/receipts/keys`` under their ``key_id``, so signing keys can rotate while old
receipts stay verifiable.

The request digest is keyed per request (receipt ``v: 2``): HMAC-SHA256 under a random 32-byte salt over the
canonical encoding of the request body. The salt goes to the caller only, beside the receipt in the check
response (:class:`IssuedReceipt`); the decision event, the audit log and ClickHouse carry the digest without it,
so a reader of the log cannot confirm a guessed request offline, while the caller, holding the salt, can prove
what it sent. Receipts of ``v: 1`` (an unsalted SHA-256, no ``key_id`` or ``reason``) still verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime
from typing import Any, Literal, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, model_validator

RECEIPT_VERSION: Literal[2] = 2
SALT_BYTES = 32
DIGEST_PREFIX = "hmac-sha256:"
LEGACY_DIGEST_PREFIX = "sha256:"  # v1 receipts: an unsalted SHA-256, confirmable by anyone who guesses the request


class ReceiptBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1, 2] = RECEIPT_VERSION
    event_id: str
    request_id: str
    customer_id: str
    key_id: str | None = Field(None, description="v2: the API key id that asked (keyid_...)")
    decided_at: str  # ISO 8601, UTC, millisecond precision, e.g. 2026-11-26T14:07:00.123Z
    allowed: bool
    risk_score: int
    reason: str | None = Field(None, description="v2: the reason given in the response")
    policy_versions: list[str]  # "<policy_id>:<version>", sorted
    request_digest: str = Field(
        description="v2: 'hmac-sha256:<hex>' keyed by the request salt; v1: 'sha256:<hex>' of the request body"
    )

    @model_validator(mode="after")
    def _fields_of_its_version(self) -> Self:
        if self.v == 1:
            if self.key_id is not None or self.reason is not None:
                raise ValueError("a v1 receipt signs neither key_id nor reason")
        elif self.key_id is None or self.reason is None or not self.request_digest.startswith(DIGEST_PREFIX):
            raise ValueError("a v2 receipt signs key_id and reason, and a salted (hmac-sha256) request digest")
        return self

    def signed_bytes(self) -> bytes:
        """What the signature covers: the canonical encoding of the fields of this version (a v1 receipt has no
        ``key_id`` or ``reason``, so they are left out rather than signed as null)."""
        return canonical_json(self.model_dump(exclude_none=True))


class Receipt(BaseModel):
    """A receipt as the decision event and the audit log hold it: without the request salt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str
    alg: Literal["Ed25519"] = "Ed25519"
    signed: ReceiptBody
    signature: str  # base64url, no padding


class IssuedReceipt(Receipt):
    """A receipt as the check response carries it: with the salt its request digest is keyed by. The salt is not
    signed (the digest it keys is); it is given to the caller alone and stored nowhere by us."""

    request_salt: str = Field(description="base64url (no padding) of the 32 random bytes keying request_digest")


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def new_request_salt() -> bytes:
    return secrets.token_bytes(SALT_BYTES)


def request_digest(body: Any, salt: bytes) -> str:
    """The digest a receipt carries of the request body (as JSON-decoded), keyed by this request's salt: the
    caller, given the salt, can recompute it; without the salt nobody can test a guess against it."""
    if len(salt) != SALT_BYTES:
        raise ValueError(f"a request salt is {SALT_BYTES} bytes")
    return DIGEST_PREFIX + hmac.new(salt, canonical_json(body), hashlib.sha256).hexdigest()


def legacy_request_digest(body: Any) -> str:
    """The unsalted digest of v1 receipts (kept to verify receipts issued before v2)."""
    return LEGACY_DIGEST_PREFIX + hashlib.sha256(canonical_json(body)).hexdigest()


def digest_matches(digest: str, body: Any, salt: bytes | None) -> bool:
    """Whether ``digest`` (from a receipt) is the digest of ``body``: salted digests need the salt they were keyed
    by, v1 digests need none. Compared in constant time."""
    if digest.startswith(DIGEST_PREFIX):
        if salt is None or len(salt) != SALT_BYTES:
            return False
        expected = request_digest(body, salt)
    elif digest.startswith(LEGACY_DIGEST_PREFIX):
        expected = legacy_request_digest(body)
    else:
        return False
    return hmac.compare_digest(expected.encode(), digest.encode())


def format_instant(moment: datetime) -> str:
    """A receipt's ``decided_at``: UTC, millisecond precision."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id_for(public_key_raw: bytes) -> str:
    return "rk_" + hashlib.sha256(public_key_raw).hexdigest()[:16]


def verify_receipt(receipt: Receipt, public_keys: dict[str, bytes]) -> bool:
    """True when the receipt was signed by the key it names and its fields are unchanged."""
    raw = public_keys.get(receipt.key_id)
    if raw is None or key_id_for(raw) != receipt.key_id:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(b64url_decode(receipt.signature), receipt.signed.signed_bytes())
    except (InvalidSignature, ValueError):
        return False
    return True
