"""Shared fixtures: real services, a migrated test database, settings pointing at them, the ingress app."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient
from clickhouse_connect.driver.client import Client
from fastapi import FastAPI

from infra.clickhouse import build_clickhouse_client
from infra.kafka_topics import TopicSettings, ensure_topics
from infra.migrate import migrate_clickhouse, migrate_postgres
from infra.postgres import build_postgres_pool
from ingress.app import create_app
from ingress.audit.app import create_app as create_audit_app
from ingress.auth.keys import generate_key, hash_key
from ingress.settings import IngressSettings
from tests.support.live_server import LiveServer, run_server, server_env  # noqa: F401 - tests import them from here
from tests.support.receipt_keyring import RECEIPT_KEYS_DIR
from tests.support.services import Endpoints, test_endpoints

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RUN_ID = uuid.uuid4().hex[:10]
# Every topic a test makes on the shared broker is named under this prefix (``run_topic``), so the run can delete
# exactly its own at the end while other runs use the same broker.
RUN_TOPIC_PREFIX = f"test.{RUN_ID}."


def run_topic(name: str) -> str:
    """A Kafka topic name of this test run's own; ``kafka_topics_removed`` deletes it when the session ends."""
    return f"{RUN_TOPIC_PREFIX}{name}"


@pytest.fixture(scope="session")
def endpoints() -> Iterator[Endpoints]:
    with test_endpoints() as found:
        yield found


async def list_topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def delete_topics_where(bootstrap: str, doomed: Callable[[str], bool], timeout_s: float = 60.0) -> list[str]:
    """Delete every topic whose name ``doomed`` accepts and wait until the broker no longer lists one.

    Returns the names deleted; raises when some are still listed after ``timeout_s``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        names = sorted(name for name in await admin.list_topics() if doomed(name))
        if names:
            await admin.delete_topics(names, timeout_ms=30000)
        deadline = time.monotonic() + timeout_s
        while left := [name for name in await admin.list_topics() if doomed(name)]:
            if time.monotonic() > deadline:
                raise AssertionError(f"topics of this test run still listed after deleting them: {left}")
            await asyncio.sleep(0.5)
        return names
    finally:
        await admin.close()


# A run's topics are ``test.<its RUN_ID>.``: this run deletes only its own.
_RUN_PREFIXED = re.compile(r"test\.[0-9a-f]{10}\.")


@pytest.fixture(scope="session")
async def kafka_topics_removed(endpoints: Endpoints) -> AsyncIterator[str]:
    """When the session ends, every topic this run made is deleted from the broker.

    ``settings`` and ``unique_topic`` depend on it, so it is torn down after every server and consumer that used
    those topics has stopped (nothing is left to re-create one). Topics named with ``run_topic`` are deleted
    always. A ``test.`` topic under another name that appeared during the run is deleted too when no other run is
    on the broker (none of its ``test.<RUN_ID>.`` topics is listed); beside another run it could be that run's, so
    it is only reported."""
    bootstrap = endpoints.kafka_bootstrap_servers
    before = await list_topics(bootstrap)
    yield RUN_TOPIC_PREFIX
    await delete_topics_where(bootstrap, lambda name: name.startswith(RUN_TOPIC_PREFIX))
    now = await list_topics(bootstrap)
    strays = sorted(name for name in now - before if name.startswith("test.") and not _RUN_PREFIXED.match(name))
    if not strays:
        return
    if any(_RUN_PREFIXED.match(name) for name in now):
        warnings.warn(f"test topics not named with run_topic() left beside another run: {strays}", stacklevel=1)
        return
    await delete_topics_where(bootstrap, set(strays).__contains__)


@pytest.fixture(scope="session")
async def test_database_url(endpoints: Endpoints) -> AsyncIterator[str]:
    """A database of this test run's own, so runs side by side never see each other's rows."""
    name = f"governance_test_{RUN_ID}"
    admin = await asyncpg.connect(endpoints.database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = endpoints.database_url.rpartition("/")
    yield f"{base}/{name}"
    admin = await asyncpg.connect(endpoints.database_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def settings(
    endpoints: Endpoints,
    test_database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    kafka_topics_removed: str,
) -> IngressSettings:
    state = tmp_path_factory.mktemp("state")
    return IngressSettings.model_validate(
        {
            "ENVIRONMENT": "test",
            "GOVERNANCE_STATE_DIR": str(state),
            "DECISIONS_TOPIC": run_topic("decisions.v1"),
            "ALERTS_TOPIC": run_topic("alerts.v1"),
            "DLQ_TOPIC": run_topic("decisions.dlq"),
            "SIGNALS_TOPIC": run_topic("signals.v1"),
            "RECEIPT_KEYS_DIR": str(RECEIPT_KEYS_DIR),  # one receipt keyring for every process of the run
            "DATABASE_URL": test_database_url,
            "REDIS_URL": endpoints.redis_url,
            "KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap_servers,
            "CLICKHOUSE_URL": endpoints.clickhouse_dsn,
        }
    )


@pytest.fixture(scope="session")
async def migrated(settings: IngressSettings) -> str:
    """The run's database with every migration applied, once per session."""
    await migrate_postgres(settings.database_url)
    return settings.database_url


