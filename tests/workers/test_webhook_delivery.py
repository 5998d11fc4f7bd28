"""The webhook delivery worker against a receiver on 127.0.0.1 and the real PostgreSQL outbox: signatures (and the
documented way to verify them), retries with back-off, the final failed state, redirects, timeouts, ordering and
several workers at once."""

from __future__ import annotations

import base64
import os
import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import ValidationError

from consumers.alerts.evaluate import Observation, OpenAlert, Transition
from consumers.alerts.store import AlertStore, Source
from infra.secret_box import SecretBox, SecretBoxError
from ingress.admin.alerting import webhooks as webhook_data
from ingress.settings import IngressSettings
from schemas.alerting import PARAMS_BY_KIND, RULE_KINDS, RuleKind, WebhookDelivery as Delivery
from tests.conftest import insert_customer
from tests.support.alerts import (
    WebhookReceiver,
    add_webhook,
    running_worker,
    signature_is_valid,
    wait_for,
    webhook_settings,
)
from workers.webhooks import WebhookSettings
from workers.webhooks.addresses import non_public
from workers.webhooks.signing import sign

FIRING = Observation(True, 99.0, 90.0, "highest risk score 99 over the last 300 s; alerts at 90")
CLEARED = Observation(False, 0.0, 90.0, "highest risk score 0 over the last 300 s; alerts at 90")


async def open_alert(pool: asyncpg.Pool, customer_id: uuid.UUID, rule: RuleKind = "high_risk") -> OpenAlert:
    """Store an opened alert (and its deliveries) the way the consumer does."""
    transition = Transition("opened", rule, str(customer_id), PARAMS_BY_KIND[rule](), FIRING, None, datetime.now(UTC))
    applied = await AlertStore(pool).apply(transition, Source("test", 0))
    assert applied.event is not None
    assert applied.open_alert is not None
    return applied.open_alert


async def resolve_alert(pool: asyncpg.Pool, alert: OpenAlert) -> None:
    transition = Transition(
        "resolved", alert.rule, alert.subject, PARAMS_BY_KIND[alert.rule](), CLEARED, alert, datetime.now(UTC)
    )
    applied = await AlertStore(pool).apply(transition, Source("test", 0))
    assert applied.event is not None


async def deliveries(pool: asyncpg.Pool, webhook_id: uuid.UUID) -> list[Delivery]:
    return (await webhook_data.list_deliveries(pool, webhook_id)).items


def _docs_verifier(project_root: Path) -> Any:
    text = (project_root / "docs" / "alerting.md").read_text()
    [code] = [block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "def verify_signature" in block]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/alerting.md", "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace["verify_signature"]


def test_the_documented_verification_accepts_our_signature(project_root: Path) -> None:
    verify_signature = _docs_verifier(project_root)
    body = b'{"event_type":"alert","transition":"opened"}'
    now = int(time.time())
    header = sign("whsec_abc", now, body)
    assert verify_signature("whsec_abc", header, body)
    assert not verify_signature("whsec_abc", header, body + b" ")  # body changed
    assert not verify_signature("whsec_other", header, body)  # another secret
    assert not verify_signature("whsec_abc", sign("whsec_abc", now - 3600, body), body)  # replayed later
    assert not verify_signature("whsec_abc", "v1=deadbeef", body)  # malformed


