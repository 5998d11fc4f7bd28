"""Encryption at rest for the secrets we must read back: webhook signing secrets (the HMAC needs the secret itself,
so it cannot be hashed as API keys are).

AES-256-GCM under ``WEBHOOK_SECRETS_KEY`` (32 bytes, base64). A sealed value reads ``enc1:<base64url(nonce ‖
ciphertext ‖ tag)>``; a value without the prefix is one stored before encryption and is read as it is. Local and
test runs without the variable use a fixed, public development key, exactly as they use the local database
password; staging and production refuse to start without a real one (ingress and workers must share it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from infra.settings import CommonSettings

PREFIX = "enc1:"
_CONTEXT = b"governance webhook secret v1"  # bound into every seal: a value sealed for another use does not open
# Local runs only: anyone can derive it, which is the point (no setup), and why staging and production refuse it.
_LOCAL_KEY = hashlib.sha256(b"governance local development key: not a secret").digest()


class SecretBoxError(ValueError):
    """A sealed value that does not open under this key (another key, or altered)."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("WEBHOOK_SECRETS_KEY must be 32 bytes, base64-encoded (openssl rand -base64 32)")
        self._aead = AESGCM(key)

    @classmethod
    def local(cls) -> SecretBox:
        return cls(_LOCAL_KEY)

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> SecretBox:
        """The box for these settings; ValueError naming the variable when it is missing or malformed."""
        encoded = settings.webhook_secrets_key.strip()
        if not encoded:
            if settings.environment in {"staging", "production"}:
                raise ValueError("WEBHOOK_SECRETS_KEY is required outside local runs (openssl rand -base64 32)")
            return cls.local()
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("WEBHOOK_SECRETS_KEY is not base64 (openssl rand -base64 32)") from None
        return cls(key)

    def seal(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = nonce + self._aead.encrypt(nonce, plaintext.encode(), _CONTEXT)
        return PREFIX + base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored  # stored before secrets were encrypted
        encoded = stored.removeprefix(PREFIX)
        try:
            sealed = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            return self._aead.decrypt(sealed[:12], sealed[12:], _CONTEXT).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise SecretBoxError(
                "the stored secret does not open under WEBHOOK_SECRETS_KEY (was the key changed?)"
            ) from None
