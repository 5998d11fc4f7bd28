"""Logs and ``/metrics`` of a real ingress: JSON lines with no key or personal data in them (nor in what reaches
Sentry), and the guide's metrics counted per customer, with bounded labels."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ingress.auth.keys import generate_key
from ingress.settings import IngressSettings
from tests.conftest import LiveServer, SeededCustomer, insert_admin_key, insert_customer, run_server
from tests.ingress.check.test_check import GUIDE_RULES, GUIDE_STEP4, add_policy, auth
from tests.support.sentry_receiver import EnvelopeReceiver

EMAIL = "jane.doe@example.com"


async def test_logs_are_json_lines_without_keys_or_personal_data(
    settings: IngressSettings,
    migrated: str,
    pg_pool: asyncpg.Pool,
    tmp_path: Path,
    sentry_receiver: EnvelopeReceiver,
) -> None:
    admin_key = await insert_admin_key(pg_pool)
    seeded = await insert_customer(pg_pool, tier="pro")
    await add_policy(pg_pool, seeded.id, GUIDE_RULES, "Allow Internal Data Only")
    unknown = generate_key("live").key
    tampered = seeded.key[:-1] + ("A" if seeded.key[-1] != "A" else "B")
    used_keys = [admin_key, seeded.key, unknown, tampered]

    with run_server(settings, tmp_path / "server", LOG_LEVEL="INFO", SENTRY_DSN=sentry_receiver.dsn) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            admin = {"Authorization": f"Bearer {admin_key}"}
            created = await http.post(
                "/admin/customers", json={"name": f"logs-{uuid.uuid4().hex[:8]}", "tier": "pro"}, headers=admin
            )
            assert created.status_code == 201, created.text
            issued = await http.post(
                "/admin/keys", json={"customer_id": created.json()["id"], "name": "logs-key"}, headers=admin
            )
            assert issued.status_code == 201, issued.text
            issued_key = issued.json()["key"]
            used_keys.append(issued_key)
            for customer_key in (seeded.key, issued_key):
                for _ in range(3):
                    response = await http.post("/v1/check", json=GUIDE_STEP4, headers=_bearer(customer_key))
                    assert response.status_code == 200, response.text
            personal = {**GUIDE_STEP4, "context": {"user_id": "user_123", "email": EMAIL}}
            response = await http.post("/v1/check", json=personal, headers=_bearer(seeded.key))
            assert response.status_code == 200, response.text
            assert response.json()["allowed"] is False
            for bad in (unknown, tampered, seeded.key[:30], admin_key, f"{seeded.key}x"):
                response = await http.post("/v1/check", json=GUIDE_STEP4, headers=_bearer(bad))
                assert response.status_code == 401, (bad[:12], response.text)
            response = await http.get("/admin/customers", headers=_bearer(seeded.key))
            assert response.status_code in {401, 403}
            await http.get(f"/health?api_key={seeded.key}")
            await http.get(f"/v1/check/{seeded.key}")
    log = server.log()

    lines = [line for line in log.splitlines() if line.strip()]
    assert lines, "the ingress wrote no log"
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON log line: {line[:200]!r}")
        assert isinstance(entry, dict), line
        for field in ("ts", "level", "role", "message"):
            assert field in entry, (field, line[:200])
        assert entry["role"] == "ingress"
        entries.append(entry)
    assert any(e["level"] == "info" for e in entries), "LOG_LEVEL=INFO wrote no info line"
    assert any("Sentry error reporting on" in e["message"] for e in entries)
    # Search by request id (docs/monitoring.md, "Logs"): the admin call's audit line carries the response's id.
    audit = [e for e in entries if e.get("request_id") == created.headers["x-request-id"]]
    assert any("customer.create" in e["message"] for e in audit), audit

    for key in used_keys:
        assert key not in log
        assert key.rsplit("_", 1)[1] not in log, "the secret part of a key is in the log"
    assert EMAIL not in log
    for key in used_keys:
        assert key.rsplit("_", 1)[1] not in sentry_receiver.text()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


async def test_metrics_endpoint_shows_the_guides_metrics(live_server: LiveServer, pg_pool: asyncpg.Pool) -> None:
    customer: SeededCustomer = await insert_customer(pg_pool, tier="pro")
    await add_policy(pg_pool, customer.id, GUIDE_RULES, "Allow Internal Data Only")
    limited = await insert_customer(pg_pool, tier="free")
    await pg_pool.execute(
        "UPDATE customers SET rate_limit_capacity = 1, rate_limit_window_s = 3600 WHERE id = $1", limited.id
    )
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as http:
        for _ in range(3):
            assert (await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))).status_code == 200
        personal = {**GUIDE_STEP4, "context": {"user_id": "user_123", "email": EMAIL}}
        blocked = await http.post("/v1/check", json=personal, headers=auth(customer))
        assert blocked.json()["allowed"] is False
        statuses = [(await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(limited))).status_code for _ in "ab"]
        assert statuses == [200, 429]
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    name = customer.name
    assert f'governance_checks_total{{customer="{name}"}}' in text
    assert f'governance_decisions_allowed{{customer="{name}"}}' in text
    assert f'governance_decisions_blocked{{customer="{name}"}}' in text
    assert f'governance_risk_score_bucket{{customer="{name}"' in text
    assert 'request_latency_ms_bucket{endpoint="/v1/check"' in text

    samples = _samples(text)
    who = frozenset({("customer", name)})
    assert samples[("governance_checks_total", who)] == 4
    assert samples[("governance_decisions_allowed", who)] == 3
    assert samples[("governance_decisions_blocked", who)] == 1
    assert samples[("governance_risk_score_count", who)] == 4
    assert samples[("governance_risk_score_sum", who)] >= 70
    limited_labels = frozenset({("customer", limited.name), ("key_id", limited.key_id)})
    assert samples[("governance_rate_limited_total", limited_labels)] == 1
    assert samples[("request_latency_ms_count", frozenset({("endpoint", "/v1/check")}))] >= 6
    # Never a key, never a raw path: the route template is the only endpoint label.
    assert customer.key not in text
    assert customer.key.rsplit("_", 1)[1] not in text
