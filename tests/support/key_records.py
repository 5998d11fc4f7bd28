"""A stored key's record for a key, as the verifier reads it, for tests of the verifier without PostgreSQL."""

from __future__ import annotations

import uuid

from ingress.auth.keys import hash_key, parse_key
from ingress.auth.records import KeyRecord


def key_record(key: str, *, tier: str = "pro") -> KeyRecord:
    """A live customer key's record: its bcrypt hash at the lowest cost, no tag or verifier yet."""
    return KeyRecord(
        id=uuid.uuid4(),
        key_id=parse_key(key).key_id,
        key_hash=hash_key(key, rounds=4),
        name="k",
        active=True,
        revoked_at=None,
        expires_at=None,
        customer_id=uuid.uuid4(),
        tier=tier,
    )
