"""The SHA-256 verifier stored beside the bcrypt hash: a key bcrypt accepted once is accepted by every later
process without bcrypt, a wrong secret is refused without bcrypt, and a verifier left behind by a changed hash
accepts nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ingress.auth.keys import generate_key, hash_key, key_tag, key_verifier
from ingress.auth.lane import BcryptLane
from ingress.auth.records import AuthFailure, KeyRecord
from ingress.auth.verifier import KeyVerifier
from tests.support.key_records import key_record


class Store:
    """One key's row, as PostgreSQL holds it, with the tag writer's update applied to it."""

    def __init__(self, record: KeyRecord) -> None:
        self.record = record
        self.writes = 0

    async def load(self, kind: str, key_id: str) -> KeyRecord | None:  # noqa: ARG002 - one kind here
        return self.record if key_id == self.record.key_id else None

    async def write(self, kind: str, key_id: str, key_hash: str, tag: str, verifier: str) -> None:  # noqa: ARG002
        if key_hash == self.record.key_hash:
            self.writes += 1
            self.record = replace(
                self.record, key_tag=self.record.key_tag or tag, key_verifier=self.record.key_verifier or verifier
            )


def _wrong_secret(key: str) -> str:
    from ingress.auth.keys import _checksum

    body = key[: -(32 + 6)] + "0" * 32
    return body + _checksum(body)


async def test_a_key_bcrypt_accepted_once_is_accepted_by_a_fresh_process_without_bcrypt() -> None:
    key = generate_key("live").key
    store = Store(key_record(key))
    first_lane = BcryptLane()
    first = KeyVerifier(store.load, write_tag=store.write, lane=first_lane)  # type: ignore[arg-type]
    await first.verify(f"Bearer {key}", "live")
    await first.verify(f"Bearer {key}", "live")
    assert first_lane.calls == 1
    for _ in range(100):  # the tag and verifier are written in the background
        if store.record.key_verifier is not None:
            break
        import asyncio

        await asyncio.sleep(0.01)
    assert store.record.key_verifier == key_verifier(key, store.record.key_hash)
    assert store.record.key_tag == key_tag(key)

    restarted_lane = BcryptLane()
    restarted = KeyVerifier(store.load, write_tag=store.write, lane=restarted_lane)  # type: ignore[arg-type]
    principal = await restarted.verify(f"Bearer {key}", "live")
    assert principal.key_id == store.record.key_id
    assert restarted_lane.calls == 0
    assert restarted.verifier_accepts == 1
    with pytest.raises(AuthFailure):
        await restarted.verify(f"Bearer {_wrong_secret(key)}", "live")
    assert restarted_lane.calls == 0
    first_lane.close()
    restarted_lane.close()


async def test_a_wrong_secret_that_passes_the_tag_is_refused_by_the_verifier_without_bcrypt() -> None:
    key = generate_key("live").key
    wrong = _wrong_secret(key)
    record = key_record(key)
    # A row whose tag happens to match the wrong secret (1 in 2^32): the verifier still refuses it.
    store = Store(replace(record, key_tag=key_tag(wrong), key_verifier=key_verifier(key, record.key_hash)))
    lane = BcryptLane()
    verifier = KeyVerifier(store.load, lane=lane)  # type: ignore[arg-type]
    with pytest.raises(AuthFailure):
        await verifier.verify(f"Bearer {wrong}", "live")
    assert lane.calls == 0
    lane.close()


async def test_a_verifier_left_behind_by_a_changed_hash_accepts_neither_key() -> None:
    old = generate_key("live").key
    record = key_record(old)
    stale = key_verifier(old, record.key_hash)
    new_hash = hash_key(old, rounds=4)  # the row's hash replaced (same key id), its verifier not cleared
    store = Store(replace(record, key_hash=new_hash, key_tag=key_tag(old), key_verifier=stale))
    lane = BcryptLane()
    verifier = KeyVerifier(store.load, lane=lane)  # type: ignore[arg-type]
    with pytest.raises(AuthFailure):
        await verifier.verify(f"Bearer {old}", "live")
    assert lane.calls == 0
    lane.close()
