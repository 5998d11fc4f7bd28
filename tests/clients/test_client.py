"""The client against the real service over HTTP (allowed, blocked, 401, 422, 429 with Retry-After, receipts),
and against stand-ins for what the service does only when failing (403, 500, 503, timeouts, a stopped port)."""

from __future__ import annotations

import copy
import logging
import time
import uuid

import asyncpg
import pytest

from governance_client import (
    NO_RETRIES,
    AsyncClient,
    AuthenticationError,
    Blocked,
    Client,
    FailOpen,
    GovernanceUnavailable,
    PermissionDenied,
    RateLimited,
    ReceiptInvalid,
    RetryPolicy,
    ServerError,
    ValidationFailed,
    llm_call,
)
from governance_client.receipts import b64url_decode, request_digest
from tests.clients.conftest import CHAT_MODEL, PERSONAL
from tests.conftest import LiveServer, SeededCustomer, insert_customer
from tests.ingress.check.test_check import add_policy
from tests.support.client_standins import failing_service
from tests.support.processes import free_port

GUIDE_OPERATION = {"type": "llm_call", "model": "gpt-4", "tokens": 500, "provider": "openai"}
GUIDE_CONTEXT = {"user_id": "user_123", "session_id": "session_abc", "department": "engineering"}


def test_allowed_check_is_typed_and_carries_the_rate_limit(live_server: LiveServer, governed: SeededCustomer) -> None:
    with Client(base_url=live_server.url, api_key=governed.key) as gov:
        result = gov.check_llm_call(CHAT_MODEL, [{"role": "user", "content": "Summarise our Q3 roadmap."}])
    assert result.allowed is True
    assert result.reason == "Within policy limits"
    assert 0 <= result.risk_score < 50
    assert result.request_id is not None
    assert result.request_id.startswith("req_")
    assert result.event_id
    assert result.violations == ()
    assert result.receipt is not None
    assert result.receipt["signed"]["request_id"] == result.request_id
    assert result.rate_limit.limit == 1000
    assert result.rate_limit.remaining is not None
    assert 0 <= result.rate_limit.remaining < 1000
    assert result.rate_limit.reset_at is not None
    assert result.fail_open is False


async def test_guide_part_4_allowed_then_blocked(live_server: LiveServer, pg_pool: asyncpg.Pool) -> None:
    customer = await insert_customer(pg_pool, tier="pro")
    rules = {"max_external_calls": 5, "block_personal_data": True, "allowed_models": ["gpt-4", "claude-3"]}
    await add_policy(pg_pool, customer.id, {**rules, "max_tokens": 10000}, "Allow Internal Data Only")
    async with AsyncClient(base_url=live_server.url, api_key=customer.key) as gov:
        allowed = await gov.check([GUIDE_OPERATION], GUIDE_CONTEXT)
        blocked = await gov.check([GUIDE_OPERATION], {**GUIDE_CONTEXT, "email": "jane.doe@example.com"})
    assert allowed.allowed is True
    assert allowed.raise_if_blocked() is allowed
    assert blocked.allowed is False
    assert blocked.reason == "Personal data detected in context"
    assert [v.rule for v in blocked.violations] == ["block_personal_data"]
    assert any(f.name == "personal_data" and "context.email" in f.paths for f in blocked.factors)
    with pytest.raises(Blocked) as caught:
        blocked.raise_if_blocked()
    assert caught.value.reason == "Personal data detected in context"
    assert caught.value.request_id == blocked.request_id
    assert "jane.doe@example.com" not in str(caught.value)


def test_personal_data_in_messages_is_blocked(live_server: LiveServer, governed: SeededCustomer) -> None:
    with Client(base_url=live_server.url, api_key=governed.key, context={"user_id": "user_123"}) as gov:
        result = gov.check_llm_call(CHAT_MODEL, [{"role": "user", "content": PERSONAL}], provider="openai")
    assert result.allowed is False
    assert result.reason.startswith("Personal data detected")
    assert any("messages" in path for factor in result.factors for path in factor.paths)