async def test_server_errors_are_retried_with_backoff_then_delivered(
    pg_pool: asyncpg.Pool, settings: IngressSettings
) -> None:
    customer = await insert_customer(pg_pool)
    receiver = WebhookReceiver(status=503)
    await receiver.start()
    hook = await add_webhook(pg_pool, customer.id, receiver.url)
    await open_alert(pg_pool, customer.id)
    try:
        async with running_worker(webhook_settings(settings)):
            await wait_for(lambda: len(receiver.received) >= 2, what="two attempts")
            receiver.status = 200
            await wait_for(lambda: _status(pg_pool, hook.id, "delivered"), what="the delivery to succeed")
    finally:
        await receiver.stop()

    [delivery] = await deliveries(pg_pool, hook.id)
    codes = [a.status_code for a in delivery.attempt_log]
    assert codes[-1] == 200
    assert set(codes[:-1]) == {503}
    assert len(codes) == delivery.attempts == len(receiver.received)
    assert delivery.last_error is None
    assert delivery.delivered_at is not None
    assert all(a.error == "HTTP 503" for a in delivery.attempt_log[:-1])
    gaps = [b.at - a.at for a, b in zip(receiver.received, receiver.received[1:], strict=False)]
    assert all(gap >= 0.1 for gap in gaps)  # waited (initial 0.2 s, jittered down to half)
    ids = {r.headers["x-governance-delivery"] for r in receiver.received}
    assert ids == {str(delivery.id)}  # the same delivery id on every retry
    assert {r.event["event_id"] for r in receiver.received} == {str(delivery.event_id)}
    assert all(signature_is_valid(r, hook.secret) for r in receiver.received)


async def _status(pool: asyncpg.Pool, webhook_id: uuid.UUID, status: str) -> bool:
    found = await deliveries(pool, webhook_id)
    return bool(found) and all(d.status == status for d in found)


async def test_after_the_last_attempt_the_delivery_is_failed(pg_pool: asyncpg.Pool, settings: IngressSettings) -> None:
    customer = await insert_customer(pg_pool)
    dead = WebhookReceiver()  # never started
    hook = await add_webhook(pg_pool, customer.id, dead.url)
    await open_alert(pg_pool, customer.id)
    async with running_worker(webhook_settings(settings, WEBHOOK_MAX_ATTEMPTS=3)):
        await wait_for(lambda: _status(pg_pool, hook.id, "failed"), what="the delivery to fail")

    [delivery] = await deliveries(pg_pool, hook.id)
    assert (delivery.attempts, delivery.next_attempt_at, delivery.last_status_code) == (3, None, None)
    assert [a.outcome for a in delivery.attempt_log] == ["retry", "retry", "failed"]
    assert [a.next_attempt_at is None for a in delivery.attempt_log] == [False, False, True]
    assert all(a.error and "Connect" in a.error for a in delivery.attempt_log)


async def test_redirects_are_not_followed(pg_pool: asyncpg.Pool, settings: IngressSettings) -> None:
    customer = await insert_customer(pg_pool)
    elsewhere = WebhookReceiver()
    redirecting = WebhookReceiver(status=307)
    redirecting.headers_out["Location"] = elsewhere.url
    await elsewhere.start()
    await redirecting.start()
    hook = await add_webhook(pg_pool, customer.id, redirecting.url)
    await open_alert(pg_pool, customer.id)
    try:
        async with running_worker(webhook_settings(settings, WEBHOOK_MAX_ATTEMPTS=2)):
            await wait_for(lambda: _status(pg_pool, hook.id, "failed"), what="the delivery to fail")
    finally:
        await elsewhere.stop()
        await redirecting.stop()

    assert elsewhere.received == []
    assert len(redirecting.received) == 2
    [delivery] = await deliveries(pg_pool, hook.id)
    assert delivery.last_status_code == 307
    assert delivery.last_error == "HTTP 307: redirects are not followed"


async def test_a_slow_endpoint_times_out(pg_pool: asyncpg.Pool, settings: IngressSettings) -> None:
    customer = await insert_customer(pg_pool)
    slow = WebhookReceiver(delay_s=3)
    await slow.start()
    hook = await add_webhook(pg_pool, customer.id, slow.url)
    await open_alert(pg_pool, customer.id)
    try:
        async with running_worker(webhook_settings(settings, WEBHOOK_MAX_ATTEMPTS=1, WEBHOOK_TIMEOUT_S=0.5)):
            await wait_for(lambda: _status(pg_pool, hook.id, "failed"), what="the delivery to time out")
    finally:
        await slow.stop()

    [delivery] = await deliveries(pg_pool, hook.id)
    [attempt] = delivery.attempt_log
    assert attempt.error == "timed out after 0.5 s"
    assert attempt.duration_ms >= 400  # it waited for the timeout (the error says it fired; slowness only adds)


