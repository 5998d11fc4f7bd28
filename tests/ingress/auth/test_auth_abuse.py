"""Authentication under attack: a forger cannot lock out a genuine key, nor make us do unbounded work.

- tagged keys: once a key was accepted, wrong secrets fail its stored tag and never reach bcrypt, so even a cold
  process accepts the genuine key at once in the middle of a flood;
- key lockout: a flood of wrong secrets for a real key id, then the genuine key is accepted on a cache miss (its
  record invalidated, its cache entry expired, or a process that never saw it);
- forged key ids: distinct made-up key ids cost one record read each and no more, bounded memory, no bcrypt,
  and their signals aggregate;
- bcrypt runs on the lane's own threads, one at a time per key id, suspects at a bounded rate.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from ingress.admin.tenancy.admin_keys import create_admin_key
from ingress.admin.tenancy.keys import create_key, rotate_key
from ingress.auth.deps import CustomerDep
from ingress.auth.keys import (
    ALPHABET,
    KID_LEN,
    PREFIXES,
    SECRET_LEN,
    _checksum,
    generate_key,
    key_tag,
    key_verifier,
    parse_key,
)
from ingress.auth.lane import BcryptLane, VerificationBusy
from ingress.auth.records import AuthFailure, KeyRecord
from ingress.auth.store import postgres_record_loader
from ingress.auth.verifier import KeyVerifier
from schemas.admin import KeyCreate, KeyRotate
from tests.conftest import SeededCustomer
from tests.support.key_records import key_record

pytestmark = pytest.mark.timeout(120)


def _wrong_secrets(key: str) -> Iterator[str]:
    """Keys with the real key's id, valid checksums and wrong secrets, all distinct (so each needs a bcrypt)."""
    kind = "live" if key.startswith(PREFIXES["live"]) else "admin"
    prefix = PREFIXES[kind]
    kid = key[len(prefix) : len(prefix) + KID_LEN]
    index = 0
    while True:
        body = f"{prefix}{kid}_{index:0{SECRET_LEN}d}"
        index += 1
        yield body + _checksum(body)


def _forged_key_id() -> str:
    """A key of a made-up key id: well formed, checksum right, unknown to the database."""
    import secrets

    body = PREFIXES["live"] + "".join(secrets.choice(ALPHABET) for _ in range(KID_LEN))
    body += "_" + "".join(secrets.choice(ALPHABET) for _ in range(SECRET_LEN))
    return body + _checksum(body)


class Clock:
    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


class Store:
    """Key records by key id, counting reads (the verifier's one dependency, in memory)."""

    def __init__(self, *records: KeyRecord) -> None:
        self.records = {r.key_id: r for r in records}
        self.reads = 0

    async def __call__(self, _kind: str, key_id: str) -> KeyRecord | None:
        self.reads += 1
        return self.records.get(key_id)


async def _refused(verifier: KeyVerifier, key: str) -> AuthFailure:
    with pytest.raises(AuthFailure) as info:
        await verifier.verify(f"Bearer {key}", "live")
    return info.value


