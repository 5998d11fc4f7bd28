"""A key's limit and what the rate limiter decided for one request: shared by the Redis script paths
(``ingress.check.ratelimit``) and the token leases (``ingress.check.leases``)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    capacity: int
    window_s: int

    @property
    def rate_per_s(self) -> float:
        return self.capacity / self.window_s


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_epoch_s: int
    retry_after_s: int
    source: str  # "redis" (a script call per request), "lease" (a token of this process's lease) or "local"

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_epoch_s),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers


def reset_epoch_s(limit: Limit, now_s: float, left: float) -> int:
    """When a bucket holding ``left`` tokens at ``now_s`` is full again."""
    return math.ceil(now_s + max(0.0, limit.capacity - left) / limit.rate_per_s)
