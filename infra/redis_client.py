"""Redis client factory."""

from __future__ import annotations

import redis.asyncio as aioredis


def build_redis_client(url: str, *, timeout: float = 0.25, max_connections: int = 256) -> aioredis.Redis:
    """A client with short socket timeouts: Redis sits in the request path, so a slow Redis must fail fast.

    The pool blocks (up to ``timeout``) for a free connection instead of failing at once, so a burst of
    concurrent checks queues for Redis rather than tripping the rate limiter's fallback.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=0,
        retry_on_timeout=False,
    )
    client: aioredis.Redis = aioredis.Redis(connection_pool=pool)
    return client
