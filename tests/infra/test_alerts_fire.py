"""Every alert rule of infra/prometheus/alerts.yml fires on its real failure, induced on real processes.

A Prometheus of the test's own (Debian's ``prometheus``) scrapes the processes every second with the rules loaded.
Each test shows the metric crossing the rule's threshold in the process's own ``/metrics``, then waits for the rule
manager to put the alert in ``pending`` (its expression holds; ``firing`` follows once its ``for:`` has passed,
minutes that a test does not wait). The rules' unit tests on synthetic series stay in
``infra/prometheus/alerts.test.yml`` (tests/infra/test_prometheus_rules.py).

| rule | failure induced |
|---|---|
| GovernanceConsumerLagHigh | the audit writer stopped while 10 050 decisions arrive |
| GovernanceDeadLettersGrowing | a poison record on the decisions topic |
| GovernanceWebhookFailures | a receiver that refuses connections |
| GovernanceTargetDown | the workers process killed |
| GovernanceSpoolGrowing, GovernanceCheckLatencyHigh, GovernanceErrorRateHigh | the broker paused (SIGSTOP) |
| GovernanceRateLimitFallback | Redis stopped |
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from ingress.settings import IngressSettings
from tests.conftest import insert_customer, run_server
from tests.ingress.check.test_check import GUIDE_STEP4, auth
from tests.support.alerts import add_webhook
from tests.support.audit import DECISION_HEADERS, make_event
from tests.support.processes import free_port, kafka_process, redis_process
from tests.support.prometheus_server import PrometheusServer, prometheus_server, sample
from tests.support.roles import (
    Topics,
    audit_target,
    ingress_target,
    metric_of,
    run_role,
    topics as topics,  # noqa: PLC0414 - the fixture
    wait_for_metric,
    wait_ready,
)
from tests.workers.test_webhook_delivery import open_alert

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def one_alert(prometheus: PrometheusServer, name: str, **labels: str) -> dict[str, object]:
    found = prometheus.wait_for_alert(name)
    matching = [a for a in found if all(a["labels"].get(k) == v for k, v in labels.items())]
    assert matching, (name, labels, found)
    return matching[0]


# --- the audit pipeline ---------------------------------------------------------------------------------------


async def test_dead_letters_alert_fires_on_a_poison_record(
    settings: IngressSettings, migrated: str, topics: Topics, tmp_path: Path
) -> None:
    with (
        run_server(settings, tmp_path / "ingress", AUDIT_FLUSH_INTERVAL_S="0.3", **topics.env) as ingress,
        prometheus_server({"ingress-audit": [audit_target(ingress)]}) as prometheus,
    ):
        await wait_ready(ingress.url, "kafka")
        prometheus.wait_for_targets()
        assert metric_of(ingress.audit_url, "governance_dlq_messages_total", reason="invalid_json") == 0
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topics.env["DECISIONS_TOPIC"], b"{not json", key=b"poison")
        finally:
            await producer.stop()
        dead = wait_for_metric(
            lambda: metric_of(ingress.audit_url, "governance_dlq_messages_total", reason="invalid_json"),
            at_least=1,
            what="dead-lettered by the audit writer",
        )
        assert dead == 1
        alert = one_alert(prometheus, "GovernanceDeadLettersGrowing", reason="invalid_json")
        assert alert["labels"]["severity"] == "warning"  # type: ignore[index]


async def test_consumer_lag_alert_fires_while_the_audit_writer_is_stopped(
    settings: IngressSettings, migrated: str, pg_pool: asyncpg.Pool, topics: Topics, tmp_path: Path
) -> None:
    group = f"test-audit-lag-{uuid.uuid4().hex[:8]}"
    customer = await insert_customer(pg_pool, tier="pro")
    common = {**topics.env, "AUDIT_GROUP_ID": group}
    with run_role(
        settings,
        "consumers",
        tmp_path / "consumers",
        "alerts",
        CONSUMER_LAG_INTERVAL_S="1",
        ALERTS_GROUP_ID=f"test-alerts-lag-{uuid.uuid4().hex[:8]}",
        **common,
    ) as consumers:
        # The writer runs (in the ingress, on its embedded ClickHouse), writes three decisions and commits.
        with run_server(settings, tmp_path / "ingress", AUDIT_FLUSH_INTERVAL_S="0.3", **common) as ingress:
            async with httpx.AsyncClient(base_url=ingress.url, timeout=30) as http:
                for _ in range(3):
                    assert (await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))).status_code == 200

            def group_lag() -> float | None:
                text = consumers.metrics()
                values = [
                    s
                    for p in range(6)
                    if (s := sample(text, "governance_consumer_lag", group=group, partition=str(p))) is not None
                ]
                return sum(values) if len(values) == 6 else None

            deadline = time.monotonic() + 60
            while group_lag() != 0:
                assert time.monotonic() < deadline, f"the running writer never caught up: {group_lag()}"
                await asyncio.sleep(0.5)
        # The writer is stopped; decisions keep arriving.
        with prometheus_server({"consumers": [consumers.target]}) as prometheus:
            prometheus.wait_for_targets()
            arriving = 10_050
            producer = AIOKafkaProducer(
                bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=20, max_batch_size=262144
            )
            await producer.start()
            try:
                value = make_event(customer.id).model_dump_json().encode()
                key = str(customer.id).encode()
                sends = [
                    await producer.send(topics.env["DECISIONS_TOPIC"], value, key=key, headers=DECISION_HEADERS)
                    for _ in range(arriving)
                ]
                await asyncio.gather(*sends)
            finally:
                await producer.stop()
            lag = wait_for_metric(group_lag, at_least=arriving, what=f"lag of {group}")
            # Every arriving decision is lag; so may be the last of the writer's own three if its final commit did
            # not land before it stopped.
            assert arriving <= lag <= arriving + 3
            alert = one_alert(prometheus, "GovernanceConsumerLagHigh", group=group)
            assert float(alert["value"]) >= arriving  # type: ignore[arg-type]


# --- the workers ----------------------------------------------------------------------------------------------


async def test_webhook_failures_and_target_down_alerts_fire(
    settings: IngressSettings, migrated: str, pg_pool: asyncpg.Pool, topics: Topics, tmp_path: Path
) -> None:
    refusing = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens: every connection is refused
    customer = await insert_customer(pg_pool)
    await add_webhook(pg_pool, customer.id, refusing)
    with (
        run_role(
            settings,
            "workers",
            tmp_path / "workers",
            WEBHOOK_MAX_ATTEMPTS="2",
            WEBHOOK_POLL_INTERVAL_S="0.2",
            WEBHOOK_BACKOFF_INITIAL_S="0.2",
            WEBHOOK_BACKOFF_MAX_S="0.5",
            SPOOL_DIR=str(tmp_path / "spool"),
            **topics.env,
        ) as workers,
        prometheus_server({"workers": [workers.target]}) as prometheus,
    ):
        prometheus.wait_for_targets()
        assert sample(workers.metrics(), "governance_webhook_deliveries_total", outcome="failed") == 0
        await open_alert(pg_pool, customer.id)  # the alert's delivery to the refusing receiver
        failed = wait_for_metric(
            lambda: sample(workers.metrics(), "governance_webhook_deliveries_total", outcome="failed"),
            at_least=1,
            what="webhook deliveries given up",
        )
        assert failed >= 1
        assert (sample(workers.metrics(), "governance_webhook_deliveries_total", outcome="retrying") or 0) >= 1
        one_alert(prometheus, "GovernanceWebhookFailures")

        workers.kill()
        down = one_alert(prometheus, "GovernanceTargetDown", job="workers")
        assert down["labels"]["severity"] == "page"  # type: ignore[index]
        assert prometheus.query('up{job="workers"} == 0')


# --- the ingress ----------------------------------------------------------------------------------------------


async def test_spool_latency_and_error_rate_alerts_fire_while_the_broker_is_paused(
    settings: IngressSettings, migrated: str, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    customer = await insert_customer(pg_pool, tier="pro")
    spool_max = 4
    with (
        kafka_process() as kafka,
        run_server(
            settings,
            tmp_path / "ingress",
            KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap,
            AUDIT_IN_PROCESS="false",
            PUBLISH_ACK_TIMEOUT_S="0.7",
            SPOOL_MAX_EVENTS=str(spool_max),
        ) as ingress,
        # the relay of make up: python -m workers drains the spool of the ingress processes on its host
        run_role(
            settings,
            "workers",
            tmp_path / "workers",
            KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap,
            SPOOL_DIR=str(tmp_path / "ingress" / "spool" / "decisions"),
        ) as workers,
        prometheus_server({"ingress": [ingress_target(ingress)]}) as prometheus,
    ):
        await wait_ready(ingress.url, "kafka")
        async with httpx.AsyncClient(base_url=ingress.url, timeout=30) as http:
            for _ in range(3):
                assert (await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))).status_code == 200
            prometheus.wait_for_targets()
            kafka.pause()
            try:
                statuses = [
                    (await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))).status_code
                    for _ in range(12)
                ]
                # The spool takes the first decisions; once full, nothing can be recorded: 503, nothing decided.
                assert statuses == [200] * spool_max + [503] * (12 - spool_max), statuses
                assert metric_of(ingress.url, "governance_spool_depth") == spool_max
                assert metric_of(ingress.url, "governance_decision_publish_total", outcome="spool") == spool_max
                spool = one_alert(prometheus, "GovernanceSpoolGrowing")
                assert float(spool["value"]) == spool_max  # type: ignore[arg-type]
                latency = one_alert(prometheus, "GovernanceCheckLatencyHigh")
                assert float(latency["value"]) > 500  # type: ignore[arg-type]
                errors = one_alert(prometheus, "GovernanceErrorRateHigh")
                assert float(errors["value"]) > 0.01  # type: ignore[arg-type]
            finally:
                kafka.resume()
            # Kafka is back: the relay drains the spool, and says so.
            relayed = wait_for_metric(
                lambda: sample(workers.metrics(), "governance_spool_relayed_total"),
                at_least=spool_max,
                what="spooled events relayed",
            )
            assert relayed == spool_max
            # the next check reports the drained spool
            assert (await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))).status_code == 200
            assert metric_of(ingress.url, "governance_spool_depth") == 0


async def test_rate_limit_fallback_alert_fires_when_redis_is_away(
    settings: IngressSettings, migrated: str, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    customer = await insert_customer(pg_pool, tier="pro")
    with (
        redis_process() as redis,
        run_server(settings, tmp_path / "ingress", REDIS_URL=redis.url, AUDIT_IN_PROCESS="false") as ingress,
        prometheus_server({"ingress": [ingress_target(ingress)]}) as prometheus,
    ):
        async with httpx.AsyncClient(base_url=ingress.url, timeout=30) as http:
            assert (await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))).status_code == 200
            prometheus.wait_for_targets()
            assert metric_of(ingress.url, "governance_ratelimit_fallback_active") == 0
            redis.stop()
            for _ in range(15):
                # still answered: each process limits on its own buckets, once it has used up the token lease it
                # holds (9 of a pro key's 10) and Redis failed three times
                assert (await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))).status_code == 200
        assert metric_of(ingress.url, "governance_ratelimit_fallback_active") == 1
        alert = one_alert(prometheus, "GovernanceRateLimitFallback", instance=ingress_target(ingress))
        assert alert["labels"]["severity"] == "warning"  # type: ignore[index]
