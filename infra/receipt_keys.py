"""Storage of the receipt signing key and of every public key ever used (so old receipts stay verifiable).

Folder layout (``RECEIPT_KEYS_DIR``, by default ``<state>/receipt-keys``):

- ``signing.pem``: the current Ed25519 private key (PKCS#8 PEM, mode 0600), generated when missing;
- ``public/<key_id>.pub``: the raw public key (base64url) of the current and every retired signing key.

``RECEIPT_SIGNING_KEY`` (a PEM) takes precedence over the file, for deployments that keep secrets in the
environment; its public key is published the same way.

``PublishedReceiptKeys`` is the reading side, for verifiers that do not sign (the audit writer).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx
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


def _write_private(path: Path, private: Ed25519PrivateKey, *, replace: bool) -> bool:
    """Write the key to ``path`` whole (a temporary file of this process's own, then renamed or linked into
    place). ``replace=False`` creates it only if no key is there yet and returns False when another process got
    there first (several processes start at once on a fresh folder); ``replace=True`` overwrites (rotation)."""
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    if replace:
        tmp.replace(path)
        return True
    try:
        os.link(tmp, path)  # fails if the key exists: the first process to create it wins
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


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
            if not _write_private(self._signing_path, loaded, replace=False):  # another process made one first
                loaded = serialization.load_pem_private_key(self._signing_path.read_bytes(), password=None)
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
        _write_private(self._signing_path, Ed25519PrivateKey.generate(), replace=True)
        return self.signing_key()

    def public_keys(self) -> dict[str, bytes]:
        public = self.folder / "public"
        if not public.exists():
            return {}
        return {path.stem: b64url_decode(path.read_text().strip()) for path in sorted(public.glob("*.pub"))}


class ReceiptKeysUnavailable(Exception):
    """The published receipt keys cannot be read now (folder unreadable, ingress not answering)."""


class PublishedReceiptKeys:
    """The public receipt keys as a verifier outside ingress sees them (the audit writer): the keyring folder's
        ``public/``, or the ``GET /v1/receipts/keys`` document at ``url``. Read once, and again when a receipt names a
        key id not known yet (a rotation), at most every ``refresh_s``: a flood of receipts naming made-up keys costs
        one read per ``refresh_s``, not one per receipt, and a genuine receipt of a new key is never judged on a read
    older than it."""

    def __init__(
        self,
        folder: Path | None = None,
        *,
        url: str = "",
        refresh_s: float = 1.0,
        timeout_s: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if folder is None and not url:
            raise ValueError("published receipt keys need a folder or a URL")
        self.folder = folder
        self.url = url
        self._refresh = refresh_s
        self._timeout = timeout_s
        self._mono = monotonic
        self._keys: dict[str, bytes] = {}
        self._read_at: float | None = None
        self.reads = 0

    async def _read(self) -> dict[str, bytes]:
        self.reads += 1
        if self.url:
            try:
                async with httpx.AsyncClient(timeout=self._timeout) as http:
                    response = await http.get(self.url)
                    response.raise_for_status()
                    return {k["key_id"]: b64url_decode(k["public_key"]) for k in response.json()["keys"]}
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                raise ReceiptKeysUnavailable(f"receipt keys not read from {self.url}: {type(exc).__name__}") from exc
        assert self.folder is not None  # noqa: S101 - one of the two is set (__init__)
        try:
            return ReceiptKeyring(self.folder).public_keys()
        except (OSError, ValueError) as exc:
            raise ReceiptKeysUnavailable(f"receipt keys not read from {self.folder}: {type(exc).__name__}") from exc

    async def get(self, key_id: str) -> bytes | None:
        """The public key published under ``key_id``, or None when none is; raise ``ReceiptKeysUnavailable`` when
        the keys must be read and cannot be."""
        return (await self.get_many([key_id]))[key_id]

    async def get_many(self, key_ids: Iterable[str]) -> dict[str, bytes | None]:
        """Each key id's public key (None when none is published), with at most one read for all the ids not known
        yet: a batch naming many made-up key ids waits out one interval, not one per id."""
        wanted = set(key_ids)
        if not wanted <= self._keys.keys():
            if self._read_at is not None:
                # Read lately: wait out the interval instead of answering "unknown" from a read that may predate
                # the key (ingress publishes a key before it signs with it, so a read after the receipt is
                # conclusive).
                await asyncio.sleep(max(0.0, self._read_at + self._refresh - self._mono()))
            if not wanted <= self._keys.keys():  # another caller may have read them meanwhile
                keys = await self._read()
                self._keys, self._read_at = keys, self._mono()
        return {key_id: self._keys.get(key_id) for key_id in wanted}
