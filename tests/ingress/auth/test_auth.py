"""Key format and verification against the real PostgreSQL: each 401 reason, the cache, failure limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from ingress.auth.deps import CustomerDep
from ingress.auth.keys import MalformedKey, generate_key, hash_key, parse_key
from ingress.auth.records import AuthFailure, KeyRecord
from ingress.auth.verifier import KeyVerifier
from tests.conftest import SeededCustomer


def test_generated_keys_parse_and_carry_their_id() -> None:
    for kind in ("live", "admin"):
        generated = generate_key(kind)  # type: ignore[arg-type]
        assert generated.key.startswith(f"sk_{kind}_")
        assert parse_key(generated.key).key_id == generated.key_id


@pytest.mark.parametrize(
    "raw", ["", "sk_live_", "sk_test_abc", "Bearer x", "sk_live_" + "a" * 51, "sk_live_ÄÄÄÄÄÄÄÄÄÄÄÄ_" + "a" * 38]
)
def test_malformed_keys_are_refused(raw: str) -> None:
    with pytest.raises(MalformedKey):
        parse_key(raw)


def test_one_changed_character_fails_the_checksum() -> None:
    key = generate_key("live").key
    position = 20
    swapped = key[:position] + ("A" if key[position] != "A" else "B") + key[position + 1 :]
    with pytest.raises(MalformedKey):
        parse_key(swapped)


def _record(key: str, **changes: object) -> KeyRecord:
    base = {
        "id": __import__("uuid").uuid4(),
        "key_id": parse_key(key).key_id,
        "key_hash": hash_key(key, rounds=4),
        "name": "k",
        "active": True,
        "revoked_at": None,
        "expires_at": None,
    }
    base.update(changes)
    return KeyRecord(**base)  # type: ignore[arg-type]


async def test_steady_state_never_runs_bcrypt_and_wrong_secrets_never_do_once_the_key_is_tagged() -> None:
    key = generate_key("live").key
    record = _record(key)
    loads = 0

    async def load(kind: str, key_id: str) -> KeyRecord | None:
        nonlocal loads
        loads += 1
        return record if key_id == record.key_id else None

    verifier = KeyVerifier(load, max_failures=3)  # type: ignore[arg-type]
    for _ in range(50):
        await verifier.verify(f"Bearer {key}", "live")
    assert verifier.bcrypt_calls == 1
    assert loads == 1
    # Same key id, wrong secrets (valid checksums): the key's tag, computed at its first accepted use, refutes
    # each distinct one without bcrypt, the negative cache a repeated one; none costs a record read (the cached
    # record serves), none locks the key.
    from ingress.auth.keys import _checksum

    kid = key[len("sk_live_") : len("sk_live_") + 12]
    for i in range(10):
        body = f"sk_live_{kid}_" + f"{i:032d}"
        forged = body + _checksum(body)
        for _ in range(2):
            with pytest.raises(AuthFailure) as info:
                await verifier.verify(f"Bearer {forged}", "live")
            assert info.value.reason == "unknown"
    assert verifier.bcrypt_calls == 1
    assert verifier.tag_refusals == 10
    assert loads == 1
    assert (await verifier.verify(f"Bearer {key}", "live")).key_id == record.key_id


async def test_an_untagged_key_runs_bcrypt_once_per_distinct_wrong_secret() -> None:
    key = generate_key("live").key
    record = _record(key)

    async def load(kind: str, key_id: str) -> KeyRecord | None:
        return record

    verifier = KeyVerifier(load)  # type: ignore[arg-type]
    from ingress.auth.keys import _checksum

    kid = key[len("sk_live_") : len("sk_live_") + 12]
    for i in range(4):
        body = f"sk_live_{kid}_" + f"{i:032d}"
        for _ in range(2):
            with pytest.raises(AuthFailure):
                await verifier.verify(f"Bearer {body + _checksum(body)}", "live")
    assert verifier.bcrypt_calls == 4  # never accepted here, so no tag yet: one bcrypt per distinct secret
    assert (await verifier.verify(f"Bearer {key}", "live")).key_id == record.key_id
    assert verifier.bcrypt_calls == 5


async def test_expiry_follows_the_injected_clock() -> None:
    key = generate_key("live").key
    now = datetime(2026, 1, 1, tzinfo=UTC)
    record = _record(key, expires_at=now + timedelta(days=7))
    clock = {"now": now}

    async def load(kind: str, key_id: str) -> KeyRecord | None:
        return record

    verifier = KeyVerifier(load, clock=lambda: clock["now"])  # type: ignore[arg-type]
    await verifier.verify(f"Bearer {key}", "live")
    clock["now"] = now + timedelta(days=7, seconds=1)
    with pytest.raises(AuthFailure) as info:
        await verifier.verify(f"Bearer {key}", "live")
    assert info.value.reason == "expired"


@pytest.fixture
async def protected(app: FastAPI) -> FastAPI:
    @app.get("/test/whoami")
    async def whoami(principal: CustomerDep) -> dict[str, str]:
        return {"customer_id": str(principal.customer_id)}

    return app


async def _whoami(client: httpx.AsyncClient, header: str | None) -> httpx.Response:
    headers = {"Authorization": header} if header is not None else {}
    return await client.get("/test/whoami", headers=headers)


async def test_each_401_reason_through_http(
    protected: FastAPI, client: httpx.AsyncClient, customer: SeededCustomer, pg_pool: asyncpg.Pool
) -> None:
    ok = await _whoami(client, f"Bearer {customer.key}")
    assert ok.status_code == 200
    assert ok.json() == {"customer_id": str(customer.id)}

    cases = {
        "missing": None,
        "malformed": "Bearer sk_live_nope",
        "unknown": f"Bearer {generate_key('live').key}",
    }
    for reason, header in cases.items():
        response = await _whoami(client, header)
        assert response.status_code == 401, reason
        body = response.json()
        assert body["details"]["reason"] == reason
        assert body["request_id"] == response.headers["x-request-id"]
        assert customer.key not in response.text

    await pg_pool.execute(
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE key_id = $1", customer.key_id
    )
    protected.state.auth.customers.invalidate(customer.key_id)
    assert (await _whoami(client, f"Bearer {customer.key}")).json()["details"]["reason"] == "expired"
    await pg_pool.execute("UPDATE api_keys SET revoked_at = now(), active = false WHERE key_id = $1", customer.key_id)
    protected.state.auth.customers.invalidate(customer.key_id)
    assert (await _whoami(client, f"Bearer {customer.key}")).json()["details"]["reason"] == "revoked"


async def test_revocation_reaches_the_cache_through_notify(
    protected: FastAPI, client: httpx.AsyncClient, customer: SeededCustomer, pg_pool: asyncpg.Pool
) -> None:
    import asyncio
    import time

    assert (await _whoami(client, f"Bearer {customer.key}")).status_code == 200
    for _ in range(50):  # the listener connects in the background
        if protected.state.changes.connected:
            break
        await asyncio.sleep(0.05)
    await pg_pool.execute("UPDATE api_keys SET revoked_at = now(), active = false WHERE key_id = $1", customer.key_id)
    # Wait for the change, bounded (NOTIFY usually lands within milliseconds; a busy machine may take longer), then
    # assert what must hold: the revoked key is refused as revoked, and stays refused.
    deadline = time.monotonic() + 15
    while (response := await _whoami(client, f"Bearer {customer.key}")).status_code != 401:
        assert time.monotonic() < deadline, "the revocation never reached the cache"
        await asyncio.sleep(0.02)
    assert response.json()["details"]["reason"] == "revoked"
    assert (await _whoami(client, f"Bearer {customer.key}")).status_code == 401
