"""Redis with a password, as in docker-compose.yml: the client built from a REDIS_URL carrying the password is let in
(the rate limiter decides on Redis); without it Redis refuses and the limiter falls back to its local buckets."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest
from redis.exceptions import AuthenticationError, ResponseError

from infra.redis_client import build_redis_client
from ingress.check.ratelimit import Limit, RateLimiter
from tests.support.processes import free_port, wait_for_port

PASSWORD = "redis-test-password"

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is installed by make services"
)


@pytest.fixture
def protected_redis() -> Iterator[int]:
    folder = tempfile.mkdtemp(prefix="governance-test-redis-auth-")
    port = free_port()
    proc = subprocess.Popen(
        [
            *("redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"),
            *("--dir", folder, "--requirepass", PASSWORD),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield port
    finally:
        proc.kill()
        proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


async def test_the_password_in_redis_url_lets_the_rate_limiter_in(protected_redis: int) -> None:
    client = build_redis_client(f"redis://:{PASSWORD}@127.0.0.1:{protected_redis}/0", timeout=2.0)
    try:
        assert await client.ping()
        decision = await RateLimiter(client, timeout_s=2.0).take("key_pw", Limit(5, 60))
        assert decision.source == "redis"
        assert decision.remaining == 4
    finally:
        await client.aclose()


async def test_without_the_password_redis_refuses(protected_redis: int) -> None:
    client = build_redis_client(f"redis://127.0.0.1:{protected_redis}/0", timeout=2.0)
    try:
        with pytest.raises((AuthenticationError, ResponseError)):
            await client.ping()
        decision = await RateLimiter(client, timeout_s=2.0).take("key_nopw", Limit(5, 60))
        assert decision.source == "local"  # degraded, flagged, never let in
    finally:
        await client.aclose()
