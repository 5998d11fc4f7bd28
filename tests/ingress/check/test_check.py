"""POST /v1/check end to end: the guide's requests, rate limits, limits, policy changes and the event on Kafka."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from ingress.settings import IngressSettings
from tests.conftest import LiveServer, SeededCustomer, insert_customer, run_server

GUIDE_RULES = {
    "max_external_calls": 5,
    "block_personal_data": True,
    "allowed_models": ["gpt-4", "claude-3"],
    "max_tokens": 10000,
}
GUIDE_STEP4 = {
    "operations": [{"type": "llm_call", "model": "gpt-4", "tokens": 500}],
    "context": {"user_id": "user_123", "session_id": "session_456"},
}


async def add_policy(pool: asyncpg.Pool, customer_id: uuid.UUID, rules: dict[str, Any], name: str = "p") -> str:
    policy_id = await pool.fetchval(
        "INSERT INTO policies (customer_id, name, rules) VALUES ($1, $2, $3) RETURNING id", customer_id, name, rules
    )
    await pool.execute(
        "INSERT INTO policy_versions (policy_id, version, name, rules, active, mode) "
        "VALUES ($1, 1, $2, $3, true, 'enforce')",
        policy_id,
        name,
        rules,
    )
    return str(policy_id)


@pytest.fixture
async def guide_customer(pg_pool: asyncpg.Pool) -> SeededCustomer:
    customer = await insert_customer(pg_pool, tier="pro")
    await add_policy(pg_pool, customer.id, GUIDE_RULES, "Allow Internal Data Only")
    return customer


def auth(customer: SeededCustomer) -> dict[str, str]:
    return {"Authorization": f"Bearer {customer.key}", "Content-Type": "application/json"}


async def test_guide_step4_is_allowed_and_published(
    live_server: LiveServer, guide_customer: SeededCustomer, settings: IngressSettings
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        response = await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(guide_customer))
    body = response.json()
    assert response.status_code == 200, body
    assert body["allowed"] is True
    assert body["reason"] == "Within policy limits"
    assert 0 <= body["risk_score"] < 50
    assert body["request_id"] == response.headers["x-request-id"]
    for header in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
        assert header in response.headers

    consumer = AIOKafkaConsumer(
        settings.decisions_topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    found: dict[str, Any] | None = None
    try:
        deadline = time.monotonic() + 20
        while found is None and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    event = json.loads(record.value or b"{}")
                    if event.get("event_id") == body["event_id"]:
                        found = event
                        assert record.key == str(guide_customer.id).encode()
                        assert dict(record.headers)["event-type"] == b"decision"
    finally:
        await consumer.stop()
    assert found is not None
    assert found["request_id"] == body["request_id"]
    assert found["customer_id"] == str(guide_customer.id)
    assert guide_customer.key not in json.dumps(found)


def test_guide_python_snippet_runs_as_written(live_server: LiveServer, guide_customer: SeededCustomer) -> None:
    """Part 4 Step 1 of the onboarding guide, verbatim but for the key and the address."""
    import contextlib
    import io

    snippet = """
import requests

# Your API key
API_KEY = "sk_live_abc123..."

# The governance endpoint
url = "http://localhost:8000/v1/check"

# Prepare request
headers = {
    "Authorization": f"Bearer {API_KEY}",
    "Content-Type": "application/json"
}

payload = {
    "operations": [
        {
            "type": "llm_call",
            "model": "gpt-4",
            "tokens": 500,
            "provider": "openai"
        }
    ],
    "context": {
        "user_id": "user_123",
        "session_id": "session_abc",
        "department": "engineering"
    }
}

# Make request
response = requests.post(url, headers=headers, json=payload)
result = response.json()

# Handle response
if response.status_code == 200:
    if result["allowed"]:
        print(f"✅ Allowed! Risk score: {result['risk_score']}")
        # Proceed with AI operation
    else:
        print(f"❌ Blocked! Reason: {result['reason']}")
        # Stop operation, alert user
else:
    print(f"Error: {response.status_code}")
