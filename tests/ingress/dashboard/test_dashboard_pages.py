"""Dashboard pages in-process, against answers the real API cannot easily be made to give on this machine: an
older API without the alerting routes, alerts and failed webhook deliveries (raised only by the alerting worker),
an audit store that is down, an admin key revoked mid-session, and an API that does not answer. The stand-in
API (``httpx.MockTransport``) answers in the real API's shapes; test_dashboard.py covers the real one."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from ingress.auth.keys import generate_key
from ingress.dashboard.app import create_app
from ingress.dashboard.settings import DashboardSettings
from tests.support.processes import free_port

CUSTOMER_ID = str(uuid.uuid4())
NOW = "2025-03-01T12:00:00.000Z"
CUSTOMER = {
    "id": CUSTOMER_ID,
    "name": "<script>alert(1)</script> Corp",
    "tier": "pro",
    "rate_limit": None,
    "created_at": NOW,
    "updated_at": NOW,
}
ALERT = {
    "id": str(uuid.uuid4()),
    "rule": "block_rate",
    "customer_id": CUSTOMER_ID,
    "subject": CUSTOMER_ID,
    "status": "open",
    "severity": "warning",
    "summary": "Block rate 80% over 5 min",
    "value": 80.0,
    "threshold": 50.0,
    "params": {"threshold_percent": 50.0},
    "sequence": 1,
    "opened_at": NOW,
    "last_notified_at": NOW,
    "resolved_at": None,
}
WEBHOOK = {
    "id": str(uuid.uuid4()),
    "customer_id": None,
    "url": "https://ops.example/hooks/governance",
    "description": "on-call",
    "active": True,
    "created_at": NOW,
}


def _delivery(status: str, code: int | None, error: str | None) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "webhook_id": WEBHOOK["id"],
        "event_id": str(uuid.uuid4()),
        "alert_id": ALERT["id"],
        "transition": "opened",
        "sequence": 1,
        "status": status,
        "attempts": 3 if status == "failed" else 1,
        "next_attempt_at": None,
        "last_status_code": code,
        "last_error": error,
        "created_at": NOW,
        "delivered_at": NOW if status == "delivered" else None,
        "attempt_log": [],
    }


def page_of(*items: dict[str, Any]) -> dict[str, Any]:
    return {"items": list(items), "total": len(items), "limit": 100, "offset": 0}


def api_error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": code, "message": message, "request_id": "req_standin0001"})


@dataclass
class StandInApi:
    """Answers by path; ``routes`` may be changed by a test. Unknown paths answer as FastAPI does."""

    routes: dict[str, Callable[[httpx.Request], httpx.Response]] = field(default_factory=dict)
    seen: list[httpx.Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        totals = {"decisions": 0, "allowed": 0, "blocked": 0, "block_rate": 0.0, "avg_risk": None, "p95_risk": None}
        summary = {"from": NOW, "to": NOW, "interval": "hour", "totals": totals, "series": []}
        self.routes.update(
            {
                "/admin/customers": lambda _: httpx.Response(200, json=page_of(CUSTOMER)),
                f"/admin/customers/{CUSTOMER_ID}": lambda _: httpx.Response(200, json=CUSTOMER),
                "/admin/analytics/summary": lambda _: httpx.Response(200, json=summary),
            }
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        handler = self.routes.get(request.url.path)
        if handler is None:
            return api_error(404, "not_found", "Not Found")
        return handler(request)


@pytest.fixture
def stand_in() -> StandInApi:
    return StandInApi()


@pytest.fixture
async def dashboard(stand_in: StandInApi) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(DashboardSettings.model_validate({"ENVIRONMENT": "test"}), httpx.MockTransport(stand_in))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dashboard.test") as http:
            yield http


async def sign_in(http: httpx.AsyncClient, admin_key: str | None = None) -> httpx.Response:
    form = await http.get("/dashboard/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token
    return await http.post(
        "/dashboard/login", data={"admin_key": admin_key or generate_key("admin").key, "csrf_token": token.group(1)}
    )


async def test_alerts_are_not_available_from_an_older_api(dashboard: httpx.AsyncClient) -> None:
    assert (await sign_in(dashboard)).status_code == 303
    page = await dashboard.get("/dashboard/alerts")
    assert page.status_code == 200
    assert page.text.count("not available from this API yet") == 3  # open, recent, webhooks
    home = await dashboard.get("/dashboard")
    assert "Alerts not available from this API yet" in home.text


async def test_alerts_and_webhook_deliveries(dashboard: httpx.AsyncClient, stand_in: StandInApi) -> None:
    deliveries = page_of(_delivery("delivered", 200, None), _delivery("failed", 500, "server error"))
    stand_in.routes.update(
        {
            "/admin/alerts": lambda _: httpx.Response(200, json=page_of(ALERT)),
            f"/admin/alerts/{ALERT['id']}": lambda _: httpx.Response(
                200,
                json={
                    **ALERT,
                    "events": [
                        {
                            "event_id": str(uuid.uuid4()),
                            "transition": "opened",
                            "sequence": 1,
                            "created_at": NOW,
                            "published_at": NOW,
                        }
                    ],
                },
            ),
            "/admin/webhooks": lambda _: httpx.Response(200, json=page_of(WEBHOOK)),
            f"/admin/webhooks/{WEBHOOK['id']}/deliveries": lambda _: httpx.Response(200, json=deliveries),
        }
    )
    await sign_in(dashboard)
    page = await dashboard.get("/dashboard/alerts")
    assert page.status_code == 200
    assert "Block rate 80% over 5 min" in page.text
    assert "severity-warning" in page.text
    assert "https://ops.example/hooks/governance" in page.text
    assert "HTTP 500 server error" in page.text
    assert "status-delivered" in page.text
    assert "status-failed" in page.text
    asked = {(r.url.path, r.url.params.get("status")) for r in stand_in.seen}
    assert ("/admin/alerts", "open") in asked
    home = await dashboard.get("/dashboard")
    assert re.search(r'<span class="value">1</span><span class="label">open alerts', home.text)
    detail = await dashboard.get(f"/dashboard/alerts/{ALERT['id']}")
    assert detail.status_code == 200
    assert "opened" in detail.text
    assert "threshold_percent" in detail.text


async def test_names_are_escaped(dashboard: httpx.AsyncClient) -> None:
    await sign_in(dashboard)
    page = await dashboard.get("/dashboard/customers")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Corp" in page.text


async def test_an_api_error_is_shown_with_its_message_and_request_id(
    dashboard: httpx.AsyncClient, stand_in: StandInApi
) -> None:
    stand_in.routes["/logs"] = lambda _: api_error(503, "unavailable", "the audit store is unavailable; retry shortly")
    await sign_in(dashboard)
    page = await dashboard.get("/dashboard/logs")
    assert page.status_code == 503
    assert "the audit store is unavailable; retry shortly" in page.text
    assert "req_standin0001" in page.text
    assert 'name="min_risk"' in page.text  # the filters stay usable
    missing = await dashboard.get(f"/dashboard/customers/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert "Not found" in missing.text
    asked = len(stand_in.seen)
    for path in ("/dashboard/customers/not-a-uuid", "/dashboard/keys/..%2Fcustomers/revoke", "/dashboard/keys/x.y/new"):
        page = await dashboard.get(path)
        assert page.status_code == 404, path
    assert len(stand_in.seen) == asked  # refused before any call to the API


async def test_a_key_revoked_mid_session_signs_the_operator_out(
    dashboard: httpx.AsyncClient, stand_in: StandInApi
) -> None:
    await sign_in(dashboard)
    assert (await dashboard.get("/dashboard/customers")).status_code == 200
    stand_in.routes["/admin/customers"] = lambda _: api_error(401, "unauthorized", "admin key revoked")
    page = await dashboard.get("/dashboard/customers")
    assert page.status_code == 303
    assert page.headers["location"] == "/dashboard/login?reason=rejected"
    stand_in.routes["/admin/customers"] = lambda _: httpx.Response(200, json=page_of(CUSTOMER))
    after = await dashboard.get("/dashboard/customers")
    assert after.status_code == 303  # the session is gone, not only the cookie
    form = await dashboard.get(page.headers["location"])
    assert "no longer accepts the admin key" in form.text


async def test_sign_in_when_the_api_does_not_answer() -> None:
    settings = DashboardSettings.model_validate({"ENVIRONMENT": "test", "API_URL": f"http://127.0.0.1:{free_port()}"})
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://dashboard.test") as http,
    ):
        response = await sign_in(http)
    assert response.status_code == 502
    assert "did not answer" in response.text


def _decision(n: int) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "request_id": f"req_page{n}",
        "customer_id": CUSTOMER_ID,
        "decided_at": NOW,
        "decision": "block",
        "allowed": False,
        "risk_score": 70 + n,
        "reason": f"reason {n}",
    }


async def test_the_log_pages_by_the_apis_cursor(dashboard: httpx.AsyncClient, stand_in: StandInApi) -> None:
    def logs(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("cursor") == "c2":
            return httpx.Response(200, json={"items": [_decision(2)], "next_cursor": None})
        return httpx.Response(200, json={"items": [_decision(1)], "next_cursor": "c2"})

    stand_in.routes["/logs"] = logs
    await sign_in(dashboard)
    first = await dashboard.get(f"/dashboard/logs?customer_id={CUSTOMER_ID}&decision=block&min_risk=70")
    assert "req_page1" in first.text
    next_link = re.search(r'<a href="([^"]+)" rel="next">Next page', first.text)
    assert next_link
    second = await dashboard.get(next_link.group(1).replace("&amp;", "&"))
    assert "req_page2" in second.text
    assert "req_page1" not in second.text
    assert 'rel="next"' not in second.text
    assert "First page" in second.text
    asked = [r.url.params for r in stand_in.seen if r.url.path == "/logs"]
    assert asked[-1]["cursor"] == "c2"
    assert (asked[-1]["customer_id"], asked[-1]["decision"], asked[-1]["min_risk"]) == (CUSTOMER_ID, "block", "70")
    assert "from" not in asked[-1]  # blank filters are not sent
