"""Where the test suite finds PostgreSQL, Redis, Kafka and ClickHouse.

With a reachable Docker engine the services come from testcontainers; otherwise from the local stack that
``make test`` starts (infra/local/stack.py), using a database and a Redis index of their own. The same tests
run in both places.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoints:
    database_url: str
    redis_url: str
    kafka_bootstrap_servers: str
    clickhouse_dsn: str
    source: str  # "testcontainers" or "local stack"


def docker_reachable() -> bool:
    if os.environ.get("GOVERNANCE_TEST_NO_DOCKER") or shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5, check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@contextmanager
def test_endpoints() -> Iterator[Endpoints]:
    clickhouse_dir = tempfile.mkdtemp(prefix="governance-test-clickhouse-")
    clickhouse_dsn = os.environ.get("TEST_CLICKHOUSE_URL") or f"chdb://{clickhouse_dir}"
    try:
        if docker_reachable():
            from testcontainers.kafka import KafkaContainer
            from testcontainers.postgres import PostgresContainer
            from testcontainers.redis import RedisContainer

            with ExitStack() as stack:
                pg = stack.enter_context(PostgresContainer("postgres:16-alpine", driver=None))
                redis = stack.enter_context(RedisContainer("redis:7-alpine"))
                kafka = stack.enter_context(KafkaContainer("apache/kafka:4.1.1").with_kraft())
                yield Endpoints(
                    database_url=pg.get_connection_url(),
                    redis_url=f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0",
                    kafka_bootstrap_servers=kafka.get_bootstrap_server(),
                    clickhouse_dsn=clickhouse_dsn,
                    source="testcontainers",
                )
        else:
            yield Endpoints(
                database_url=os.environ.get(
                    "TEST_DATABASE_URL", "postgresql://governance:governance@127.0.0.1:5432/governance_test"
                ),
                redis_url=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
                kafka_bootstrap_servers=os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
                clickhouse_dsn=clickhouse_dsn,
                source="local stack",
            )
    finally:
        shutil.rmtree(clickhouse_dir, ignore_errors=True)
