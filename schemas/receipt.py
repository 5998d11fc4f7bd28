"""Signed decision receipts: the signed fields, their canonical encoding, and verification. No I/O.

A receipt proves that we made a decision and that it has not been changed since: an Ed25519 signature over
the canonical encoding (JSON, keys sorted, no whitespace, UTF-8) of the fields in :class:`ReceiptBody`. Public
keys are published at ``GET /v1/receipts/keys`` under their ``key_id``, so signing keys can rotate while old
receipts stay verifiable.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict


class ReceiptBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    event_id: str
    request_id: str
    customer_id: str
    decided_at: str  # ISO 8601, UTC, millisecond precision, e.g. 2026-11-26T14:07:00.123Z
    allowed: bool
    risk_score: int
    policy_versions: list[str]  # "<policy_id>:<version>", sorted
    request_digest: str  # "sha256:<hex>" of the canonical encoding of the request body


class Receipt(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str
    alg: Literal["Ed25519"] = "Ed25519"
    signed: ReceiptBody
    signature: str  # base64url, no padding


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def request_digest(body: Any) -> str:
    """The digest a receipt carries of the request body (as JSON-decoded), so a customer can recompute it."""
    return "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()


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
        Ed25519PublicKey.from_public_bytes(raw).verify(
            b64url_decode(receipt.signature), canonical_json(receipt.signed.model_dump())
        )
    except (InvalidSignature, ValueError):
        return False
    return True
