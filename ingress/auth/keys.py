"""API key format: generation, parsing and hashing. Pure apart from the random source and bcrypt.

A key reads ``sk_live_<kid>_<secret><check>`` (``sk_admin_`` for operators):

- ``kid``: 12 base62 characters, the public key id (stored as ``keyid_<kid>``), so lookup is one indexed read;
- ``secret``: 32 base62 characters from ``secrets`` (about 190 bits);
- ``check``: 6 base62 characters of CRC-32 over everything before it, so a mistyped or made-up key is refused
  before any database or bcrypt work. The checksum is not a secret and proves nothing about authenticity.

A bcrypt hash of the whole key is stored, and beside it a tag (``key_tag``): 32 bits of a SHA-256 of the key,
written at creation or the key's first accepted use. A wrong secret fails the tag (all but 1 in 2^32 do) and is
refused without bcrypt, so forgeries cannot make us run bcrypt for a tagged key.

And a verifier (``key_verifier``): the whole SHA-256 of the key under its own context, written at creation (or, for
a key made before verifiers, at its first accepted use, bcrypt having proved it then). Every first use, in any
process (a restart, a new worker), compares SHA-256s instead of running bcrypt: the keys carry about 190 bits of
entropy, so a fast hash at rest is as far beyond offline guessing as bcrypt's (docs/security.md, "bcrypt cost
factor"). Keys that have no verifier yet are proved by bcrypt, as before.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import zlib
from dataclasses import dataclass
from typing import Literal

import bcrypt

ALPHABET = string.digits + string.ascii_letters
KID_LEN = 12
SECRET_LEN = 32
CHECK_LEN = 6
PREFIXES: dict[str, str] = {"live": "sk_live_", "admin": "sk_admin_"}
KEY_ID_PREFIX = "keyid_"
KeyKind = Literal["live", "admin"]


class MalformedKey(ValueError):
    """The presented string is not a key of ours (wrong prefix, length, alphabet or checksum)."""


@dataclass(frozen=True)
class GeneratedKey:
    kind: KeyKind
    key: str
    key_id: str


@dataclass(frozen=True)
class ParsedKey:
    kind: KeyKind
    key_id: str


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        chars.append(ALPHABET[rem])
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), CHECK_LEN)


def _random(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def generate_key(kind: KeyKind) -> GeneratedKey:
    kid = _random(KID_LEN)
    body = f"{PREFIXES[kind]}{kid}_{_random(SECRET_LEN)}"
    return GeneratedKey(kind=kind, key=body + _checksum(body), key_id=KEY_ID_PREFIX + kid)


_SUFFIX_LEN = KID_LEN + 1 + SECRET_LEN + CHECK_LEN
_ALLOWED = frozenset(ALPHABET)


def parse_key(raw: str) -> ParsedKey:
    """Return the key's kind and key id, or raise ``MalformedKey``. Constant work; touches no storage."""
    kind = next((k for k, prefix in PREFIXES.items() if raw.startswith(prefix)), None)
    if kind is None:
        raise MalformedKey("unknown key prefix")
    rest = raw[len(PREFIXES[kind]) :]
    if len(rest) != _SUFFIX_LEN or rest[KID_LEN] != "_":
        raise MalformedKey("wrong key length")
    kid, tail = rest[:KID_LEN], rest[KID_LEN + 1 :]
    if not (set(kid) <= _ALLOWED and set(tail) <= _ALLOWED):
        raise MalformedKey("unexpected characters")
    body, check = raw[:-CHECK_LEN], raw[-CHECK_LEN:]
    if not secrets.compare_digest(_checksum(body), check):
        raise MalformedKey("checksum mismatch")
    return ParsedKey(kind=kind, key_id=KEY_ID_PREFIX + kid)  # type: ignore[arg-type]


def hash_key(key: str, rounds: int = 12) -> str:
    return bcrypt.hashpw(key.encode(), bcrypt.gensalt(rounds)).decode()


def verify_key_hash(key: str, key_hash: str) -> bool:
    try:
        return bcrypt.checkpw(key.encode(), key_hash.encode())
    except ValueError:
        return False


_TAG_CONTEXT = b"governance key tag v1\x00"


def key_tag(key: str) -> str:
    """The tag stored beside a key's bcrypt hash: 8 hex digits (32 bits) of SHA-256 over the key."""
    return hashlib.sha256(_TAG_CONTEXT + key.encode()).hexdigest()[:8]


_VERIFIER_CONTEXT = b"governance key verifier v1\x00"


def key_verifier(key: str, key_hash: str) -> str:
    """The verifier stored beside the bcrypt hash once bcrypt accepted the key: SHA-256 over the bcrypt hash and the
    key (64 hex digits), under a context of its own. Bound to the hash: were a row's hash ever replaced with a
    verifier left behind, that verifier would accept neither the old key nor the new one."""
    return hashlib.sha256(_VERIFIER_CONTEXT + key_hash.encode() + b"\x00" + key.encode()).hexdigest()