async def test_genuine_key_accepted_on_every_kind_of_cache_miss_after_a_flood_of_wrong_secrets() -> None:
    key = generate_key("live").key
    store = Store(key_record(key, tier="free"))
    clock = Clock()
    lane = BcryptLane(suspect_rate_per_s=200, suspect_burst=5)
    verifier = KeyVerifier(store, lane=lane, ttl_s=300, max_failures=3, monotonic=clock)  # type: ignore[arg-type]
    await verifier.verify(f"Bearer {key}", "live")
    forged = _wrong_secrets(key)
    for _ in range(40):  # twice the old lockout threshold, and far past this verifier's suspect threshold
        failure = await _refused(verifier, next(forged))
        assert failure.reason == "unknown"
        assert failure.key_id == parse_key(key).key_id  # the signal names the key under attack
    assert verifier.is_suspect(parse_key(key).key_id)
    bcrypts = verifier.bcrypt_calls

    verifier.invalidate(parse_key(key).key_id)  # a write to its customer or key
    assert (await verifier.verify(f"Bearer {key}", "live")).key_id == parse_key(key).key_id
    verifier.invalidate()  # every key at once
    assert (await verifier.verify(f"Bearer {key}", "live")).key_id == parse_key(key).key_id
    clock.now += 301  # idle past the cache's time to live
    assert (await verifier.verify(f"Bearer {key}", "live")).key_id == parse_key(key).key_id
    assert verifier.bcrypt_calls == bcrypts  # what bcrypt proved is kept: none of these ran it again

    # A process that never saw the key, with the flood going on before the genuine key arrives.
    fresh = KeyVerifier(store, lane=lane, max_failures=3)  # type: ignore[arg-type]
    for _ in range(40):
        await _refused(fresh, next(forged))
    assert fresh.is_suspect(parse_key(key).key_id)
    assert (await fresh.verify(f"Bearer {key}", "live")).key_id == parse_key(key).key_id
    lane.close()


async def test_genuine_key_gets_through_a_concurrent_flood_on_a_cold_process() -> None:
    key = generate_key("live").key
    store = Store(key_record(key, tier="free"))
    lane = BcryptLane(workers=2, per_key_waiting=2, suspect_rate_per_s=50, suspect_burst=2)
    verifier = KeyVerifier(store, lane=lane, max_failures=2)  # type: ignore[arg-type]
    forged = _wrong_secrets(key)
    outcomes: dict[str, int] = {"refused": 0, "busy": 0}

    async def forger() -> None:
        for _ in range(15):
            try:
                await verifier.verify(f"Bearer {next(forged)}", "live")
            except AuthFailure:
                outcomes["refused"] += 1
            except VerificationBusy:
                outcomes["busy"] += 1
                await asyncio.sleep(0)

    flood = [asyncio.create_task(forger()) for _ in range(8)]
    accepted = False
    deadline = time.monotonic() + 60
    while not accepted and time.monotonic() < deadline:  # a genuine client retries a 503, as told to
        try:
            accepted = (await verifier.verify(f"Bearer {key}", "live")).key_id == parse_key(key).key_id
        except VerificationBusy:
            await asyncio.sleep(0.05)
    await asyncio.gather(*flood)
    assert accepted
    assert outcomes["refused"] + outcomes["busy"] == 8 * 15
    assert outcomes["busy"] > 0  # the flood was cut short, not queued without bound
    assert lane.peak_running <= 1  # one key id: never more than one bcrypt at a time
    assert lane.thread_names
    assert all(name.startswith("bcrypt") for name in lane.thread_names)
    assert store.reads <= 2  # the attacked key's record is read once, not once per forged try
    lane.close()


async def test_suspect_bcrypts_follow_the_rate_and_leave_a_thread_for_other_keys() -> None:
    attacked, other = generate_key("live").key, generate_key("live").key
    store = Store(key_record(attacked, tier="free"), key_record(other, tier="free"))
    rate, burst = 20.0, 2.0
    lane = BcryptLane(workers=2, suspect_rate_per_s=rate, suspect_burst=burst)
    verifier = KeyVerifier(store, lane=lane, max_failures=1)  # type: ignore[arg-type]
    forged = _wrong_secrets(attacked)
    await _refused(verifier, next(forged))  # one failure: from here on a suspect
    started = time.monotonic()
    before = lane.suspect_calls
    for _ in range(25):
        await _refused(verifier, next(forged))
    elapsed = time.monotonic() - started
    suspects = lane.suspect_calls - before
    assert suspects == 25
    assert suspects <= burst + rate * elapsed + 1  # the bucket: at most its burst plus its rate
    # Meanwhile another key's first use is not a suspect and is accepted.
    assert not verifier.is_suspect(parse_key(other).key_id)
    assert (await verifier.verify(f"Bearer {other}", "live")).key_id == parse_key(other).key_id
    lane.close()


