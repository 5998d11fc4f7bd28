"""Each real part of the stack works: PostgreSQL, Redis (Lua), Kafka through FastStream, ClickHouse."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer
from clickhouse_connect.driver.client import Client
from faststream.kafka import KafkaMessage

from infra.kafka import build_kafka_broker
from tests.support.services import Endpoints


async def test_postgres_query(pg_pool: asyncpg.Pool) -> None:
    row = await pg_pool.fetchrow("SELECT $1::int + 1 AS answer, current_setting('server_version_num') AS v", 41)
    assert row is not None
    assert row["answer"] == 42
    assert int(row["v"]) >= 150000


async def test_postgres_migrations_recorded(pg_pool: asyncpg.Pool) -> None:
    versions = [r["version"] for r in await pg_pool.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions[0] == 1
    assert versions == sorted(set(versions))


async def test_redis_lua_script(redis_client: aioredis.Redis) -> None:
    key = f"test:lua:{uuid.uuid4().hex}"
    script = redis_client.register_script(
        "local v = redis.call('INCRBY', KEYS[1], ARGV[1]); redis.call('PEXPIRE', KEYS[1], 10000); return v"
    )
    assert await script(keys=[key], args=[5]) == 5
    assert await script(keys=[key], args=[7]) == 12
    assert 0 < await redis_client.pttl(key) <= 10000


async def test_kafka_produce_and_consume_through_faststream(endpoints: Endpoints, unique_topic: str) -> None:
    broker = build_kafka_broker(endpoints.kafka_bootstrap_servers, client_id="test-producer")
    received: asyncio.Queue[tuple[dict[str, str], bytes | None, dict[str, str]]] = asyncio.Queue()

    @broker.subscriber(unique_topic, group_id=f"g-{unique_topic}", auto_offset_reset="earliest")
    async def handle(body: dict[str, str], msg: KafkaMessage) -> None:
        await received.put((body, msg.raw_message.key, dict(msg.headers)))  # type: ignore[union-attr]

    async with broker:
        await broker.start()
        producer_config = broker.config.broker_config.producer  # type: ignore[attr-defined]
        assert producer_config is not None
        for i in range(3):
            await broker.publish({"n": str(i)}, topic=unique_topic, key=b"customer-1", headers={"event-type": "t"})
        got = [await asyncio.wait_for(received.get(), timeout=30) for _ in range(3)]
    assert sorted(body["n"] for body, _, _ in got) == ["0", "1", "2"]
    assert all(key == b"customer-1" for _, key, _ in got)
    assert all(headers.get("event-type") == "t" for _, _, headers in got)


async def test_kafka_producer_is_idempotent_with_acks_all(endpoints: Endpoints, unique_topic: str) -> None:
    broker = build_kafka_broker(endpoints.kafka_bootstrap_servers)
    async with broker:
        await broker.start()
        producer = broker.config.broker_config.producer._producer.producer  # type: ignore[attr-defined]
        # aiokafka keeps these privately: a transaction manager exists only for idempotent producers,
        # and acks="all" is stored as -1.
        assert producer._txn_manager is not None
        assert producer._sender._acks == -1
        metadata = await producer.send_and_wait(unique_topic, b"x", key=b"k")
        assert metadata.offset == 0


async def test_kafka_consumer_sees_offsets(endpoints: Endpoints, unique_topic: str) -> None:
    broker = build_kafka_broker(endpoints.kafka_bootstrap_servers)
    async with broker:
        await broker.start()
        await broker.publish(b"hello", topic=unique_topic, key=b"k")
    consumer = AIOKafkaConsumer(
        unique_topic,
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10000, max_records=10)
        values = [m.value for records in batch.values() for m in records]
    finally:
        await consumer.stop()
    assert values == [b"hello"]


def test_clickhouse_insert_and_select(clickhouse: Client) -> None:
    table = f"t_{uuid.uuid4().hex[:8]}"
    clickhouse.command(f"CREATE TABLE governance.{table} (id UInt64, label String) ENGINE = MergeTree ORDER BY id")
    try:
        clickhouse.insert(f"governance.{table}", [[1, "a"], [2, "b"], [3, "c"]], column_names=["id", "label"])
        rows = clickhouse.query(f"SELECT id, label FROM governance.{table} WHERE id >= 2 ORDER BY id").result_rows
        assert rows == [(2, "b"), (3, "c")]
    finally:
        clickhouse.command(f"DROP TABLE governance.{table}")


@pytest.mark.parametrize("token_repeats", [2])
def test_clickhouse_insert_deduplication_token(clickhouse: Client, token_repeats: int) -> None:
    table = f"d_{uuid.uuid4().hex[:8]}"
    clickhouse.command(
        f"CREATE TABLE governance.{table} (id UInt64) ENGINE = MergeTree ORDER BY id "
        "SETTINGS non_replicated_deduplication_window = 100"
    )
    try:
        for _ in range(token_repeats):
            clickhouse.insert(
                f"governance.{table}",
                [[1], [2]],
                column_names=["id"],
                settings={"insert_deduplication_token": "topic-0-10-11"},
            )
        assert clickhouse.query(f"SELECT count() FROM governance.{table}").result_rows == [(2,)]
    finally:
        clickhouse.command(f"DROP TABLE governance.{table}")
