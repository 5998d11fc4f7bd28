"""Shared fixtures: real services, a migrated test database, settings pointing at them, the ingress app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from clickhouse_connect.driver.client import Client
from fastapi import FastAPI

from infra.clickhouse import build_clickhouse_client
from infra.migrate import migrate_clickhouse, migrate_postgres
from infra.postgres import build_postgres_pool
from ingress.app import create_app
from ingress.settings import IngressSettings
from tests.services import Endpoints, test_endpoints


@pytest.fixture(scope="session")
def endpoints() -> Iterator[Endpoints]:
    with test_endpoints() as found:
        yield found


@pytest.fixture(scope="session")
def settings(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> IngressSettings:
    state = tmp_path_factory.mktemp("state")
    return IngressSettings.model_validate(
        {
            "ENVIRONMENT": "test",
            "GOVERNANCE_STATE_DIR": str(state),
            "DATABASE_URL": endpoints.database_url,
            "REDIS_URL": endpoints.redis_url,
            "KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap_servers,
            "CLICKHOUSE_URL": endpoints.clickhouse_dsn,
        }
    )


@pytest.fixture(scope="session")
async def migrated(settings: IngressSettings) -> str:
    """A clean test database with every migration applied, once per session."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()
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
def unique_topic() -> str:
    return f"test.{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def app(settings: IngressSettings, migrated: str, clickhouse: Client) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture(scope="session")
def project_root() -> Path:
    return Path(__file__).resolve().parents[1]
