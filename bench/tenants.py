"""The tenant mix: customers through the admin API, each with the guide's policy and a rate limit the load never
reaches, and keys cached across runs.

A key is hashed with bcrypt at the service's cost (12, ~0.3 s): 500 keys are ~150 CPU seconds, so they are made
once into ``.state/bench/keys-v1.json`` and inserted directly into the run's database as the admin API stores them
(hash and tag), with the SHA-256 verifier the service writes at a key's first accepted use: the keys of the run are
keys that were in use before (what the cold start measures), without a first-use bcrypt per key at every run.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.environment import BENCH_STATE, create_customer_with_policy
from ingress.auth.keys import generate_key, hash_key, key_tag, key_verifier

KEYS_CACHE = BENCH_STATE / "keys-v1.json"
ROUNDS = 12  # BCRYPT_ROUNDS' default


@dataclass
class Customer:
    customer_id: str
    policy_id: str
    keys: list[str] = field(default_factory=list)


def _make_key(_: int) -> dict[str, str]:
    generated = generate_key("live")
    return {"key": generated.key, "key_id": generated.key_id, "hash": hash_key(generated.key, ROUNDS)}


def cached_keys(count: int, path: Path = KEYS_CACHE) -> list[dict[str, str]]:
    """``count`` keys with their bcrypt hashes, made (in a process pool) only when the cache has fewer."""
    keys: list[dict[str, str]] = json.loads(path.read_text()) if path.exists() else []
    if len(keys) < count:
        with ProcessPoolExecutor() as pool:
            keys += list(pool.map(_make_key, range(count - len(keys))))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(keys))
        path.chmod(0o600)
    return keys[:count]


async def create_customers(
    http: httpx.AsyncClient, admin_key: str, database_url: str, *, customers: int, keys_each: int, rules: dict[str, Any]
) -> list[Customer]:
    admin = {"Authorization": f"Bearer {admin_key}"}
    made: list[Customer] = []
    for index in range(customers):
        customer_id, policy_id = await create_customer_with_policy(
            http, admin, f"bench customer {index}", f"bench policy {index}", rules
        )
        made.append(Customer(customer_id, policy_id))
    keys = await asyncio.to_thread(cached_keys, customers * keys_each)
    rows = []
    for index, key in enumerate(keys):
        customer = made[index // keys_each]
        customer.keys.append(key["key"])
        verifier = key_verifier(key["key"], key["hash"])
        rows.append(
            (key["key_id"], customer.customer_id, key["hash"], f"bench key {index}", key_tag(key["key"]), verifier)
        )
    conn = await asyncpg.connect(database_url)
    try:
        await conn.executemany(
            "INSERT INTO api_keys (key_id, customer_id, key_hash, name, key_tag, key_verifier)"
            " VALUES ($1, $2::uuid, $3, $4, $5, $6)",
            rows,
        )
    finally:
        await conn.close()
    return made
