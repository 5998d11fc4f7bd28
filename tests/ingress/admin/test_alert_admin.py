"""The alerting admin surface: ``/admin/alert-rules``, ``/admin/alerts``, ``/admin/webhooks`` over HTTP (the ASGI
app against the run's PostgreSQL), and the ``govern alerts`` CLI sub-app."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from clickhouse_connect.driver.client import Client
from typer.testing import CliRunner, Result

from infra.secret_box import SecretBox
from ingress.cli.alerts import alerts_app
from ingress.settings import IngressSettings
from tests.conftest import SeededCustomer, insert_customer, running_apps
from tests.workers.test_webhook_delivery import open_alert, resolve_alert

RULE_FIELDS = {"id", "customer_id", "rule", "enabled", "params", "effective_params", "created_at", "updated_at"}
WEBHOOK_FIELDS = {"id", "customer_id", "url", "description", "active", "created_at"}

runner = CliRunner()


@pytest.fixture(scope="module")
async def client(settings: IngressSettings, migrated: str, clickhouse: Client) -> AsyncIterator[httpx.AsyncClient]:
    """One app for the module: its start and stop cost seconds, and these tests share nothing through it."""
    async with running_apps(settings) as application:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.fixture
def admin(admin_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_key}"}


def _field_of(response: httpx.Response) -> str:
    body = response.json()
    assert response.status_code == 422, body
    assert body["error"] == "validation_error"
    assert body["request_id"]
    field: str = body["details"][0]["field"]
    assert body["message"].startswith(field)
    return field


async def test_alert_rules_lifecycle(
    client: httpx.AsyncClient, admin: dict[str, str], customer: SeededCustomer
) -> None:
    body = {"customer_id": str(customer.id), "rule": "block_rate", "params": {"threshold_percent": 30, "window_s": 60}}
    created = await client.post("/admin/alert-rules", json=body, headers=admin)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert set(rule) == RULE_FIELDS
    assert rule["params"] == {"threshold_percent": 30, "window_s": 60}  # as written
    assert rule["effective_params"] | {} == {
        "threshold_percent": 30.0,
        "window_s": 60,
        "min_volume": 20,
        "renotify_s": 3600,
        "severity": "warning",
    }
    url = f"/admin/alert-rules/{rule['id']}"
    assert (await client.get(url, headers=admin)).json() == rule

    duplicate = await client.post("/admin/alert-rules", json=body, headers=admin)
    assert duplicate.status_code == 409
    assert "already has a block_rate rule" in duplicate.json()["message"]

    listed = await client.get("/admin/alert-rules", params={"customer_id": str(customer.id)}, headers=admin)
    assert listed.json()["items"] == [rule]

    effective = await client.get(
        "/admin/alert-rules/effective", params={"customer_id": str(customer.id)}, headers=admin
    )
    by_kind = {e["rule"]: e for e in effective.json()}
    assert len(by_kind) == 6
    assert (by_kind["block_rate"]["source"], by_kind["block_rate"]["rule_id"]) == ("customer", rule["id"])
    assert by_kind["high_risk"]["source"] in {"default", "fleet"}

    patched = await client.patch(url, json={"enabled": False}, headers=admin)
    assert patched.status_code == 200
    assert (patched.json()["enabled"], patched.json()["params"]) == (False, rule["params"])
    replaced = await client.patch(url, json={"params": {"min_volume": 5}}, headers=admin)
    assert replaced.json()["params"] == {"min_volume": 5}  # params are replaced whole
    assert replaced.json()["effective_params"]["threshold_percent"] == 50.0

    bad_patch = await client.patch(url, json={"params": {"threshold_percent": 0}}, headers=admin)
    assert _field_of(bad_patch) == "body.params.threshold_percent"
    assert _field_of(await client.patch(url, json={"enabled": None}, headers=admin)) == "body.enabled"

    assert (await client.delete(url, headers=admin)).status_code == 204
    assert (await client.get(url, headers=admin)).status_code == 404
    assert (await client.delete(url, headers=admin)).status_code == 404
    assert (await client.get("/admin/alert-rules/nope", headers=admin)).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rule": "block_rate", "params": {"threshold_percent": 101}}, "body.params.threshold_percent"),
        ({"rule": "block_rate", "params": {"unknown": 1}}, "body.params.unknown"),
        ({"rule": "high_risk", "params": {"min_risk_score": "90"}}, "body.params.min_risk_score"),
        ({"rule": "volume_spike", "params": {"window_s": 3600, "baseline_windows": 100}}, "body.params"),
        ({"rule": "volume_spike", "params": {"factor": 1}}, "body.params.factor"),
        ({"rule": "fire", "params": {}}, "body.rule"),
        ({"rule": "personal_data", "params": {"max_detections": 2**64}}, "body.params.max_detections"),
        ({"rule": "high_risk", "version": 2}, "body.version"),
        ({"rule": "high_risk", "enabled": "yes"}, "body.enabled"),
        ({"rule": "high_risk", "customer_id": "nope"}, "body.customer_id"),
    ],
)
async def test_alert_rules_are_validated(
    body: dict[str, Any], field: str, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post("/admin/alert-rules", json=body, headers=admin)
    assert _field_of(response) == field


async def test_fleet_rules_and_unknown_customers(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    missing = await client.post(
        "/admin/alert-rules", json={"customer_id": str(uuid.uuid4()), "rule": "high_risk"}, headers=admin
    )
    assert missing.status_code == 404
    fleet = await client.post(
        "/admin/alert-rules", json={"rule": "personal_data", "params": {"max_detections": 7}}, headers=admin
    )
    assert fleet.status_code == 201, fleet.text
    try:
        again = await client.post("/admin/alert-rules", json={"rule": "personal_data"}, headers=admin)
        assert again.status_code == 409
        assert "fleet-wide personal_data rule" in again.json()["message"]
        listed = await client.get("/admin/alert-rules", params={"fleet": "true"}, headers=admin)
        assert fleet.json() in listed.json()["items"]
        assert all(item["customer_id"] is None for item in listed.json()["items"])
        effective = (await client.get("/admin/alert-rules/effective", headers=admin)).json()
        [personal] = [e for e in effective if e["rule"] == "personal_data"]
        assert (personal["source"], personal["params"]["max_detections"]) == ("fleet", 7)
    finally:
        await client.delete(f"/admin/alert-rules/{fleet.json()['id']}", headers=admin)


async def test_alerting_routes_need_an_admin_key(client: httpx.AsyncClient, customer: SeededCustomer) -> None:
    for path in ("/admin/alert-rules", "/admin/alerts", "/admin/webhooks"):
        assert (await client.get(path)).status_code == 401
        live = await client.get(path, headers={"Authorization": f"Bearer {customer.key}"})
        assert live.status_code == 403


async def test_webhooks_show_the_secret_once(
    client: httpx.AsyncClient, admin: dict[str, str], customer: SeededCustomer, pg_pool: asyncpg.Pool
) -> None:
    created = await client.post(
        "/admin/webhooks",
        json={"customer_id": str(customer.id), "url": "https://example.com/hooks", "description": "ops"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    assert set(hook) == WEBHOOK_FIELDS | {"secret"}
    assert hook["secret"].startswith("whsec_")
    assert len(hook["secret"]) > 40
    url = f"/admin/webhooks/{hook['id']}"

    shown = (await client.get(url, headers=admin)).json()
    assert set(shown) == WEBHOOK_FIELDS
    listed = await client.get("/admin/webhooks", params={"customer_id": str(customer.id)}, headers=admin)
    assert listed.json()["items"] == [shown]
    assert hook["secret"] not in listed.text
    # Stored sealed (ENVIRONMENT=test seals with the local development key), never as it was shown.
    stored = await pg_pool.fetchval("SELECT secret FROM webhooks WHERE id = $1", uuid.UUID(hook["id"]))
    assert stored.startswith("enc1:")
    assert hook["secret"] not in stored
    assert SecretBox.local().open(stored) == hook["secret"]

    await open_alert(pg_pool, customer.id)
    pending = (await client.get(f"{url}/deliveries", headers=admin)).json()
    assert pending["total"] == 1
    [delivery] = pending["items"]
    assert (delivery["status"], delivery["attempts"], delivery["transition"], delivery["attempt_log"]) == (
        "pending",
        0,
        "opened",
        [],
    )
    assert delivery["next_attempt_at"] is not None

    assert (await client.delete(url, headers=admin)).status_code == 204
    assert (await client.get(url, headers=admin)).status_code == 404
    assert (await client.delete(url, headers=admin)).status_code == 404
    after = (await client.get(f"{url}/deliveries", headers=admin)).json()
    assert after["items"][0]["status"] == "cancelled"  # history stays readable, nothing more is sent
    assert (await client.get(f"/admin/webhooks/{uuid.uuid4()}/deliveries", headers=admin)).status_code == 404


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "https://user:pw@example.com/x", "https://example.com/a b", "https:///nohost", "x"],
)
async def test_webhook_urls_are_validated(url: str, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.post("/admin/webhooks", json={"url": url}, headers=admin)
    assert _field_of(response) == "body.url"


async def test_alerts_are_listed_with_filters(
    client: httpx.AsyncClient, admin: dict[str, str], pg_pool: asyncpg.Pool
) -> None:
    customer = await insert_customer(pg_pool)
    resolved = await open_alert(pg_pool, customer.id, "high_risk")
    await resolve_alert(pg_pool, resolved)
    still_open = await open_alert(pg_pool, customer.id, "block_rate")

    async def ids(**params: Any) -> list[str]:
        response = await client.get("/admin/alerts", params={"customer_id": str(customer.id)} | params, headers=admin)
        assert response.status_code == 200, response.text
        return [a["id"] for a in response.json()["items"]]

    both = {str(resolved.alert_id), str(still_open.alert_id)}
    assert set(await ids()) == both
    assert await ids(status="open") == [str(still_open.alert_id)]
    assert await ids(status="resolved") == [str(resolved.alert_id)]
    assert await ids(rule="high_risk") == [str(resolved.alert_id)]
    assert set(await ids(since=(datetime.now(UTC) - timedelta(minutes=1)).isoformat())) == both
    assert await ids(since=(datetime.now(UTC) + timedelta(minutes=1)).isoformat()) == [str(still_open.alert_id)]
    assert await ids(subject=str(customer.id)) == await ids()
    assert await ids(subject="unknown") == []
    bad = await client.get("/admin/alerts", params={"status": "closed"}, headers=admin)
    assert _field_of(bad) == "query.status"
    for subject in ("\x00J", "someone"):  # a customer id or "unknown"; a NUL used to reach PostgreSQL
        bad = await client.get("/admin/alerts", params={"subject": subject}, headers=admin)
        assert _field_of(bad) == "query.subject"

    detail = (await client.get(f"/admin/alerts/{resolved.alert_id}", headers=admin)).json()
    assert (detail["status"], detail["sequence"], detail["rule"]) == ("resolved", 2, "high_risk")
    assert [(e["sequence"], e["transition"]) for e in detail["events"]] == [(1, "opened"), (2, "resolved")]
    assert (await client.get(f"/admin/alerts/{uuid.uuid4()}", headers=admin)).status_code == 404


# --- the CLI -----------------------------------------------------------------------------------------------------


@pytest.fixture
def env(settings: IngressSettings, migrated: str) -> dict[str, str]:
    return {"ENVIRONMENT": "test", "DATABASE_URL": settings.database_url}


async def govern_alerts(env: dict[str, str], *args: str) -> Result:
    return await asyncio.to_thread(lambda: runner.invoke(alerts_app, list(args), env=env))


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def failed(result: Result, message: str) -> None:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert f"error: {message}" in result.stderr, result.stderr


async def test_cli_rules_alerts_and_webhooks(
    env: dict[str, str], customer: SeededCustomer, pg_pool: asyncpg.Pool
) -> None:
    cid = str(customer.id)
    created = json.loads(
        ok(
            await govern_alerts(
                env,
                "rules",
                "create",
                "--customer",
                cid,
                "--rule",
                "high_risk",
                "--params",
                '{"min_risk_score": 70}',
                "--json",
            )
        ).stdout
    )
    assert (created["rule"], created["params"]) == ("high_risk", {"min_risk_score": 70})
    failed(
        await govern_alerts(env, "rules", "create", "--customer", cid, "--rule", "high_risk"),
        f"customer {cid} already has a high_risk rule",
    )
    failed(
        await govern_alerts(env, "rules", "create", "--rule", "block_rate", "--params", '{"threshold_percent": 0}'),
        "params.threshold_percent: Input should be greater than 0",
    )
    failed(
        await govern_alerts(env, "rules", "create", "--rule", "block_rate", "--params", "{"), "params: not valid JSON"
    )

    table = ok(await govern_alerts(env, "rules", "list", "--customer", cid)).stdout
    assert table.splitlines()[0].split() == ["ID", "CUSTOMER_ID", "RULE", "ENABLED", "PARAMS", "UPDATED_AT"]
    assert created["id"] in table
    effective = json.loads(ok(await govern_alerts(env, "rules", "effective", "--customer", cid, "--json")).stdout)
    assert {e["rule"]: e["source"] for e in effective}["high_risk"] == "customer"

    updated = json.loads(ok(await govern_alerts(env, "rules", "update", created["id"], "--disabled", "--json")).stdout)
    assert updated["enabled"] is False
    failed(
        await govern_alerts(env, "rules", "update", created["id"], "--params", '{"min_risk_score": 101}'),
        "params.min_risk_score: Input should be less than or equal to 100",
    )
    failed(await govern_alerts(env, "rules", "update", str(uuid.uuid4()), "--enabled"), "alert rule not found")
    assert "deleted" in ok(await govern_alerts(env, "rules", "delete", created["id"], "--yes")).stdout
    failed(await govern_alerts(env, "rules", "delete", created["id"], "--yes"), "alert rule not found")

    made = ok(await govern_alerts(env, "webhooks", "create", "--customer", cid, "--url", "https://example.com/h"))
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    listed = ok(await govern_alerts(env, "webhooks", "list", "--customer", cid))
    assert secret not in listed.stdout
    assert "https://example.com/h" in listed.stdout
    failed(await govern_alerts(env, "webhooks", "create", "--url", "gopher://x.y/z"), "url: Value error")

    alert = await open_alert(pg_pool, customer.id)
    alerts_table = ok(await govern_alerts(env, "list", "--customer", cid, "--status", "open")).stdout
    assert str(alert.alert_id) in alerts_table
    shown = json.loads(ok(await govern_alerts(env, "show", str(alert.alert_id), "--json")).stdout)
    assert shown["events"][0]["transition"] == "opened"
    failed(await govern_alerts(env, "list", "--status", "closed"), "status: Input should be")

    hook_id = json.loads(ok(await govern_alerts(env, "webhooks", "list", "--customer", cid, "--json")).stdout)["items"][
        0
    ]["id"]
    deliveries = json.loads(ok(await govern_alerts(env, "webhooks", "deliveries", hook_id, "--json")).stdout)
    assert deliveries["items"][0]["status"] == "pending"
    gone = ok(await govern_alerts(env, "webhooks", "delete", hook_id, "--yes")).stdout
    assert "1 pending delivery(ies) cancelled" in gone
