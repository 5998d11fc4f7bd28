"""Alerting end to end through the real Kafka and PostgreSQL: events produced to the run's topics, the alerting
consumer and the webhook worker running in-process, a webhook receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import signal as signals
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from ingress.admin.alerting import alerts as alert_data, webhooks as webhook_data
from ingress.settings import IngressSettings
from tests.conftest import insert_customer, server_env
from tests.support.alerts import (
    WebhookReceiver,
    add_rule,
    add_webhook,
    alert_events_on_kafka,
    alerting_settings,
    decision,
    produce,
    running_consumer,
    running_worker,
    signal,
    signature_is_valid,
    wait_for,
    webhook_settings,
)


async def test_a_burst_of_blocks_opens_one_alert_delivered_once_then_resolved(
    pg_pool: asyncpg.Pool, settings: IngressSettings
) -> None:
    customer = await insert_customer(pg_pool)
    await add_rule(pg_pool, customer.id, "block_rate", threshold_percent=50.0, min_volume=10, window_s=3)
    receiver = WebhookReceiver()
    await receiver.start()
    hook = await add_webhook(pg_pool, customer.id, receiver.url)
    try:
        async with running_consumer(alerting_settings(settings)), running_worker(webhook_settings(settings)):
            await produce(settings, [decision(customer.id, allowed=False, risk=60) for _ in range(40)])
            await wait_for(lambda: "alert.opened" in receiver.transitions(), what="the opened alert to arrive")
            await wait_for(lambda: "alert.resolved" in receiver.transitions(), what="the resolved alert to arrive")
    finally:
        await receiver.stop()

    assert receiver.transitions() == ["alert.opened", "alert.resolved"]  # one alert: no storm
    opened, resolved = (r.event for r in receiver.received)
    assert all(signature_is_valid(r, hook.secret) for r in receiver.received)
    assert not any(signature_is_valid(r, hook.secret + "x") for r in receiver.received)
    assert all(r.path == "/hooks/alerts" and r.headers["content-type"] == "application/json" for r in receiver.received)
    assert (opened["rule"], opened["transition"], opened["sequence"], opened["status"]) == (
        "block_rate",
        "opened",
        1,
        "open",
    )
    assert opened["customer_id"] == str(customer.id)
    assert opened["value"] == 100.0
    assert opened["params"]["min_volume"] == 10
    assert (resolved["alert_id"], resolved["sequence"], resolved["status"]) == (opened["alert_id"], 2, "resolved")
    assert resolved["resolved_at"] is not None

    page = await alert_data.list_alerts(pg_pool, customer_id=customer.id)
    assert page.total == 1
    [alert] = page.items
    assert (str(alert.id), alert.status, alert.sequence) == (opened["alert_id"], "resolved", 2)
    assert (await alert_data.list_alerts(pg_pool, customer_id=customer.id, status="open")).total == 0

    deliveries = await webhook_data.list_deliveries(pg_pool, hook.id)
    assert [(d.transition, d.status, d.attempts) for d in deliveries.items] == [
        ("resolved", "delivered", 1),
        ("opened", "delivered", 1),
    ]
    assert all(d.attempt_log[0].status_code == 200 for d in deliveries.items)

    on_kafka = await alert_events_on_kafka(settings, str(customer.id), want=2)
    assert [e["transition"] for e in on_kafka] == ["opened", "resolved"]
    assert on_kafka[0]["_headers"]["event-type"] == b"alert"
    assert on_kafka[0]["_key"] == str(customer.id).encode()
    assert {e["event_id"] for e in on_kafka} == {opened["event_id"], resolved["event_id"]}


async def test_an_endpoint_that_is_down_gets_the_alert_once_it_is_back(
    pg_pool: asyncpg.Pool, settings: IngressSettings
) -> None:
    customer = await insert_customer(pg_pool)
    await add_rule(pg_pool, customer.id, "high_risk", min_risk_score=80, window_s=60)
    receiver = WebhookReceiver()  # not listening yet
    hook = await add_webhook(pg_pool, customer.id, receiver.url)

    async def two_attempts_failed() -> bool:
        page = await webhook_data.list_deliveries(pg_pool, hook.id)
        return sum(1 for d in page.items for a in d.attempt_log if a.outcome == "retry") >= 2

    try:
        async with running_consumer(alerting_settings(settings)), running_worker(webhook_settings(settings)):
            await produce(settings, [decision(customer.id, allowed=False, risk=95)])
            await wait_for(two_attempts_failed, what="two failed attempts")
            await receiver.start()
            await wait_for(lambda: bool(receiver.received), what="the delivery once the endpoint is back")
    finally:
        await receiver.stop()

    assert receiver.transitions() == ["alert.opened"]
    assert signature_is_valid(receiver.received[0], hook.secret)
    [delivery] = (await webhook_data.list_deliveries(pg_pool, hook.id)).items
    assert delivery.status == "delivered"
    assert delivery.attempts == len(delivery.attempt_log) >= 3
    assert delivery.next_attempt_at is None
    *failures, success = delivery.attempt_log
    assert [a.attempt for a in delivery.attempt_log] == list(range(1, delivery.attempts + 1))
    for attempt in failures:
        assert attempt.outcome == "retry"
        assert attempt.status_code is None
        assert attempt.error
        assert "Connect" in attempt.error
        assert attempt.next_attempt_at is not None
        assert attempt.next_attempt_at > attempt.started_at
    assert (success.outcome, success.status_code, success.error) == ("delivered", 200, None)


@pytest.mark.parametrize("crash", [False, True], ids=["graceful-restart", "crash-before-commit"])
async def test_a_consumer_restart_mid_burst_notifies_once(
    crash: bool, pg_pool: asyncpg.Pool, settings: IngressSettings
) -> None:
    customer = await insert_customer(pg_pool)
    await add_rule(pg_pool, customer.id, "block_rate", threshold_percent=50.0, min_volume=10, window_s=4)
    receiver = WebhookReceiver()
    await receiver.start()
    await add_webhook(pg_pool, customer.id, receiver.url)
    config = alerting_settings(settings)  # one group for both runs
    try:
        async with running_worker(webhook_settings(settings)):
            async with running_consumer(config) as first:
                await produce(settings, [decision(customer.id, allowed=False) for _ in range(15)])
                await wait_for(lambda: receiver.transitions() == ["alert.opened"], what="the opened alert")
                partitions = first.assigned

            if crash:  # as if the first run had died before committing: the group starts again from the start
                await _rewind_group(settings, config.alerts_group_id, partitions)
            await produce(settings, [decision(customer.id, allowed=False) for _ in range(15)])

            async with running_consumer(config) as second:
                await wait_for(lambda: second.stats.records >= 30, what="the second run to read the whole burst")
                await wait_for(lambda: "alert.resolved" in receiver.transitions(), what="the resolved alert")
                assert second.stats.transitions["opened"] == 0, second.open_alerts()
                if not crash:  # the first burst was read again only to rebuild the window
                    assert second.stats.replayed >= 15
    finally:
        await receiver.stop()

    assert receiver.transitions() == ["alert.opened", "alert.resolved"]
    assert (await alert_data.list_alerts(pg_pool, customer_id=customer.id)).total == 1
    events = await pg_pool.fetchval(
        "SELECT count(*) FROM alert_events e JOIN alerts a ON a.id = e.alert_id WHERE a.customer_id = $1", customer.id
    )
    assert events == 2


async def _rewind_group(settings: IngressSettings, group_id: str, partitions: list[TopicPartition]) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.commit(dict.fromkeys(partitions, 0))
    finally:
        await consumer.stop()


async def test_refusals_alert_per_customer_and_in_the_unknown_bucket(
    pg_pool: asyncpg.Pool, settings: IngressSettings
) -> None:
    limited = await insert_customer(pg_pool)
    attacked = await insert_customer(pg_pool)
    await add_rule(pg_pool, limited.id, "rate_limited", max_rejections=5, window_s=60)
    await add_rule(pg_pool, attacked.id, "auth_failures", max_failures=2, window_s=60)
    forged_key_id = f"keyid_{uuid.uuid4().hex[:12]}"

    async with running_consumer(alerting_settings(settings)) as consumer:
        await produce(
            settings,
            [
                signal("rate_limited", 6, customer_id=limited.id, key_id=limited.key_id),
                # a key we issued (say, revoked): its customer's; a key id we never issued: nobody's
                signal("auth_failure", 3, key_id=attacked.key_id, reason="revoked"),
                signal("auth_failure", 25, key_id=forged_key_id, reason="unknown"),
                signal("auth_failure", 1, reason="missing"),
            ],
        )
        await wait_for(
            lambda: (
                {("rate_limited", str(limited.id)), ("auth_failures", str(attacked.id))} <= set(consumer.open_alerts())
            ),
            what="the customers' alerts",
        )
        await wait_for(lambda: ("auth_failures", "unknown") in consumer.open_alerts(), what="the unknown alert")

    [unknown] = (await alert_data.list_alerts(pg_pool, subject="unknown", rule="auth_failures", status="open")).items
    assert unknown.customer_id is None
    assert unknown.value > 20  # the default rule: more than 20 in 300 s
    [rate] = (await alert_data.list_alerts(pg_pool, customer_id=limited.id)).items
    assert (rate.rule, rate.value, rate.threshold) == ("rate_limited", 6.0, 5.0)
    [auth] = (await alert_data.list_alerts(pg_pool, customer_id=attacked.id)).items
    assert (auth.rule, auth.value) == ("auth_failures", 3.0)


async def test_the_entry_points_run_standalone_and_stop_on_sigterm(
    pg_pool: asyncpg.Pool, settings: IngressSettings, tmp_path: Path
) -> None:
    """``python -m consumers.alerts`` and ``python -m workers.webhooks`` as processes: an alert goes all the way."""
    customer = await insert_customer(pg_pool)
    await add_rule(pg_pool, customer.id, "high_risk", min_risk_score=50, window_s=60)
    receiver = WebhookReceiver()
    await receiver.start()
    hook = await add_webhook(pg_pool, customer.id, receiver.url)
    env = server_env(
        settings,
        ALERTS_GROUP_ID=f"test-alerts-{uuid.uuid4().hex[:8]}",
        ALERTS_TICK_S="0.2",
        WEBHOOK_POLL_INTERVAL_S="0.1",
        LOG_LEVEL="INFO",
    )
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in ("consumers.alerts", "workers.webhooks")}
    procs = {
        name: await asyncio.create_subprocess_exec(
            sys.executable, "-m", name, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2]
        )
        for name, log in logs.items()
    }
    try:
        await produce(settings, [decision(customer.id, allowed=False, risk=99)])
        await wait_for(lambda: bool(receiver.received), timeout=30, what="the alert delivered by the processes")
    finally:
        await receiver.stop()
        for proc in procs.values():
            proc.send_signal(signals.SIGTERM)
        codes = {name: await asyncio.wait_for(proc.wait(), 20) for name, proc in procs.items()}
        for log in logs.values():
            log.close()
    output = {name: (tmp_path / f"{name}.log").read_text(errors="replace") for name in procs}
    assert codes == {"consumers.alerts": 0, "workers.webhooks": 0}, output
    assert receiver.transitions() == ["alert.opened"]
    assert signature_is_valid(receiver.received[0], hook.secret)
    assert "alerting consumer stopped" in output["consumers.alerts"]
