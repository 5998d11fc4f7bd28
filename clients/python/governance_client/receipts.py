"""Offline receipt verification: the Ed25519 signature over the canonical decision, against published keys.

A receipt verifies when the key it names is one the service published at ``/v1/receipts/keys``, that key's id
is derived from the key itself (so a key cannot be swapped under an id), the signature covers the canonical
encoding of the signed fields, and, when the request body is given, the signed digest is the body's digest:
HMAC-SHA256 keyed by the receipt's ``request_salt`` (``v: 2``), or a plain SHA-256 (``v: 1`` receipts).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def canonical_json(value: Any) -> bytes:
    """JSON with keys sorted, no whitespace, UTF-8: what the service signs and digests."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


HMAC_PREFIX = "hmac-sha256:"
SHA_PREFIX = "sha256:"


def request_digest(body: Any, salt: bytes | None = None) -> str:
    """The digest a receipt signs of the request body: keyed by the request's salt, or (v1) unsalted."""
    if salt is None:
        return SHA_PREFIX + hashlib.sha256(canonical_json(body)).hexdigest()
    return HMAC_PREFIX + hmac.new(salt, canonical_json(body), hashlib.sha256).hexdigest()


def digest_matches(receipt: dict[str, Any], body: Any) -> bool:
    digest = receipt["signed"].get("request_digest")
    if not isinstance(digest, str):
        return False
    if digest.startswith(HMAC_PREFIX):
        salt = receipt.get("request_salt")
        if not isinstance(salt, str):
            return False  # the salt is in the caller's copy only; without it nobody can check the digest
        try:
            expected = request_digest(body, b64url_decode(salt))
        except (ValueError, binascii.Error):
            return False
    elif digest.startswith(SHA_PREFIX):
        expected = request_digest(body)
    else:
        return False
    return hmac.compare_digest(expected.encode(), digest.encode())


def key_id_for(public_key_raw: bytes) -> str:
    return "rk_" + hashlib.sha256(public_key_raw).hexdigest()[:16]


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_keys(document: Any) -> dict[str, bytes]:
    """``{"keys": [{"key_id", "alg", "public_key"}, ...]}`` as key id to raw public key, Ed25519 keys only."""
    keys: dict[str, bytes] = {}
    items = document.get("keys") if isinstance(document, dict) else None
    for item in items or ():
        if not isinstance(item, dict) or item.get("alg", "Ed25519") != "Ed25519":
            continue
        try:
            keys[str(item["key_id"])] = b64url_decode(str(item["public_key"]))
        except (KeyError, ValueError, binascii.Error):
            continue
    return keys


def verify_receipt(receipt: Any, public_keys: dict[str, bytes], request_body: Any = None) -> bool:
    """True when the receipt is genuine, unchanged, and (if ``request_body`` is given) for that request."""
    if not isinstance(receipt, dict) or not isinstance(receipt.get("signed"), dict):
        return False
    key_id = receipt.get("key_id")
    raw = public_keys.get(key_id) if isinstance(key_id, str) else None
    if raw is None or key_id_for(raw) != key_id:
        return False
    signed = {name: value for name, value in receipt["signed"].items() if value is not None}
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(
            b64url_decode(str(receipt.get("signature", ""))), canonical_json(signed)
        )
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return request_body is None or digest_matches(receipt, request_body)


@dataclass
class KeyCache:
    """The published keys, kept for ``ttl_s``; an unknown key id triggers a refresh at most every
    ``refresh_floor_s`` (a receipt from a key rotated in since the last fetch still verifies, and a forged id
    cannot make every verification fetch)."""

    ttl_s: float = 3600.0
    refresh_floor_s: float = 30.0
    keys: dict[str, bytes] = field(default_factory=dict)
    fetched_at: float | None = None

    def needs_fetch(self, key_id: str | None, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if self.fetched_at is None or now - self.fetched_at >= self.ttl_s:
            return True
        return key_id is not None and key_id not in self.keys and now - self.fetched_at >= self.refresh_floor_s

    def store(self, keys: dict[str, bytes], now: float | None = None) -> None:
        self.keys = {**self.keys, **keys}  # a key once published stays usable for old receipts
        self.fetched_at = time.monotonic() if now is None else now


def receipt_of(value: Any) -> Any:
    """A receipt given as itself, or the receipt of a result or of a whole response body."""
    receipt = getattr(value, "receipt", None)
    if receipt is not None:
        return receipt
    if isinstance(value, dict) and "signed" not in value and isinstance(value.get("receipt"), dict):
        return value["receipt"]
    return value