@pytest.fixture(scope="session")
def clickhouse(settings: IngressSettings) -> Client:
    client = build_clickhouse_client(settings.clickhouse_dsn, database=settings.clickhouse_database)
    migrate_clickhouse(client, settings.clickhouse_database)
    return client


@pytest.fixture
async def pg_pool(migrated: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await build_postgres_pool(migrated, min_size=1, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture
async def redis_client(settings: IngressSettings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def unique_topic(endpoints: Endpoints, kafka_topics_removed: str) -> str:
    """A topic of the test's own, created with 3 partitions (the brokers create no topic on first use)."""
    name = run_topic(uuid.uuid4().hex[:12])
    await ensure_topics(endpoints.kafka_bootstrap_servers, [name], TopicSettings(KAFKA_TOPIC_PARTITIONS=3))
    return name


@asynccontextmanager
async def running_apps(settings: IngressSettings) -> AsyncIterator[FastAPI]:
    """The check-path app and the audit read side, both in this process and started, the first forwarding the
    history paths to the second as ingress does over loopback. Yields the check-path app; the read side is its
    ``state.read_side``."""
    read_side = create_audit_app(settings)
    async with read_side.router.lifespan_context(read_side):
        application = create_app(settings, read_side_transport=httpx.ASGITransport(app=read_side))
        application.state.read_side = read_side
        async with application.router.lifespan_context(application):
            yield application


@pytest.fixture
async def app(
    settings: IngressSettings, migrated: str, clickhouse: Client, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FastAPI]:
    """The check-path app in process, forwarding the history paths to the read side in the same process
    (``audit_app``). Without the audit writer: each test's app would otherwise join and leave the same consumer
    group (seconds of rebalancing per test); the audit tests start writers of their own."""
    monkeypatch.setenv("AUDIT_IN_PROCESS", "false")
    async with running_apps(settings) as application:
        yield application


@pytest.fixture
def audit_app(app: FastAPI) -> FastAPI:
    """The audit read side that ``app`` forwards to."""
    read_side: FastAPI = app.state.read_side
    return read_side


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture(scope="session")
def project_root() -> Path:
    return Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class SeededCustomer:
    id: uuid.UUID
    name: str
    key: str
    key_id: str


async def insert_admin_key(pool: asyncpg.Pool, name: str = "test-admin") -> str:
    """Create an admin key straight in the database (the admin API's own tests create them through the CLI)."""
    generated = generate_key("admin")
    await pool.execute(
        "INSERT INTO admin_keys (key_id, key_hash, name) VALUES ($1, $2, $3)",
        generated.key_id,
        hash_key(generated.key, rounds=4),
        f"{name}-{uuid.uuid4().hex[:6]}",
    )
    return generated.key


async def insert_customer(pool: asyncpg.Pool, tier: str = "free", name: str | None = None) -> SeededCustomer:
    """Create a customer with one live key straight in the database."""
    name = name or f"customer-{uuid.uuid4().hex[:8]}"
    customer_id = await pool.fetchval("INSERT INTO customers (name, tier) VALUES ($1, $2) RETURNING id", name, tier)
    generated = generate_key("live")
    await pool.execute(
        "INSERT INTO api_keys (key_id, customer_id, key_hash, name) VALUES ($1, $2, $3, 'test-key')",
        generated.key_id,
        customer_id,
        hash_key(generated.key, rounds=4),
    )
    return SeededCustomer(customer_id, name, generated.key, generated.key_id)


@pytest.fixture
async def admin_key(pg_pool: asyncpg.Pool) -> str:
    return await insert_admin_key(pg_pool)


@pytest.fixture
async def customer(pg_pool: asyncpg.Pool) -> SeededCustomer:
    return await insert_customer(pg_pool)


@pytest.fixture(scope="session")
def live_server(
    settings: IngressSettings, migrated: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One real ingress process (uvicorn) for end-to-end tests over HTTP."""
    with run_server(settings, tmp_path_factory.mktemp("live-server")) as server:
        yield server
