"""``govern``, the operator CLI, against the run's PostgreSQL: every command, its ``--json`` output, its errors.

The CLI calls ``asyncio.run`` itself, so it runs in a worker thread here, off the tests' event loop.
"""

from __future__ import annotations

import asyncio
import json
import stat
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from click.testing import Result
from fastapi import FastAPI
from typer.testing import CliRunner

from ingress.auth.deps import CustomerDep
from ingress.auth.keys import parse_key
from ingress.cli.main import app as cli
from ingress.settings import IngressSettings
from tests.conftest import SeededCustomer

runner = CliRunner()


@pytest.fixture
def env(settings: IngressSettings, migrated: str) -> dict[str, str]:
    return {
        "ENVIRONMENT": "test",
        "DATABASE_URL": settings.database_url,
        "BCRYPT_ROUNDS": "4",
        "CLICKHOUSE_URL": settings.clickhouse_dsn,
        "GOVERNANCE_STATE_DIR": str(settings.state_dir),
    }


async def govern(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    return await asyncio.to_thread(runner.invoke, cli, list(args), env=env, input=stdin)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def as_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def failed(result: Result, message: str) -> None:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert f"error: {message}" in result.stderr, result.stderr


def _name() -> str:
    return f"CLI Customer {uuid.uuid4().hex[:8]}"


async def test_customers(env: dict[str, str], pg_pool: asyncpg.Pool) -> None:
    name = _name()
    created = await govern(env, "customers", "create", name, "--tier", "pro", "--rate-limit", "500/60")
    ok(created)
    assert f"name:                   {name}" in created.stdout
    row = await pg_pool.fetchrow("SELECT id, tier, rate_limit_capacity FROM customers WHERE name = $1", name)
    assert (row["tier"], row["rate_limit_capacity"]) == ("pro", 500)
    customer_id = str(row["id"])

    shown = as_json(await govern(env, "customers", "show", customer_id, "--json"))
    assert shown["rate_limit"] == {"capacity": 500, "window_s": 60}
    assert shown["name"] == name

    listed = as_json(await govern(env, "customers", "list", "--json", "--limit", "500"))
    assert shown in listed["items"]
    table = ok(await govern(env, "customers", "list", "--limit", "500")).stdout
    assert table.splitlines()[0].split() == ["ID", "NAME", "TIER", "RATE_LIMIT", "CREATED_AT"]
    assert customer_id in table

    updated = as_json(
        await govern(env, "customers", "update", customer_id, "--tier", "free", "--rate-limit", "default", "--json")
    )
    assert (updated["tier"], updated["rate_limit"]) == ("free", None)

    failed(await govern(env, "customers", "create", name.lower()), f"a customer named {name.lower()!r} already exists")
    failed(await govern(env, "customers", "create", name, "--tier", "gold"), "tier: Input should be 'free' or 'pro'")
    failed(await govern(env, "customers", "create", " "), "name: String should have at least 1 character")
    failed(await govern(env, "customers", "create", "x", "--rate-limit", "fast"), "--rate-limit must read")
    failed(await govern(env, "customers", "show", str(uuid.uuid4())), "customer not found")
    failed(await govern(env, "customers", "show", "nope"), "customer not found")

    cancelled = await govern(env, "customers", "delete", customer_id, stdin="n\n")
    failed(cancelled, "cancelled")
    deleted = as_json(await govern(env, "customers", "delete", customer_id, "--yes", "--json"))
    assert (deleted["id"], deleted["keys_revoked"], deleted["policies_deactivated"]) == (customer_id, 0, 0)
    failed(await govern(env, "customers", "show", customer_id), "customer not found")
    failed(await govern(env, "customers", "delete", customer_id, "--yes"), "customer not found")


async def test_keys(env: dict[str, str], customer: SeededCustomer, pg_pool: asyncpg.Pool) -> None:
    cid = str(customer.id)
    created = ok(await govern(env, "keys", "create", "--customer", cid, "--name", "cli-key"))
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("sk_live_")
    key_id = parse_key(key).key_id
    assert await pg_pool.fetchval("SELECT name FROM api_keys WHERE key_id = $1", key_id) == "cli-key"

    listed = as_json(await govern(env, "keys", "list", "--customer", cid, "--json"))
    assert {k["key_id"] for k in listed["items"]} == {customer.key_id, key_id}
    table = ok(await govern(env, "keys", "list", "--customer", cid))
    shown = ok(await govern(env, "keys", "show", key_id))
    for result in (table, shown):
        assert key not in result.stdout
    assert "status:                 active" in shown.stdout

    failed(
        await govern(env, "keys", "create", "--customer", cid, "--name", "CLI-KEY"),
        "this customer already has a live key named 'CLI-KEY'",
    )
    failed(await govern(env, "keys", "create", "--customer", str(uuid.uuid4()), "--name", "x"), "customer not found")
    failed(await govern(env, "keys", "create", "--customer", "nope", "--name", "x"), "customer_id: Input should be")
    failed(await govern(env, "keys", "show", "keyid_nothing"), "key not found")

    rotated = ok(await govern(env, "keys", "rotate", key_id, "--grace-period", "60"))
    new_key = rotated.stdout.strip().splitlines()[-1]
    assert new_key.startswith("sk_live_")
    assert new_key != key
    assert f"replaces_key_id:        {key_id}" in rotated.stdout
    old = as_json(await govern(env, "keys", "show", key_id, "--json"))
    assert old["status"] == "rotated"
    failed(await govern(env, "keys", "rotate", key_id), "this key was already rotated")
    failed(await govern(env, "keys", "rotate", key_id, "--grace-period", "-5"), "grace_period_s: Input should be")

    rotated_json = as_json(await govern(env, "keys", "rotate", parse_key(new_key).key_id, "--json"))
    assert rotated_json["key"].startswith("sk_live_")

    revoked = ok(await govern(env, "keys", "revoke", customer.key_id))
    assert f"key {customer.key_id} revoked" in revoked.stdout
    assert as_json(await govern(env, "keys", "show", customer.key_id, "--json"))["status"] == "revoked"
    failed(await govern(env, "keys", "rotate", customer.key_id), "this key is revoked")


async def test_policies(env: dict[str, str], customer: SeededCustomer, tmp_path: Path) -> None:
    cid = str(customer.id)
    rules = {"max_tokens": 500, "allowed_models": ["gpt-4"]}
    created = as_json(
        await govern(
            env, "policies", "create", "--customer", cid, "--name", "CLI policy", "--rules", json.dumps(rules), "--json"
        )
    )
    assert (created["rules"], created["version"], created["mode"], created["active"]) == (rules, 1, "enforce", True)
    pid = created["id"]

    rules_file = tmp_path / "rules.json"
    rules_file.write_text(json.dumps({"block_personal_data": True}))
    updated = as_json(
        await govern(
            env, "policies", "update", pid, "--rules-file", str(rules_file), "--mode", "shadow", "--inactive", "--json"
        )
    )
    assert (updated["rules"], updated["mode"], updated["active"], updated["version"]) == (
        {"block_personal_data": True},
        "shadow",
        False,
        2,
    )
    renamed = as_json(await govern(env, "policies", "update", pid, "--name", "Renamed", "--active", "--json"))
    assert (renamed["name"], renamed["active"], renamed["version"]) == ("Renamed", True, 3)

    shown = ok(await govern(env, "policies", "show", pid))
    assert '{"block_personal_data": true}' in shown.stdout
    listed = as_json(await govern(env, "policies", "list", "--customer", cid, "--json"))
    assert [p["id"] for p in listed["items"]] == [pid]
    versions = as_json(await govern(env, "policies", "versions", pid, "--json"))
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert "VERSION" in ok(await govern(env, "policies", "versions", pid)).stdout

    failed(
        await govern(env, "policies", "create", "--customer", cid, "--name", "bad", "--rules", '{"max_tokens": "x"}'),
        "rules.max_tokens: Input should be a valid integer",
    )
    failed(
        await govern(env, "policies", "create", "--customer", cid, "--name", "bad", "--rules", '{"nope": 1}'),
        "rules.nope: Extra inputs are not permitted",
    )
    failed(
        await govern(env, "policies", "create", "--customer", cid, "--name", "bad", "--rules", "{"),
        "rules: not valid JSON",
    )
    failed(await govern(env, "policies", "create", "--customer", cid, "--name", "bad"), "give the rules")
    failed(
        await govern(env, "policies", "create", "--customer", cid, "--name", "x", "--rules", "{}", "--mode", "audit"),
        "mode: Input should be 'enforce' or 'shadow'",
    )
    failed(
        await govern(env, "policies", "create", "--customer", cid, "--name", "renamed", "--rules", "{}"),
        "this customer already has a policy named 'renamed'",
    )
    failed(await govern(env, "policies", "update", pid, "--rules", '{"risk_threshold": 500}'), "rules.risk_threshold")
    failed(await govern(env, "policies", "show", str(uuid.uuid4())), "policy not found")

    ok(await govern(env, "policies", "delete", pid, "--yes"))
    failed(await govern(env, "policies", "show", pid), "policy not found")
    assert len(as_json(await govern(env, "policies", "versions", pid, "--json"))) == 4


async def test_admin_create_key_prints_the_key_last_and_it_works(
    env: dict[str, str], app: FastAPI, client: httpx.AsyncClient
) -> None:
    result = ok(await govern(env, "admin", "create-key", "--name", "cli test"))
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("sk_admin_")
    response = await client.get("/admin/customers", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200

    listed = as_json(await govern(env, "admin", "list-keys", "--json"))
    assert parse_key(key).key_id in {k["key_id"] for k in listed}
    assert key not in json.dumps(listed)
    ok(await govern(env, "admin", "revoke-key", parse_key(key).key_id))
    app.state.auth.admins.invalidate(parse_key(key).key_id)
    refused = await client.get("/admin/customers", headers={"Authorization": f"Bearer {key}"})
    assert refused.json()["details"]["reason"] == "revoked"
    failed(await govern(env, "admin", "create-key", "--name", ""), "name: String should have at least 1 character")


async def test_admin_bootstrap(env: dict[str, str], tmp_path: Path, pg_pool: asyncpg.Pool) -> None:
    path = tmp_path / "state" / "admin-key"
    first = ok(await govern(env, "admin", "bootstrap", "--file", str(path)))
    key = first.stdout.strip().splitlines()[-1]
    assert key.startswith("sk_admin_")
    assert str(path) in first.stdout
    assert path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert await pg_pool.fetchval("SELECT name FROM admin_keys WHERE key_id = $1", parse_key(key).key_id) == (
        "bootstrap"
    )

    again = ok(await govern(env, "admin", "bootstrap", "--file", str(path)))
    assert again.stdout.strip() == f"admin key already saved in {path}"
    assert key not in again.stdout
    assert path.read_text().strip() == key

    # A saved key that no longer verifies is replaced.
    await pg_pool.execute(
        "UPDATE admin_keys SET revoked_at = now(), active = false WHERE key_id = $1", parse_key(key).key_id
    )
    replaced = ok(await govern(env, "admin", "bootstrap", "--file", str(path)))
    new_key = replaced.stdout.strip().splitlines()[-1]
    assert new_key != key
    assert path.read_text().strip() == new_key
    path.write_text("garbage\n")
    assert ok(await govern(env, "admin", "bootstrap", "--file", str(path))).stdout.strip().splitlines()[-1] != new_key

    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    failed(await govern(env, "admin", "bootstrap", "--file", str(blocked / "admin-key")), "cannot write")


async def test_db_migrate_and_unreachable_database(env: dict[str, str]) -> None:
    result = ok(await govern(env, "db", "migrate"))
    assert "migrations applied" in result.stdout
    down = env | {"DATABASE_URL": "postgresql://governance:secret@127.0.0.1:1/governance"}
    for args in (("customers", "list"), ("db", "migrate")):
        response = await govern(down, *args)
        failed(response, "cannot use PostgreSQL at 127.0.0.1:1/governance")
        assert "secret" not in response.stderr


async def test_cli_keys_are_usable_through_the_api(
    env: dict[str, str], app: FastAPI, client: httpx.AsyncClient, customer: SeededCustomer
) -> None:
    @app.get("/test/cli-whoami")
    async def whoami(principal: CustomerDep) -> dict[str, str]:
        return {"customer_id": str(principal.customer_id)}

    created = ok(await govern(env, "keys", "create", "--customer", str(customer.id), "--name", "from-cli"))
    key = created.stdout.strip().splitlines()[-1]
    response = await client.get("/test/cli-whoami", headers={"Authorization": f"Bearer {key}"})
    assert response.json() == {"customer_id": str(customer.id)}


def test_help_lists_every_group() -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for group in ("customers", "keys", "policies", "admin", "db"):
        assert group in result.stdout
