"""The analytics API over stored decisions: /logs (operators), /v1/decisions (a customer's own), the summary from
the rollups, exports, and the AsyncAPI document. Rows are stored straight into the run's ClickHouse; the path
through Kafka is covered by test_audit_pipeline.py."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from clickhouse_connect.driver.client import Client
from fastapi import FastAPI

from consumers.audit.spec import asyncapi_yaml, build_asyncapi
from ingress.settings import IngressSettings
from tests.conftest import SeededCustomer, insert_customer
from tests.support.audit import hours_ago, make_event, running_app, store_events

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def api(
    settings: IngressSettings, migrated: str, clickhouse: Client, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """Ingress without the in-process writer: these tests store rows themselves."""
    application: FastAPI
    async for application in running_app(settings, monkeypatch, AUDIT_IN_PROCESS="false"):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_guide_step5_form_post_lists_the_customers_logs(
    api: httpx.AsyncClient, clickhouse: Client, admin_key: str, customer: SeededCustomer
) -> None:
    now = datetime.now(UTC)
    events = [
        make_event(customer.id, allowed=i != 1, risk=20 + i, decided_at=now + timedelta(seconds=i)) for i in range(3)
    ]
    store_events(clickhouse, events)
    # curl http://localhost:8000/logs -H "Authorization: Bearer {ADMIN_KEY}" -d "customer_id=<uuid>"
    response = await api.post(
        "/logs",
        headers={**bearer(admin_key), "Content-Type": "application/x-www-form-urlencoded"},
        content=f"customer_id={customer.id}",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [item["event_id"] for item in body["items"]] == [str(e.event_id) for e in reversed(events)]
    assert body["next_cursor"] is None
    item = body["items"][0]
    for field in (
        "event_id",
        "request_id",
        "customer_id",
        "decided_at",
        "allowed",
        "decision",
        "risk_score",
        "reason",
        "factors",
        "violations",
        "pii_categories",
        "operation_types",
        "models",
        "latency_ms",
    ):
        assert field in item, field
    assert item["customer_id"] == str(customer.id)
    assert item["decided_at"].endswith("Z")
    assert item["factors"] == [{"name": "base", "points": 22, "detail": "test", "paths": []}]

    as_json = await api.post("/logs", headers=bearer(admin_key), json={"customer_id": str(customer.id), "limit": 1})
    assert as_json.status_code == 200
    assert len(as_json.json()["items"]) == 1


async def test_logs_filters_and_cursor_pagination(api: httpx.AsyncClient, clickhouse: Client, admin_key: str) -> None:
    customer = uuid.uuid4()
    start = hours_ago(2)
    events = [
        make_event(customer, allowed=i % 3 != 0, risk=i * 4, decided_at=start + timedelta(seconds=i)) for i in range(25)
    ]
    store_events(clickhouse, events)
    newest_first = [str(e.event_id) for e in sorted(events, key=lambda e: e.decided_at, reverse=True)]

    pages: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"customer_id": str(customer), "limit": 10}
        if cursor:
            params["cursor"] = cursor
        response = await api.get("/logs", params=params, headers=bearer(admin_key))
        assert response.status_code == 200, response.text
        pages.extend(item["event_id"] for item in response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert pages == newest_first

    async def ids(**params: Any) -> set[str]:
        response = await api.get("/logs", params={"customer_id": str(customer), **params}, headers=bearer(admin_key))
        assert response.status_code == 200, response.text
        return {item["event_id"] for item in response.json()["items"]}

    assert await ids(decision="block") == {str(e.event_id) for e in events if not e.allowed}
    assert await ids(min_risk=80) == {str(e.event_id) for e in events if e.risk_score >= 80}
    window = {"from": (start + timedelta(seconds=5)).isoformat(), "to": (start + timedelta(seconds=8)).isoformat()}
    assert await ids(**window) == {str(e.event_id) for e in events[5:8]}
    assert await ids(request_id=events[4].request_id) == {str(e.event_id) for e in events[4:5]}

    # A cursor only continues the query it came from.
    first = await api.get("/logs", params={"customer_id": str(customer), "limit": 5}, headers=bearer(admin_key))
    other = await api.get(
        "/logs",
        params={"customer_id": str(customer), "decision": "allow", "cursor": first.json()["next_cursor"]},
        headers=bearer(admin_key),
    )
    assert other.status_code == 422
    assert other.json()["details"][0]["field"] == "query.cursor"


async def test_exports_as_ndjson_and_csv(api: httpx.AsyncClient, clickhouse: Client, admin_key: str) -> None:
    customer = uuid.uuid4()
    events = [make_event(customer, allowed=False, risk=90, rules=["block_personal_data"], pii=["email"])]
    events += [make_event(customer, reason="=HYPERLINK(1)") for _ in range(2)]
    store_events(clickhouse, events)

    ndjson = await api.get(
        "/logs", params={"customer_id": str(customer), "format": "ndjson", "limit": 2}, headers=bearer(admin_key)
    )
    assert ndjson.status_code == 200
    assert ndjson.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in ndjson.text.splitlines()]
    assert len(lines) == 2
    assert ndjson.headers["x-next-cursor"]

    exported = await api.get("/logs", params={"customer_id": str(customer), "format": "csv"}, headers=bearer(admin_key))
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert {row["event_id"] for row in table} == {str(e.event_id) for e in events}
    blocked = next(row for row in table if row["decision"] == "block")
    assert json.loads(blocked["violations"])[0]["rule"] == "block_personal_data"
    assert json.loads(blocked["pii_categories"]) == ["email"]
    assert blocked["allowed"] == "false"
    assert {row["reason"] for row in table if row["decision"] == "allow"} == {"'=HYPERLINK(1)"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "query.from"),
        ({"limit": "5000"}, "query.limit"),
        ({"decision": "maybe"}, "query.decision"),
        ({"min_risk": "101"}, "query.min_risk"),
        ({"customer_id": "not-a-uuid"}, "query.customer_id"),
        ({"cursor": "garbage"}, "query.cursor"),
        ({"colour": "blue"}, "query.colour"),
        ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "query.to"),
    ],
)
async def test_bad_filters_are_422_naming_the_field(
    api: httpx.AsyncClient, admin_key: str, params: dict[str, str], field: str
) -> None:
    response = await api.get("/logs", params=params, headers=bearer(admin_key))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_error"
    assert body["details"][0]["field"] == field


@pytest.mark.parametrize("moment", ["-1.7e-19", "1795711283", "0.5"])
async def test_moments_are_iso_8601_never_unix_time(
    api: httpx.AsyncClient, admin_key: str, customer: SeededCustomer, moment: str
) -> None:
    for path, name, key in [
        ("/logs", "from", admin_key),
        ("/logs", "to", admin_key),
        ("/admin/analytics/summary", "to", admin_key),
        ("/admin/alerts", "since", admin_key),
        ("/v1/decisions", "from", customer.key),
    ]:
        response = await api.get(path, params={name: moment}, headers=bearer(key))
        assert response.status_code == 422, (path, response.text)
        assert response.json()["details"][0]["field"] == f"query.{name}"
        assert "ISO 8601" in response.json()["message"]


async def test_logs_need_an_admin_key(api: httpx.AsyncClient, customer: SeededCustomer) -> None:
    assert (await api.get("/logs")).status_code == 401
    assert (await api.get("/logs", headers=bearer(customer.key))).status_code == 403
    assert (
        await api.post("/logs", headers=bearer(customer.key), data={"customer_id": str(customer.id)})
    ).status_code == 403


async def test_customers_see_only_their_own_decisions(
    api: httpx.AsyncClient, clickhouse: Client, pg_pool: asyncpg.Pool
) -> None:
    mine, theirs = await insert_customer(pg_pool), await insert_customer(pg_pool)
    my_events = [make_event(mine.id) for _ in range(3)]
    store_events(clickhouse, my_events + [make_event(theirs.id) for _ in range(4)])

    response = await api.get("/v1/decisions", headers=bearer(mine.key))
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert {item["event_id"] for item in items} == {str(e.event_id) for e in my_events}
    assert {item["customer_id"] for item in items} == {str(mine.id)}

    sneaky = await api.get("/v1/decisions", params={"customer_id": str(theirs.id)}, headers=bearer(mine.key))
    assert sneaky.status_code == 422
    assert sneaky.json()["details"][0]["field"] == "query.customer_id"

    # A cursor minted for another customer's history continues nothing here.
    admin_page = await api.get("/v1/decisions", params={"limit": 1}, headers=bearer(theirs.key))
    replayed = await api.get(
        "/v1/decisions", params={"limit": 1, "cursor": admin_page.json()["next_cursor"]}, headers=bearer(mine.key)
    )
    assert replayed.status_code == 422
    assert (await api.get("/v1/decisions")).status_code == 401


async def test_summary_matches_hand_counted_numbers(api: httpx.AsyncClient, clickhouse: Client, admin_key: str) -> None:
    customer = uuid.uuid4()
    first_hour, second_hour = hours_ago(3), hours_ago(2)
    events = []
    # 60 decisions in the first hour (6 blocked), 40 in the second (4 blocked); blocked ones score 90, others 10.
    for hour, total, blocked in ((first_hour, 60, 6), (second_hour, 40, 4)):
        for i in range(total):
            at = hour + timedelta(minutes=i % 30, seconds=i)
            if i < blocked:
                rules = ["block_personal_data", "max_tokens"] if i % 2 == 0 else ["block_personal_data"]
                events.append(
                    make_event(
                        customer, allowed=False, risk=90, reason="Personal data detected", rules=rules, decided_at=at
                    )
                )
            else:
                events.append(make_event(customer, decided_at=at))
    store_events(clickhouse, events)
    store_events(clickhouse, [make_event(uuid.uuid4(), decided_at=first_hour)])  # someone else: not counted

    params = {
        "customer_id": str(customer),
        "from": first_hour.isoformat(),
        "to": (second_hour + timedelta(hours=1)).isoformat(),
        "interval": "hour",
    }
    response = await api.get("/admin/analytics/summary", params=params, headers=bearer(admin_key))
    assert response.status_code == 200, response.text
    body = response.json()
    totals = body["totals"]
    assert (totals["decisions"], totals["allowed"], totals["blocked"]) == (100, 90, 10)
    assert totals["block_rate"] == 0.1
    assert totals["avg_risk"] == 18.0  # (90 * 10 + 10 * 90) / 100
    assert totals["p95_risk"] == 90.0
    assert totals["p50_risk"] == 10.0
    assert body["top_reasons"] == [
        {"reason": "Within policy limits", "count": 90},
        {"reason": "Personal data detected", "count": 10},
    ]
    assert body["top_violated_rules"] == [
        {"rule": "block_personal_data", "count": 10},
        {"rule": "max_tokens", "count": 5},
    ]
    assert [(p["decisions"], p["blocked"]) for p in body["series"]] == [(60, 6), (40, 4)]
    assert body["series"][0]["block_rate"] == 0.1

    by_minute = await api.get(
        "/admin/analytics/summary", params={**params, "interval": "minute"}, headers=bearer(admin_key)
    )
    assert by_minute.status_code == 200
    minute_body = by_minute.json()
    assert len(minute_body["series"]) == 120
    assert sum(p["decisions"] for p in minute_body["series"]) == 100
    assert minute_body["totals"]["blocked"] == 10

    by_day = await api.get("/admin/analytics/summary", params={**params, "interval": "day"}, headers=bearer(admin_key))
    assert by_day.status_code == 200
    assert sum(p["decisions"] for p in by_day.json()["series"]) == 100

    too_long = await api.get(
        "/admin/analytics/summary",
        params={"interval": "minute", "from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"},
        headers=bearer(admin_key),
    )
    assert too_long.status_code == 422
    bad = await api.get("/admin/analytics/summary", params={"interval": "week"}, headers=bearer(admin_key))
    assert bad.status_code == 422
    assert bad.json()["details"][0]["field"] == "query.interval"


async def test_asyncapi_document_is_served_and_the_committed_copy_is_current(
    api: httpx.AsyncClient, admin_key: str, settings: IngressSettings, project_root: Path
) -> None:
    response = await api.get("/asyncapi.json", headers=bearer(admin_key))
    assert response.status_code == 200
    document = response.json()
    assert document["asyncapi"].startswith("3.")
    assert settings.decisions_topic in document["channels"]
    message = document["components"]["messages"][f"{settings.decisions_topic}:Message"]
    assert message["headers"]["properties"]["event-type"]["const"] == "decision"
    assert "DecisionEvent" in document["components"]["schemas"]
    assert "DeadLetterRecord" in document["components"]["schemas"]
    committed = (project_root / "docs" / "asyncapi.yaml").read_text()
    assert committed == asyncapi_yaml(build_asyncapi()), "regenerate: python -m consumers asyncapi --yaml"


async def test_an_unavailable_audit_store_is_503_not_500(
    settings: IngressSettings, migrated: str, clickhouse: Client, monkeypatch: pytest.MonkeyPatch, admin_key: str
) -> None:
    async for application in running_app(settings, monkeypatch, AUDIT_IN_PROCESS="false"):

        async def unreachable() -> Client:
            raise OSError("connection refused")

        monkeypatch.setattr(application.state.read_side.state.resources, "clickhouse_client", unreachable)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.get("/logs", headers=bearer(admin_key))
            summary = await http.get("/admin/analytics/summary", headers=bearer(admin_key))
        assert response.status_code == 503
        assert response.headers["retry-after"] == "2"
        assert response.json()["error"] == "unavailable"
        assert summary.status_code == 503