async def test_distinct_forged_key_ids_cost_one_read_each_bounded_memory_and_no_bcrypt() -> None:
    store = Store()
    lane = BcryptLane()
    verifier = KeyVerifier(store, lane=lane, max_unknown_keys=300, max_tracked=300)  # type: ignore[arg-type]
    forged = [_forged_key_id() for _ in range(1000)]
    for key in forged:
        for _ in range(3):  # each forged key id tried three times
            failure = await _refused(verifier, key)
            assert failure.reason == "unknown"
            assert failure.key_id is None  # a made-up key id is never named in a signal
    assert store.reads == 1000  # the first try of each; the negative cache answers the rest
    assert verifier.bcrypt_calls == 0
    assert lane.calls == 0
    assert all(size <= 300 for size in verifier.tracked.values()), verifier.tracked
    # A recently refused forged key id is still answered from memory.
    reads = store.reads
    await _refused(verifier, forged[-1])
    assert store.reads == reads
    lane.close()


@pytest.fixture
async def protected(app: FastAPI) -> FastAPI:
    @app.get("/test/abuse/whoami")
    async def whoami(principal: CustomerDep) -> dict[str, str]:
        return {"customer_id": str(principal.customer_id)}

    return app


async def test_through_http_forgers_are_aggregated_and_the_genuine_key_stays_in(
    protected: FastAPI, client: httpx.AsyncClient, customer: SeededCustomer, pg_pool: asyncpg.Pool
) -> None:
    signals = protected.state.signals
    await signals.stop()  # flushes what was recorded and stops the periodic flush: this test drains it itself
    verifier = protected.state.auth.customers
    reads = verifier.record_loads
    for _ in range(200):
        response = await client.get("/test/abuse/whoami", headers={"Authorization": f"Bearer {_forged_key_id()}"})
        assert response.status_code == 401
        assert response.json()["details"]["reason"] == "unknown"
    assert verifier.record_loads - reads == 200  # one indexed read per distinct forged key id, no more
    forged = _wrong_secrets(customer.key)
    for _ in range(8):  # past the suspect threshold (5)
        response = await client.get("/test/abuse/whoami", headers={"Authorization": f"Bearer {next(forged)}"})
        assert response.status_code in (401, 503)
    events = signals.drain()
    auth_events = [e for e in events if e.kind == "auth_failure"]
    forged_ids = [e for e in auth_events if e.key_id is None]
    assert len(forged_ids) == 1
    assert forged_ids[0].count == 200
    attacked = [e for e in auth_events if e.key_id == customer.key_id]
    assert len(attacked) == 1
    assert attacked[0].customer_id == customer.id
    assert all(size <= verifier._unknown.max_entries for size in verifier.tracked.values())

    # A write to the customer drops every cached key; the genuine key is read again and accepted.
    await pg_pool.execute("UPDATE customers SET name = name || '-renamed' WHERE id = $1", customer.id)
    protected.state.auth.on_change({"table": "customers"})
    ok = await client.get("/test/abuse/whoami", headers={"Authorization": f"Bearer {customer.key}"})
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"customer_id": str(customer.id)}


async def test_a_tagged_key_is_accepted_at_once_through_a_flood_on_a_cold_process() -> None:
    """Once a key has been accepted anywhere, its tag is stored: wrong secrets fail the tag and never reach bcrypt,
    so a process that never saw the key accepts it on the first try, in the middle of the flood."""
    key = generate_key("live").key
    store = Store(replace(key_record(key, tier="free"), key_tag=key_tag(key)))
    lane = BcryptLane(workers=2, per_key_waiting=2, suspect_rate_per_s=1, suspect_burst=1)
    verifier = KeyVerifier(store, lane=lane, max_failures=2)  # type: ignore[arg-type]
    forged = _wrong_secrets(key)
    refused = 0

    async def forger() -> None:
        nonlocal refused
        for _ in range(50):
            with pytest.raises(AuthFailure):
                await verifier.verify(f"Bearer {next(forged)}", "live")
            refused += 1

    flood = [asyncio.create_task(forger()) for _ in range(8)]
    await asyncio.sleep(0)
    principal = await verifier.verify(f"Bearer {key}", "live")  # no retry: the first try
    await asyncio.gather(*flood)
    assert principal.key_id == parse_key(key).key_id
    assert refused == 400
    assert verifier.tag_refusals >= 399  # every distinct wrong secret (one may share the genuine key's read)
    assert lane.calls == 1  # the genuine key's bcrypt, and no other
    assert lane.refused == 0
    assert store.reads == 1
    lane.close()


