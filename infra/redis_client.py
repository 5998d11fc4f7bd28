"""Redis client factory."""

from __future__ import annotations

import redis.asyncio as aioredis


def build_redis_client(url: str, *, timeout: float = 0.25) -> aioredis.Redis:
    """A client with short socket timeouts: Redis sits in the request path, so a slow Redis must fail fast."""
    client: aioredis.Redis = aioredis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=0,
        retry_on_timeout=False,
        decode_responses=False,
    )
    return client
