"""Key verification with an in-process cache, so the steady state never runs bcrypt.

On a request: the key is parsed (format and checksum; no storage touched), then

1. the verified-key cache is consulted: ``key_id`` → (HMAC-SHA256 of the presented key under a per-process
   secret, the key's record, expiry). A hit compares HMACs in constant time; no bcrypt, no database.
2. On a miss, the key's record is read by ``key_id`` (one indexed read) and bcrypt runs off the event loop.
   Concurrent misses for the same presented key share one bcrypt call.
3. Failures are remembered (negative cache by HMAC) and counted per ``key_id``: past ``max_failures`` in a window
   further attempts for that key id are refused without bcrypt, so a flood of wrong secrets cannot burn the CPU.

Revocation and expiry are checked against the cached record on every request with the injected clock. The record
is read again when PostgreSQL announces a change to that key (LISTEN/NOTIFY, see ``changes.py``): ``refresh``
reads it in the background, the cached copy serving meanwhile (a change applies within one indexed read);
``invalidate`` drops it, so that the next request reads it first. After ``ttl_s`` it is read again too.

What bcrypt proved is kept: when the record read again carries the same hash and the same key is presented (equal
HMACs), bcrypt is not run again. Announcements are frequent (the periodic ``last_used_at`` update is a change to
every used key): a drop and a bcrypt on each put a bcrypt of latency on that key's requests every few seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from ingress.keys import KeyKind, MalformedKey, parse_key, verify_key_hash

FailureReason = Literal["missing", "malformed", "unknown", "revoked", "expired"]


@dataclass(frozen=True)
class KeyRecord:
    """What the verifier needs of a stored key; ``customer_id`` and ``tier`` are None for admin keys."""

    id: UUID
    key_id: str
    key_hash: str
    name: str
    active: bool
    revoked_at: datetime | None
    expires_at: datetime | None
    customer_id: UUID | None = None
    tier: str | None = None
    customer_deleted: bool = False


@dataclass(frozen=True)
class Principal:
    kind: KeyKind
    key_id: str
    record_id: UUID
    name: str
    customer_id: UUID | None
    tier: str | None


class AuthFailure(Exception):
    def __init__(self, reason: FailureReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class AuthUnavailable(Exception):
    """The key is not cached and its record cannot be read (PostgreSQL down): answer 503, never 200."""


RecordLoader = Callable[[KeyKind, str], Awaitable[KeyRecord | None]]

_MESSAGES: dict[FailureReason, str] = {
    "missing": "missing API key: send 'Authorization: Bearer <key>'",
    "malformed": "malformed API key: check that the whole key was copied (sk_live_... or sk_admin_...)",
    "unknown": "invalid API key",
    "revoked": "this API key has been revoked",
    "expired": "this API key has expired",
}


def failure(reason: FailureReason) -> AuthFailure:
    return AuthFailure(reason, _MESSAGES[reason])


@dataclass
class _Entry:
    kind: KeyKind
    digest: bytes  # HMAC of the key bcrypt accepted
    key_hash: str  # the stored hash it was accepted against
    record: KeyRecord | None  # None once invalidated: read again (no bcrypt) before the next use
    expires: float  # when the record must be read again
    generation: int = 0  # bumped by invalidate, so that a background read that raced it is not applied


class KeyVerifier:
    def __init__(
        self,
        load_record: RecordLoader,
        *,
        ttl_s: float = 300.0,
        negative_ttl_s: float = 60.0,
        max_failures: int = 20,
        failure_window_s: float = 60.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load_record
        self._ttl = ttl_s
        self._negative_ttl = negative_ttl_s
        self._max_failures = max_failures
        self._failure_window = failure_window_s
        self._clock = clock
        self._mono = monotonic
        self._pepper = secrets.token_bytes(32)
        self._verified: dict[str, _Entry] = {}
        self._negative: dict[bytes, float] = {}
        self._failures: dict[str, tuple[int, float]] = {}
        self._inflight: dict[bytes, asyncio.Future[KeyRecord]] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        self._refresh_again: set[str] = set()
        self.bcrypt_calls = 0
        self.cache_hits = 0
        self.cache_misses = 0
        self.record_reloads = 0  # misses answered by reading the record again, without bcrypt
        self.used: set[str] = set()

    def _digest(self, key: str) -> bytes:
        return hmac.new(self._pepper, key.encode(), hashlib.sha256).digest()

    def invalidate(self, key_id: str | None = None) -> None:
        """Forget one key's cached record, or every key's: each is read again before its key is next accepted."""
        entries = self._verified.values() if key_id is None else filter(None, [self._verified.get(key_id)])
        for entry in entries:
            entry.record = None
            entry.generation += 1
        if key_id is None:
            self._negative.clear()

    def refresh(self, key_id: str) -> None:
        """A change to this key was announced: read its record again in the background (without a running event
        loop, drop it instead). The cached record serves until the new one is read."""
        entry = self._verified.get(key_id)
        if entry is None or entry.record is None:
            return
        if key_id in self._refreshing:
            self._refresh_again.add(key_id)  # the read under way may predate this change
            return
        try:
            task = asyncio.get_running_loop().create_task(self._refresh(key_id, entry))
        except RuntimeError:
            self.invalidate(key_id)
            return
        self._refreshing[key_id] = task
        task.add_done_callback(lambda _t: self._refreshing.pop(key_id, None))

    async def _refresh(self, key_id: str, entry: _Entry) -> None:
        again = True
        while again:
            self._refresh_again.discard(key_id)
            generation = entry.generation
            try:
                record = await self._load(entry.kind, key_id)
            except AuthUnavailable:
                record = None  # cannot tell what changed: read it before the next use
            if self._verified.get(key_id) is not entry or entry.generation != generation:
                return  # invalidated or replaced meanwhile: that is newer than what was read here
            if record is None or record.key_hash != entry.key_hash:
                self.invalidate(key_id)
                return
            self.record_reloads += 1
            entry.record = record
            entry.expires = self._mono() + self._ttl
            again = key_id in self._refresh_again

    def _check_state(self, record: KeyRecord) -> None:
        now = self._clock()
        if record.revoked_at is not None and record.revoked_at <= now:
            raise failure("revoked")
        if not record.active or record.customer_deleted:
            raise failure("revoked")
        if record.expires_at is not None and record.expires_at <= now:
            raise failure("expired")

    def _note_failure(self, key_id: str, digest: bytes) -> None:
        now = self._mono()
        self._negative[digest] = now + self._negative_ttl
        count, since = self._failures.get(key_id, (0, now))
        if now - since > self._failure_window:
            count, since = 0, now
        self._failures[key_id] = (count + 1, since)
        if len(self._negative) > 100_000:  # bounded memory under a flood
            self._negative.clear()

    def _too_many_failures(self, key_id: str) -> bool:
        count, since = self._failures.get(key_id, (0, 0.0))
        return count >= self._max_failures and self._mono() - since <= self._failure_window

    async def verify(self, authorization: str | None, expected: KeyKind) -> Principal:
        if not authorization:
            raise failure("missing")
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise failure("missing" if not key else "malformed")
        try:
            parsed = parse_key(key)
        except MalformedKey:
            raise failure("malformed") from None
        if parsed.kind != expected:
            raise AuthFailure("unknown", f"this endpoint needs a {'customer' if expected == 'live' else 'admin'} key")
        digest = self._digest(key)
        now = self._mono()
        entry = self._verified.get(parsed.key_id)
        if (
            entry is not None
            and entry.record is not None
            and entry.expires > now
            and hmac.compare_digest(entry.digest, digest)
        ):
            self.cache_hits += 1
            self._check_state(entry.record)
            self.used.add(parsed.key_id)
            return self._principal(parsed.kind, entry.record)
        self.cache_misses += 1
        blocked_until = self._negative.get(digest)
        if (blocked_until is not None and blocked_until > now) or self._too_many_failures(parsed.key_id):
            raise failure("unknown")
        record = await self._verify_slow(parsed.kind, parsed.key_id, key, digest)
        self._check_state(record)
        self.used.add(parsed.key_id)
        return self._principal(parsed.kind, record)

    async def _verify_slow(self, kind: KeyKind, key_id: str, key: str, digest: bytes) -> KeyRecord:
        pending = self._inflight.get(digest)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[KeyRecord] = asyncio.get_running_loop().create_future()
        self._inflight[digest] = future
        try:
            record = await self._load(kind, key_id)
            if record is None:
                self._note_failure(key_id, digest)
                raise failure("unknown")
            known = self._verified.get(key_id)
            if known is not None and known.key_hash == record.key_hash and hmac.compare_digest(known.digest, digest):
                self.record_reloads += 1  # this key was accepted against this very hash: no bcrypt
            else:
                self.bcrypt_calls += 1
                ok = await asyncio.to_thread(verify_key_hash, key, record.key_hash)
                if not ok:
                    self._note_failure(key_id, digest)
                    raise failure("unknown")
            self._verified[key_id] = _Entry(kind, digest, record.key_hash, record, self._mono() + self._ttl)
            future.set_result(record)
            return record
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            self._inflight.pop(digest, None)

    @staticmethod
    def _principal(kind: KeyKind, record: KeyRecord) -> Principal:
        return Principal(kind, record.key_id, record.id, record.name, record.customer_id, record.tier)