async def test_the_tag_is_stored_at_the_first_accepted_use_and_spares_every_later_process_bcrypt(
    protected: FastAPI, client: httpx.AsyncClient, customer: SeededCustomer, pg_pool: asyncpg.Pool
) -> None:
    stored = await pg_pool.fetchval("SELECT key_tag FROM api_keys WHERE key_id = $1", customer.key_id)
    assert stored is None  # a key never used has no tag yet
    ok = await client.get("/test/abuse/whoami", headers={"Authorization": f"Bearer {customer.key}"})
    assert ok.status_code == 200

    async def tagged() -> bool:
        tag = await pg_pool.fetchval("SELECT key_tag FROM api_keys WHERE key_id = $1", customer.key_id)
        return tag == key_tag(customer.key)

    for _ in range(200):  # written in the background: wait for it, bounded
        if await tagged():
            break
        await asyncio.sleep(0.05)
    assert await tagged()

    # Another process (a verifier reading the same database): wrong secrets cost it no bcrypt, the key one.
    async def get_pool() -> asyncpg.Pool:
        return pg_pool

    lane = BcryptLane()
    fresh = KeyVerifier(postgres_record_loader(get_pool), lane=lane)
    forged = _wrong_secrets(customer.key)
    for _ in range(20):
        assert (await _refused(fresh, next(forged))).key_id == customer.key_id
    assert lane.calls == 0
    assert fresh.tag_refusals == 20
    assert (await fresh.verify(f"Bearer {customer.key}", "live")).customer_id == customer.id
    # bcrypt accepted the key once (in the first process), which stored its SHA-256 verifier beside the hash: the
    # other process accepts it with that, without bcrypt (docs/security.md, "bcrypt cost factor").
    assert lane.calls == 0
    assert fresh.verifier_accepts == 1
    lane.close()


async def test_keys_created_or_rotated_carry_their_tag_and_verifier_from_the_start(
    pg_pool: asyncpg.Pool, customer: SeededCustomer
) -> None:
    created = await create_key(
        pg_pool, KeyCreate(customer_id=customer.id, name=f"tagged-{uuid.uuid4().hex[:6]}"), rounds=4
    )
    rotated = await rotate_key(pg_pool, created.key_id, KeyRotate(grace_period_s=60), rounds=4)
    admin = await create_admin_key(pg_pool, f"tagged-admin-{uuid.uuid4().hex[:6]}", rounds=4)
    for table, made in (("api_keys", created), ("api_keys", rotated), ("admin_keys", admin)):
        row = await pg_pool.fetchrow(
            f"SELECT key_hash, key_tag, key_verifier FROM {table} WHERE key_id = $1", made.key_id
        )
        assert row["key_tag"] == key_tag(made.key), table
        assert row["key_verifier"] == key_verifier(made.key, row["key_hash"]), table

    async def get_pool() -> asyncpg.Pool:
        return pg_pool

    # the very first use of a new key, in a process that never saw it, runs no bcrypt (the cold-start path)
    lane = BcryptLane()
    cold = KeyVerifier(postgres_record_loader(get_pool), lane=lane)
    for made, kind in ((created, "live"), (rotated, "live"), (admin, "admin")):
        assert (await cold.verify(f"Bearer {made.key}", kind)).key_id == made.key_id  # type: ignore[arg-type]
    assert lane.calls == 0
    assert cold.verifier_accepts == 3
    lane.close()