async def test_an_alerts_events_arrive_in_order(pg_pool: asyncpg.Pool, settings: IngressSettings) -> None:
    customer = await insert_customer(pg_pool)
    receiver = WebhookReceiver()  # down at first
    hook = await add_webhook(pg_pool, customer.id, receiver.url)
    alert = await open_alert(pg_pool, customer.id)
    await resolve_alert(pg_pool, alert)

    async def opened_retried() -> bool:
        by_transition = {d.transition: d for d in await deliveries(pg_pool, hook.id)}
        return by_transition["opened"].attempts >= 2

    try:
        async with running_worker(webhook_settings(settings)):
            await wait_for(opened_retried, what="the opened event to be retried")
            by_transition = {d.transition: d for d in await deliveries(pg_pool, hook.id)}
            assert by_transition["resolved"].attempts == 0  # waits for the earlier event of its alert
            await receiver.start()
            await wait_for(lambda: _status(pg_pool, hook.id, "delivered"), what="both deliveries")
    finally:
        await receiver.stop()
    assert receiver.transitions() == ["alert.opened", "alert.resolved"]


async def test_two_workers_deliver_each_event_once(pg_pool: asyncpg.Pool, settings: IngressSettings) -> None:
    receiver = WebhookReceiver(delay_s=0.05)
    await receiver.start()
    hooks = []
    for _ in range(2):
        customer = await insert_customer(pg_pool)
        hooks.append(await add_webhook(pg_pool, customer.id, receiver.url))
        for rule in RULE_KINDS:
            await open_alert(pg_pool, customer.id, rule)
    config = webhook_settings(settings, WEBHOOK_BATCH_SIZE=3)
    try:
        async with running_worker(config) as first, running_worker(config) as second:

            async def all_delivered() -> bool:
                return all([await _status(pg_pool, h.id, "delivered") for h in hooks])

            await wait_for(all_delivered, what="every delivery")
            worked = (first.stats.delivered, second.stats.delivered)
    finally:
        await receiver.stop()

    ids = [r.headers["x-governance-delivery"] for r in receiver.received]
    assert len(ids) == len(set(ids)) == 2 * len(RULE_KINDS)
    assert sum(worked) >= len(ids)  # other tests' leftovers may add to the count, never remove


async def test_outside_local_runs_private_destinations_are_refused(
    pg_pool: asyncpg.Pool, settings: IngressSettings
) -> None:
    customer = await insert_customer(pg_pool)
    receiver = WebhookReceiver()
    await receiver.start()
    hook = await add_webhook(pg_pool, customer.id, receiver.url.replace("127.0.0.1", "localhost"))
    await open_alert(pg_pool, customer.id)
    try:
        worker_settings = webhook_settings(settings, WEBHOOK_MAX_ATTEMPTS=2, WEBHOOK_ALLOW_PRIVATE_ADDRESSES=False)
        assert not worker_settings.allows_private_addresses
        async with running_worker(worker_settings):
            await wait_for(lambda: _status(pg_pool, hook.id, "failed"), what="the delivery to fail")
    finally:
        await receiver.stop()

    assert receiver.received == []
    [delivery] = await deliveries(pg_pool, hook.id)
    assert delivery.last_status_code is None
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("refused: localhost resolves to ")
    assert "not a public address" in delivery.last_error


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),  # cloud metadata
        ("100.64.0.1", True),  # carrier-grade NAT
        ("0.0.0.0", True),  # noqa: S104 - an address to classify, not to bind
        ("224.0.0.1", True),
        ("::1", True),
        ("fe80::1%eth0", True),
        ("fd00::1", True),
        ("::ffff:127.0.0.1", True),
        ("93.184.216.34", False),
        ("2606:4700:4700::1111", False),
    ],
)
def test_only_global_unicast_addresses_are_public(address: str, refused: bool) -> None:
    assert non_public(address) is refused