def test_unknown_key_is_401_without_the_key_anywhere(
    live_server: LiveServer, governed: SeededCustomer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = governed.key[:-4] + ("aaaa" if not governed.key.endswith("aaaa") else "bbbb")
    caplog.set_level(logging.DEBUG)
    with Client(base_url=live_server.url, api_key=wrong) as gov:
        with pytest.raises(AuthenticationError) as caught:
            gov.check([GUIDE_OPERATION])
        text = repr(gov)
    error = caught.value
    assert error.status == 401
    assert error.code == "unauthorized"
    assert error.reason in {"unknown", "malformed"}
    assert error.request_id
    assert error.request_id.startswith("req_")
    for shown in (str(error), repr(error), text, caplog.text):
        assert wrong not in shown
        assert wrong.split("_")[-1] not in shown


def test_validation_errors_name_the_fields(live_server: LiveServer, governed: SeededCustomer) -> None:
    with Client(base_url=live_server.url, api_key=governed.key) as gov:
        with pytest.raises(ValidationFailed) as caught:
            gov.check([{"type": "llm_call", "tokens": 500}])
        with pytest.raises(ValidationFailed) as empty:
            gov.check([])
    fields = [e.field for e in caught.value.errors]
    assert any(field.endswith("model") for field in fields), fields
    assert caught.value.status == 422
    assert "model" in str(caught.value)
    assert any(e.field == "operations" for e in empty.value.errors)


async def _limited_customer(pool: asyncpg.Pool, capacity: int, window_s: int) -> SeededCustomer:
    customer = await insert_customer(pool, tier="pro")
    await add_policy(pool, customer.id, {"allowed_models": [CHAT_MODEL]}, "limits")
    await pool.execute(
        "UPDATE customers SET rate_limit_capacity = $2, rate_limit_window_s = $3 WHERE id = $1",
        customer.id,
        capacity,
        window_s,
    )
    return customer


async def test_429_is_retried_after_retry_after(
    live_server: LiveServer, pg_pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    customer = await _limited_customer(pg_pool, capacity=1, window_s=2)
    caplog.set_level(logging.INFO, logger="governance_client")
    operation = llm_call(CHAT_MODEL, provider="openai", max_tokens=10)
    async with AsyncClient(base_url=live_server.url, api_key=customer.key, deadline=30) as gov:
        first = await gov.check([operation])
        second = await gov.check([operation])  # the bucket is empty: 429, Retry-After, then a token
    assert first.allowed
    assert second.allowed
    assert "HTTP 429" in caplog.text
    assert "retrying in" in caplog.text
    assert customer.key not in caplog.text


async def test_429_without_retries_raises_with_retry_after(live_server: LiveServer, pg_pool: asyncpg.Pool) -> None:
    customer = await _limited_customer(pg_pool, capacity=1, window_s=3600)
    operation = llm_call(CHAT_MODEL, provider="openai")
    async with AsyncClient(base_url=live_server.url, api_key=customer.key) as gov:
        assert (await gov.check([operation])).allowed
        with pytest.raises(RateLimited) as caught:
            await gov.check([operation])  # an hour to wait is more than the policy waits for
    error = caught.value
    assert error.status == 429
    assert error.retry_after is not None
    assert error.retry_after > 10
    assert error.reset_at is not None
    with (
        Client(base_url=live_server.url, api_key=customer.key, retry=NO_RETRIES) as gov_sync,
        pytest.raises(RateLimited),
    ):
        gov_sync.check([operation], outage=FailOpen(lambda _: None))  # a 429 never fails open


def test_receipts_verify_offline_and_tampering_is_caught(live_server: LiveServer, governed: SeededCustomer) -> None:
    operations = [llm_call(CHAT_MODEL, [{"role": "user", "content": "hello"}], provider="openai")]
    with Client(base_url=live_server.url, api_key=governed.key, verify_receipts=True) as gov:
        result = gov.check(operations, {"user_id": "u1"})  # verified before it is returned
        body = {"operations": operations, "context": {"user_id": "u1"}}
        assert result.receipt is not None
        salt = result.receipt.get("request_salt")
        digest = request_digest(body, b64url_decode(salt) if salt else None)
        assert result.receipt["signed"]["request_digest"] == digest
        assert gov.verify_receipt(result, body)
        assert gov.verify_receipt(result.receipt)
        assert not gov.verify_receipt(result, {**body, "context": {"user_id": "u2"}})
        tampered = copy.deepcopy(result.receipt)
        tampered["signed"]["allowed"] = not tampered["signed"]["allowed"]
        assert not gov.verify_receipt(tampered)
        forged = {**copy.deepcopy(result.receipt), "key_id": "rk_" + "0" * 16}
        assert not gov.verify_receipt(forged)
        keys = gov.receipt_keys()
        assert result.receipt["key_id"] in keys


def test_verify_receipts_refuses_an_answer_that_does_not_verify() -> None:
    signed = {"v": 1, "event_id": "e", "request_id": "req_x", "allowed": True, "risk_score": 0}
    body = {
        "allowed": True,
        "risk_score": 0,
        "reason": "Within policy limits",
        "request_id": "req_standin",
        "event_id": str(uuid.uuid4()),
        "receipt": {"key_id": "rk_" + "1" * 16, "alg": "Ed25519", "signed": signed, "signature": "AAAA"},
    }
    with (
        failing_service(200, body=body) as fake,
        Client(base_url=fake.url, api_key="sk_live_test", verify_receipts=True) as gov,
    ):
        gov._keys.store({})  # the stand-in publishes no keys
        with pytest.raises(ReceiptInvalid):
            gov.check([GUIDE_OPERATION])


def test_403_is_raised_as_permission_denied() -> None:
    body = {"error": "forbidden", "message": "this endpoint needs an admin key", "request_id": "req_standin"}
    with (
        failing_service(403, body=body) as fake,
        Client(base_url=fake.url, api_key="sk_live_test") as gov,
        pytest.raises(PermissionDenied) as caught,
    ):
        gov.check([GUIDE_OPERATION], outage=FailOpen(lambda _: None))
    assert caught.value.request_id == "req_standin"
    assert len(fake.requests()) == 1


def test_500_is_not_retried_and_fails_closed() -> None:
    with (
        failing_service(500) as fake,
        Client(base_url=fake.url, api_key="sk_live_test") as gov,
        pytest.raises(ServerError) as caught,
    ):
        gov.check([GUIDE_OPERATION])
    assert caught.value.request_id == "req_standin"
    assert len(fake.requests()) == 1


def test_503_is_retried_per_retry_after_then_fails_closed() -> None:
    retry = RetryPolicy(max_attempts=3, jitter_s=0.05)
    with (
        failing_service(503, {"Retry-After": "0"}) as fake,
        Client(base_url=fake.url, api_key="sk_live_test", retry=retry) as gov,
        pytest.raises(GovernanceUnavailable) as caught,
    ):
        gov.check([GUIDE_OPERATION])
    assert caught.value.status == 503
    assert len(fake.requests()) == 3
    assert all(r.headers.get("authorization") == "Bearer sk_live_test" for r in fake.requests())


def test_503_longer_than_the_deadline_is_not_waited_for() -> None:
    with (
        failing_service(503, {"Retry-After": "30"}) as fake,
        Client(base_url=fake.url, api_key="sk_live_test", deadline=5) as gov,
        pytest.raises(GovernanceUnavailable),
    ):
        gov.check([GUIDE_OPERATION])
    assert len(fake.requests()) == 1


def test_429_without_retry_after_waits_for_the_reset() -> None:
    reset = str(int(time.time()))  # the bucket is full again now: retry at once
    body = {"error": "rate_limited", "message": "rate limit exceeded", "request_id": "req_standin"}
    retry = RetryPolicy(max_attempts=3, jitter_s=0.01)
    with (
        failing_service(429, {"X-RateLimit-Reset": reset}, body=body) as fake,
        Client(base_url=fake.url, api_key="sk_live_test", retry=retry) as gov,
        pytest.raises(RateLimited) as caught,
    ):
        gov.check([GUIDE_OPERATION])
    assert len(fake.requests()) == 3
    assert caught.value.reset_at == int(reset)


def test_one_connection_is_reused_across_checks() -> None:
    with failing_service(500) as fake, Client(base_url=fake.url, api_key="sk_live_test") as gov:
        for _ in range(3):
            with pytest.raises(ServerError):
                gov.check([GUIDE_OPERATION])
    assert len({r.client_port for r in fake.requests()}) == 1


def test_a_call_may_set_its_own_deadline_and_outage_policy() -> None:
    seen: list[GovernanceUnavailable] = []
    with failing_service(503, {"Retry-After": "1"}) as fake, Client(base_url=fake.url, api_key="sk_live_test") as gov:
        with pytest.raises(GovernanceUnavailable):
            gov.check(operations=[GUIDE_OPERATION], context={"user_id": "u1"}, deadline=0.5)  # no time to wait 1 s
        assert len(fake.requests()) == 1
        result = gov.check([GUIDE_OPERATION], deadline=0.5, outage=FailOpen(seen.append))
    assert result.fail_open
    assert len(seen) == 1
    assert fake.requests()[0].body == {"operations": [GUIDE_OPERATION], "context": {"user_id": "u1"}}


def test_fail_open_calls_back_and_allows() -> None:
    seen: list[GovernanceUnavailable] = []
    port = free_port()  # nothing listens there
    policy = FailOpen(seen.append)
    with Client(base_url=f"http://127.0.0.1:{port}", api_key="sk_live_test", outage=policy) as gov:
        result = gov.check([GUIDE_OPERATION])
    assert result.allowed is True
    assert result.fail_open is True
    assert result.outage is seen[0]
    assert len(seen) == 1
    assert "could not be reached" in seen[0].message


def test_stopped_service_fails_closed_by_default() -> None:
    port = free_port()
    retry = RetryPolicy(max_attempts=2, backoff_s=0.01)
    with (
        Client(base_url=f"http://127.0.0.1:{port}", api_key="sk_live_test", retry=retry) as gov,
        pytest.raises(GovernanceUnavailable) as caught,
    ):
        gov.check([GUIDE_OPERATION])
    assert "sk_live_test" not in str(caught.value)
    assert caught.value.__cause__ is None


def test_a_slow_service_is_cut_by_the_timeout() -> None:
    with (
        failing_service(200, delay_s=3.0) as fake,
        Client(base_url=fake.url, api_key="sk_live_test", timeout=0.3, deadline=0.6, retry=NO_RETRIES) as gov,
        pytest.raises(GovernanceUnavailable) as caught,
    ):
        gov.check([GUIDE_OPERATION])
    assert "in time" in caught.value.message


async def test_async_fail_open_awaits_an_async_callback() -> None:
    seen: list[str] = []

    async def on_outage(error: GovernanceUnavailable) -> None:
        seen.append(error.message)

    with failing_service(503) as fake:
        async with AsyncClient(
            base_url=fake.url, api_key="sk_live_test", retry=NO_RETRIES, outage=FailOpen(on_outage)
        ) as gov:
            result = await gov.check([GUIDE_OPERATION])
    assert result.fail_open
    assert result.allowed
    assert result.request_id == "req_standin"
    assert seen == ["stand-in answering 503"]


def test_the_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOVERNANCE_API_KEY", raising=False)
    with pytest.raises(ValueError, match="api_key"):
        Client(base_url="http://127.0.0.1:1")
    monkeypatch.setenv("GOVERNANCE_API_KEY", "sk_live_from_env")
    gov = Client(base_url="http://127.0.0.1:1")
    assert "sk_live_from_env" not in repr(gov)
    gov.close()
