"""Refusals become aggregated SignalEvents on the signals topic (what alerting counts)."""

from __future__ import annotations

import asyncio
import json
import time

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer

from ingress.auth.keys import _checksum, generate_key
from ingress.settings import IngressSettings
from tests.conftest import LiveServer, insert_customer
from tests.ingress.check.test_check import GUIDE_STEP4, auth


async def test_auth_failures_and_rate_limits_are_signalled(
    live_server: LiveServer, pg_pool: asyncpg.Pool, settings: IngressSettings
) -> None:
    customer = await insert_customer(pg_pool)
    await pg_pool.execute(
        "UPDATE customers SET rate_limit_capacity = 2, rate_limit_window_s = 3600 WHERE id = $1", customer.id
    )
    # A wrong secret for the customer's real key id is signalled under that key and customer; a made-up key id is
    # never named (a flood of them is one group).
    body = customer.key[: len("sk_live_") + 13] + "0" * 32
    wrong_secret = body + _checksum(body)
    made_up = generate_key("live").key
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        for presented in (wrong_secret, wrong_secret, wrong_secret, made_up):
            assert (
                await http.post("/v1/check", json=GUIDE_STEP4, headers={"Authorization": f"Bearer {presented}"})
            ).status_code == 401
        statuses = [
            (await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))).status_code for _ in range(5)
        ]
    assert statuses == [200, 200, 429, 429, 429]

    consumer = AIOKafkaConsumer(
        settings.signals_topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    auth_failures = rate_limited = 0
    try:
        deadline = time.monotonic() + 15
        while (auth_failures < 3 or rate_limited < 3) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    event = json.loads(record.value or b"{}")
                    assert event["key_id"] != "keyid_" + made_up[8:20]
                    if event["kind"] == "auth_failure" and event["key_id"] == customer.key_id:
                        assert event["reason"] == "unknown"
                        assert event["customer_id"] == str(customer.id)
                        auth_failures += event["count"]
                    if event["kind"] == "rate_limited" and event["customer_id"] == str(customer.id):
                        rate_limited += event["count"]
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    assert auth_failures == 3
    assert rate_limited == 3