"""
    code = snippet.replace("sk_live_abc123...", guide_customer.key).replace("http://localhost:8000", live_server.url)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "guide_snippet", "exec"), {})  # noqa: S102 - the guide's own code
    assert out.getvalue().startswith("✅ Allowed! Risk score:"), out.getvalue()


async def test_personal_data_in_context_is_blocked(live_server: LiveServer, guide_customer: SeededCustomer) -> None:
    request = {**GUIDE_STEP4, "context": {"user_id": "user_123", "email": "jane.doe@example.com"}}
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        response = await http.post("/v1/check", json=request, headers=auth(guide_customer))
    body = response.json()
    assert response.status_code == 200
    assert body["allowed"] is False
    assert body["reason"] == "Personal data detected in context"
    assert body["risk_score"] >= 70
    assert "jane.doe" not in response.text


@pytest.fixture(scope="module")
def patient_server(
    settings: IngressSettings, migrated: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """An ingress that waits up to 10 s for Redis. With the default 250 ms, a busy machine gets some checks of a
    burst decided by the local bucket (as designed, see docs/integrators.md), and an exact count is then not what
    the limiter promises: the counting tests wait for Redis instead."""
    with run_server(settings, tmp_path_factory.mktemp("patient-server"), RATE_LIMIT_REDIS_TIMEOUT_S="10") as server:
        yield server


async def test_101st_request_is_429_with_retry_after(patient_server: LiveServer, pg_pool: asyncpg.Pool) -> None:
    """The free tier's 100 per 60 s: a burst of 100 passes and the next is refused. The bucket refills
    continuously (one token per 0.6 s), so on a slow machine the burst itself may earn a token or two back:
    the test allows exactly what the elapsed time earned, no more."""
    customer = await insert_customer(pg_pool, tier="free")
    async with httpx.AsyncClient(base_url=patient_server.url, limits=httpx.Limits(max_connections=100)) as http:
        started = time.monotonic()
        burst = await asyncio.gather(
            *(http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer)) for _ in range(100))
        )
        extra_successes = 0
        last = await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))
        while last.status_code == 200 and extra_successes < 5:
            extra_successes += 1
            last = await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))
        elapsed = time.monotonic() - started
    assert [r.status_code for r in burst] == [200] * 100
    assert extra_successes <= int(elapsed * 100 / 60) + 1, (extra_successes, elapsed)
    assert last.status_code == 429
    assert int(last.headers["retry-after"]) >= 1
    assert last.headers["x-ratelimit-remaining"] == "0"
    assert last.headers["x-ratelimit-limit"] == "100"
    body = last.json()
    assert body["error"] == "rate_limited"
    assert body["request_id"] == last.headers["x-request-id"]


async def test_exactly_100_of_200_concurrent_pass(patient_server: LiveServer, pg_pool: asyncpg.Pool) -> None:
    customer = await insert_customer(pg_pool, tier="free")
    # a long window so refill during the burst cannot add a token
    await pg_pool.execute(
        "UPDATE customers SET rate_limit_capacity = 100, rate_limit_window_s = 3600 WHERE id = $1", customer.id
    )
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(base_url=patient_server.url, limits=limits, timeout=30) as http:
        responses = await asyncio.gather(
            *(http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer)) for _ in range(200))
        )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 100, statuses
    assert statuses.count(429) == 100


async def test_policy_change_applies_to_the_next_checks(live_server: LiveServer, pg_pool: asyncpg.Pool) -> None:
    customer = await insert_customer(pg_pool, tier="pro")
    policy_id = await add_policy(pg_pool, customer.id, GUIDE_RULES)
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        assert (await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))).json()["allowed"] is True
        await pg_pool.execute(
            "UPDATE policies SET rules = $2, version = version + 1 WHERE id = $1",
            uuid.UUID(policy_id),
            {**GUIDE_RULES, "allowed_models": ["claude-3"]},
        )
        # Waited for, bounded: the change is announced through NOTIFY (milliseconds here), a busy machine may be
        # slower; what must hold is that the next decisions follow the new version.
        deadline = time.monotonic() + 15
        while True:
            body = (await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))).json()
            if body["allowed"] is False:
                break
            assert time.monotonic() < deadline, "policy change never applied"
            await asyncio.sleep(0.05)
        again = await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))
        assert again.json()["allowed"] is False  # and it stays applied
    assert any(v["rule"] == "allowed_models" for v in body["violations"])


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"operations": [{"type": "llm_call", "model": "m"}] * 101}, "100"),
        ({"operations": [{"type": "llm_call", "model": "m"}], "context": {"notes": "x" * 65537}}, "65536"),
        ({"operations": [{"type": "llm_call", "model": "m"}], "customer_id": str(uuid.uuid4())}, "customer_id"),
        ({"operations": [{"type": "llm_call", "model": "m", "tokens": "many"}]}, "tokens"),
    ],
    ids=["operations", "string", "mass-assignment", "wrong-type"],
)
async def test_limits_and_bad_input_are_422_naming_the_problem(
    live_server: LiveServer, customer: SeededCustomer, payload: dict[str, Any], needle: str
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        response = await http.post("/v1/check", json=payload, headers=auth(customer))
    assert response.status_code == 422, response.text
    body = response.json()
    assert needle in json.dumps(body)
    assert body["request_id"] == response.headers["x-request-id"]


async def test_nesting_deeper_than_32_is_422(live_server: LiveServer, customer: SeededCustomer) -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(40):
        node["a"] = {}
        node = node["a"]
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        response = await http.post(
            "/v1/check", json={"operations": [{"type": "x"}], "context": deep}, headers=auth(customer)
        )
    assert response.status_code == 422
    assert "32" in response.text


async def test_malformed_json_is_422(live_server: LiveServer, customer: SeededCustomer) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        response = await http.post("/v1/check", content=b"{not json", headers=auth(customer))
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"


async def test_body_over_1_mib_is_413_plain_and_chunked(live_server: LiveServer, customer: SeededCustomer) -> None:
    big = b'{"operations": [], "context": {"x": "' + b"a" * (2 * 1024 * 1024) + b'"}}'

    async def chunks() -> Any:
        for i in range(0, len(big), 64 * 1024):
            yield big[i : i + 64 * 1024]

    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        plain = await http.post("/v1/check", content=big, headers=auth(customer))
        chunked = await http.post("/v1/check", content=chunks(), headers=auth(customer))
    for response in (plain, chunked):
        assert response.status_code == 413
        assert response.json()["error"] == "payload_too_large"
    assert "transfer-encoding" not in plain.request.headers
    assert chunked.request.headers.get("transfer-encoding") == "chunked"
