"""The check path under faults, with a Kafka and a Redis of the test's own: answered, spooled, relayed, counted."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from ingress.settings import IngressSettings
from tests.conftest import insert_customer, run_server
from tests.ingress.check.test_check import GUIDE_STEP4, auth
from tests.support.processes import kafka_process, redis_process

pytestmark = pytest.mark.slow


async def _event_ids(bootstrap: str, topic: str, expected: set[str], timeout: float = 40.0) -> set[str]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    seen: set[str] = set()
    try:
        deadline = time.monotonic() + timeout
        while not expected <= seen and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                seen.update(json.loads(r.value or b"{}")["event_id"] for r in records)
    finally:
        await consumer.stop()
    return seen


async def test_kafka_paused_checks_answered_spooled_then_relayed(
    settings: IngressSettings, migrated: str, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    customer = await insert_customer(pg_pool, tier="pro")
    with (
        kafka_process() as kafka,
        run_server(
            settings,
            tmp_path / "server",
            relay=True,  # python -m workers relays the spool, as in make up
            KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap,
            PUBLISH_ACK_TIMEOUT_S="0.3",
        ) as server,
    ):
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            for _ in range(50):  # the producer connects in the background
                if (await http.get("/ready")).json()["components"]["kafka"]["status"] == "up":
                    break
                await asyncio.sleep(0.2)
            answered: set[str] = set()
            for _ in range(5):
                response = await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))
                assert response.status_code == 200
                answered.add(response.json()["event_id"])
            kafka.pause()
            during = []
            for _ in range(20):
                response = await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))
                during.append(response.status_code)
                if response.status_code == 200:
                    answered.add(response.json()["event_id"])
            assert during == [200] * 20
            spooled = sorted((tmp_path / "server" / "spool" / "decisions").glob("*.event"))
            assert len(spooled) >= 15
            kafka.resume()
            seen = await _event_ids(kafka.bootstrap, settings.decisions_topic, answered)
    missing = answered - seen
    assert not missing, f"{len(missing)} answered decisions never reached Kafka"


async def test_redis_stopped_under_load_no_5xx_fallback_then_recovery(
    settings: IngressSettings, migrated: str, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    customer = await insert_customer(pg_pool, tier="pro")
    with (
        redis_process() as redis,
        run_server(settings, tmp_path / "server", REDIS_URL=redis.url, RATE_LIMIT_BREAKER_OPEN_S="0.5") as server,
    ):
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            assert (await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))).status_code == 200
            redis.stop()
            statuses = [
                (await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))).status_code for _ in range(20)
            ]
            assert statuses == [200] * 20
            ready = (await http.get("/ready")).json()
            assert ready["status"] == "degraded"
            assert ready["components"]["redis"]["rate_limit_fallback_active"] is True
            metrics = (await http.get("/metrics")).text
            assert "governance_ratelimit_fallback_active 1.0" in metrics
            redis.start()
            await asyncio.sleep(0.6)
            for _ in range(30):
                await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))
                ready = (await http.get("/ready")).json()
                if ready["status"] == "ready" and not ready["components"]["redis"]["rate_limit_fallback_active"]:
                    break
                await asyncio.sleep(0.2)
            assert ready["status"] == "ready", ready