def test_local_runs_allow_private_destinations_unless_told_otherwise(settings: IngressSettings) -> None:
    assert webhook_settings(settings).allows_private_addresses  # ENVIRONMENT=test
    assert not webhook_settings(settings, WEBHOOK_ALLOW_PRIVATE_ADDRESSES=False).allows_private_addresses


async def test_a_secret_stored_before_encryption_still_signs(pg_pool: asyncpg.Pool, settings: IngressSettings) -> None:
    customer = await insert_customer(pg_pool)
    receiver = WebhookReceiver()
    await receiver.start()
    hook = await add_webhook(pg_pool, customer.id, receiver.url)
    await pg_pool.execute("UPDATE webhooks SET secret = $2 WHERE id = $1", hook.id, hook.secret)  # a legacy row
    await open_alert(pg_pool, customer.id)
    try:
        async with running_worker(webhook_settings(settings)):
            await wait_for(lambda: _status(pg_pool, hook.id, "delivered"), what="the delivery")
    finally:
        await receiver.stop()
    assert [signature_is_valid(r, hook.secret) for r in receiver.received] == [True]


async def test_a_secret_sealed_under_another_key_fails_the_attempt_not_the_worker(
    pg_pool: asyncpg.Pool, settings: IngressSettings
) -> None:
    customer = await insert_customer(pg_pool)
    receiver = WebhookReceiver()
    await receiver.start()
    hook = await add_webhook(pg_pool, customer.id, receiver.url)
    other = SecretBox(os.urandom(32)).seal(hook.secret)
    await pg_pool.execute("UPDATE webhooks SET secret = $2 WHERE id = $1", hook.id, other)
    await open_alert(pg_pool, customer.id)
    try:
        async with running_worker(webhook_settings(settings, WEBHOOK_MAX_ATTEMPTS=2)) as worker:
            await wait_for(lambda: _status(pg_pool, hook.id, "failed"), what="the delivery to fail")
            assert worker.stats.failed == 1
    finally:
        await receiver.stop()
    assert receiver.received == []  # nothing unsigned or wrongly signed went out
    [delivery] = await deliveries(pg_pool, hook.id)
    assert delivery.last_error is not None
    assert "does not open under WEBHOOK_SECRETS_KEY" in delivery.last_error


def test_the_secrets_key_is_required_outside_local_runs_and_never_echoed(settings: IngressSettings) -> None:
    real = base64.b64encode(os.urandom(32)).decode()
    staging = {"ENVIRONMENT": "staging", "DATABASE_URL": "postgresql://app:s3cret@db/governance"}
    with pytest.raises(ValidationError, match="WEBHOOK_SECRETS_KEY is required"):
        IngressSettings.model_validate(staging)
    with pytest.raises(ValidationError, match="WEBHOOK_SECRETS_KEY is required"):
        WebhookSettings.model_validate(staging)
    assert IngressSettings.model_validate(staging | {"WEBHOOK_SECRETS_KEY": real}).environment == "staging"
    with pytest.raises(ValidationError) as refused:
        IngressSettings.model_validate({"WEBHOOK_SECRETS_KEY": "not-base64-but-secret!"})
    assert "not-base64-but-secret!" not in str(refused.value)
    assert "s3cret" not in str(refused.value)
    sealed = SecretBox.from_settings(IngressSettings.model_validate(staging | {"WEBHOOK_SECRETS_KEY": real}))
    assert sealed.open(sealed.seal("whsec_x")) == "whsec_x"
    with pytest.raises(SecretBoxError):
        SecretBox.local().open(sealed.seal("whsec_x"))
