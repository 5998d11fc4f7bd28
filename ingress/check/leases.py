"""Token leases: a check process takes several tokens of a key's Redis bucket in one script call and decides that
key's next checks from them in memory, instead of a Redis round trip per check.

Why the limit still holds across processes: tokens only ever come out of the shared bucket, and a token allows at
most one check. The one way past an exact bucket is that the bucket refills while tokens sit in leases, so over any
interval the checks allowed for a key are at most what one exact bucket allows plus the tokens held in leases at
its start: one lease per process and key, of at most ``LeasePolicy.size`` tokens (a small share of the capacity).
The slack is bounded three ways:

* a lease is ``fraction`` of the capacity (default 1 %); a limit too small for a lease of two tokens keeps the
  per-check script;
* a lease lives ``ttl_s``; its unused tokens go back to the bucket in the key's next script call (given back in the
  same call, so it costs nothing) or are lost when the key goes quiet, which only ever refuses more;
* near the limit, while the bucket would hold fewer than ``exact_below`` leases' worth after a lease, the script
  grants only as many tokens as there are checks waiting, so no token is held and the 429 comes at the exact count.

Concurrent checks of one key in one process queue for one script call, which asks for as many tokens as there are
checks waiting (``RateLimiter`` in ``ingress.check.ratelimit`` runs that; this module is its pure part).

``X-RateLimit-Remaining`` of a check decided from a lease is the bucket's level at the grant plus the lease's unused
tokens: exact for a key used by one process; otherwise it does not count what other processes took since the grant
(at most ``ttl_s`` ago) nor what they hold (at most a lease each).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ingress.check.bucket_script import BUCKET_LOAD, BUCKET_STORE
from ingress.check.rate_decision import Limit, RateDecision, reset_epoch_s

# The bucket of ``ratelimit.BUCKET_SCRIPT`` (same hash, same refill on Redis's clock), taken ``want`` tokens at a
# time for the checks waiting, and a whole lease while that leaves ``exact_below`` tokens in the bucket.
# ARGV: capacity, window_ms, want, lease, exact_below (tokens), given back (unused tokens of the last lease).
LEASE_SCRIPT = (
    """
local want = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local exact_below = tonumber(ARGV[5])
local extra = tonumber(ARGV[6])
"""
    + BUCKET_LOAD
    + """
local granted = math.min(want, math.floor(tokens))
if tokens - lease >= exact_below then
  granted = math.max(granted, lease)
end
tokens = tokens - granted
"""
    + BUCKET_STORE
    + """
local retry_ms = 0
if granted < want then
  retry_ms = math.ceil((1 - tokens) / rate)
end
return {granted, tostring(tokens), retry_ms, now}
"""
)


@dataclass(frozen=True)
class LeasePolicy:
    """How large leases are and how long they live. ``fraction`` 0 turns leases off."""

    fraction: float = 0.01
    ttl_s: float = 1.0
    exact_below: int = 5  # in leases: below this many in the bucket, grant only what is waiting

    def size(self, limit: Limit) -> int:
        """Tokens per lease for ``limit``; 0 when a lease would be under two tokens (the per-check script)."""
        tokens = math.floor(limit.capacity * self.fraction)
        return tokens if tokens >= 2 else 0

    def script_args(self, limit: Limit, want: int, given_back: int) -> list[int]:
        size = self.size(limit)
        return [limit.capacity, limit.window_s * 1000, want, size, self.exact_below * size, given_back]


@dataclass(frozen=True)
class Grant:
    """What one call of ``LEASE_SCRIPT`` answered."""

    granted: int
    bucket_left: float  # the bucket's tokens after the grant
    retry_ms: int  # until the next token, when fewer were granted than wanted
    redis_now_ms: int

    @classmethod
    def from_reply(cls, reply: Sequence[object]) -> Grant:
        granted, left, retry_ms, now_ms = reply
        raw = left.decode() if isinstance(left, bytes) else str(left)
        return cls(int(str(granted)), float(raw), int(str(retry_ms)), int(str(now_ms)))


@dataclass
class Lease:
    """Tokens this process holds for one key, and the bucket as Redis reported it at the grant."""

    limit: Limit
    tokens: int
    bucket_left: float
    redis_now_s: float
    expires_at: float  # on the book's (monotonic) clock

    def take(self) -> RateDecision:
        self.tokens -= 1
        left = self.bucket_left + self.tokens
        return RateDecision(
            True, self.limit.capacity, math.floor(left), reset_epoch_s(self.limit, self.redis_now_s, left), 0, "lease"
        )


def refusal(limit: Limit, grant: Grant) -> RateDecision:
    return RateDecision(
        False,
        limit.capacity,
        math.floor(grant.bucket_left),
        reset_epoch_s(limit, grant.redis_now_ms / 1000, grant.bucket_left),
        max(1, math.ceil(grant.retry_ms / 1000)),
        "lease",
    )


class LeaseBook:
    """This process's leases, one per key, bounded in number (the least recently used is dropped, and its tokens
    with it: a dropped token only ever refuses a check that a bucket would have allowed)."""

    def __init__(
        self, policy: LeasePolicy, *, max_leases: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy
        self._leases: OrderedDict[str, Lease] = OrderedDict()
        self._max = max_leases
        self._clock = clock

    def __len__(self) -> int:
        return len(self._leases)

    def held(self, key: str) -> int:
        """Unused tokens of ``key``'s lease, live or expired."""
        lease = self._leases.get(key)
        return lease.tokens if lease is not None else 0

    def take(self, key: str) -> RateDecision | None:
        """One check decided from ``key``'s lease; ``None`` when there is no live token (ask the script)."""
        lease = self._leases.get(key)
        if lease is None or lease.tokens <= 0 or self._clock() >= lease.expires_at:
            return None
        self._leases.move_to_end(key)
        return lease.take()

    def settle(self, key: str) -> int:
        """Drops ``key``'s lease (used up or expired) and says how many tokens it left unused, for the next script
        call to give back."""
        lease = self._leases.pop(key, None)
        return lease.tokens if lease is not None else 0

    def grant(self, key: str, limit: Limit, grant: Grant, checks: int) -> list[RateDecision]:
        """The decisions of the ``checks`` checks that asked for ``grant``, in order (the first ``granted`` are
        allowed, the rest refused); tokens beyond them become ``key``'s lease."""
        lease = Lease(limit, grant.granted, grant.bucket_left, grant.redis_now_ms / 1000, 0.0)
        served = min(grant.granted, checks)
        decisions = [lease.take() for _ in range(served)]
        decisions.extend(refusal(limit, grant) for _ in range(checks - served))
        if lease.tokens > 0:
            lease.expires_at = self._clock() + self.policy.ttl_s
            self._leases.pop(key, None)
            self._leases[key] = lease
            if len(self._leases) > self._max:
                self._leases.popitem(last=False)
        return decisions
