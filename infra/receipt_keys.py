"""Storage of the receipt signing key and of every public key ever used (so old receipts stay verifiable).

Folder layout (``RECEIPT_KEYS_DIR``, by default ``<state>/receipt-keys``):

- ``signing.pem``: the current Ed25519 private key (PKCS#8 PEM, mode 0600), generated when missing;
- ``public/<key_id>.pub``: the raw public key (base64url) of the current and every retired signing key.

``RECEIPT_SIGNING_KEY`` (a PEM) takes precedence over the file, for deployments that keep secrets in the
environment; its public key is published the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.receipt import b64url, b64url_decode, key_id_for


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    private: Ed25519PrivateKey
    public_raw: bytes


def _public_raw(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _write_private(path: Path, private: Ed25519PrivateKey) -> None:
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    tmp.replace(path)


class ReceiptKeyring:
    def __init__(self, folder: Path, signing_pem: str = "") -> None:
        self.folder = folder
        self._signing_pem = signing_pem

    @property
    def _signing_path(self) -> Path:
        return self.folder / "signing.pem"

    def _publish(self, key: SigningKey) -> None:
        public = self.folder / "public"
        public.mkdir(parents=True, exist_ok=True)
        target = public / f"{key.key_id}.pub"
        if not target.exists():
            target.write_text(b64url(key.public_raw))

    def signing_key(self) -> SigningKey:
        """The current signing key, generated on first use."""
        if self._signing_pem:
            loaded = serialization.load_pem_private_key(self._signing_pem.encode(), password=None)
        elif self._signing_path.exists():
            loaded = serialization.load_pem_private_key(self._signing_path.read_bytes(), password=None)
        else:
            loaded = Ed25519PrivateKey.generate()
            _write_private(self._signing_path, loaded)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise TypeError("the receipt signing key must be an Ed25519 private key")
        raw = _public_raw(loaded)
        key = SigningKey(key_id_for(raw), loaded, raw)
        self._publish(key)
        return key

    def rotate(self) -> SigningKey:
        """Retire the current key (its public key stays published) and start signing with a new one."""
        if self._signing_pem:
            raise ValueError("the signing key comes from RECEIPT_SIGNING_KEY; rotate it there")
        self.signing_key()
        _write_private(self._signing_path, Ed25519PrivateKey.generate())
        return self.signing_key()

    def public_keys(self) -> dict[str, bytes]:
        public = self.folder / "public"
        if not public.exists():
            return {}
        return {path.stem: b64url_decode(path.read_text().strip()) for path in sorted(public.glob("*.pub"))}
