"""Key verification with an in-process cache, so the steady state never runs bcrypt, and bounded work for forgers.

On a request: the key is parsed (format and checksum; no storage touched), then

1. the verified-key cache is consulted: ``key_id`` → (HMAC-SHA256 of the presented key under a per-process
   secret, the key's record, expiry). A hit compares HMACs in constant time; no bcrypt, no database.
2. A key this process already accepted (equal HMACs) whose record must be read again (invalidated by a change,
   or ``ttl_s`` old) is read by ``key_id`` and accepted without bcrypt while the stored hash is unchanged. No
   one else's failures are consulted on this path: a flood of wrong secrets cannot lock the genuine key out.
3. Any other miss: a secret that failed lately (negative cache by HMAC) and a ``key_id`` that does not exist
   (negative cache by ``key_id``) are refused with no database read and no bcrypt. Otherwise the record is read
   (once: the record of a key id under attack is kept for ``negative_ttl_s``); a secret that fails the key's tag
   (``ingress.auth.keys.key_tag``, stored at the key's first accepted use) is refused without bcrypt; otherwise bcrypt
   runs in the bcrypt lane
   (``lane.py``): its own threads, one bcrypt at a time per key id, and a key id with ``max_failures`` failed
   tries in ``failure_window_s`` (or any key id, while the process saw ``max_total_failures`` in that window) is
   a *suspect*: its bcrypts share a small rate. Concurrent misses for the same presented key share one bcrypt.

Every table a forger can fill is bounded (least recently used entries go first), so memory does not grow with
the number of forged keys. Failures carry the ``key_id`` only when it names a real key, so signals about forged
key ids aggregate into one group.

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
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from ingress.auth.bounded import BoundedTtl
from ingress.auth.keys import KeyKind, MalformedKey, key_tag, key_verifier, parse_key
from ingress.auth.lane import BcryptLane
from ingress.auth.records import (
    AuthFailure,
    AuthUnavailable,
    FailureReason,
    KeyRecord,
    Principal,
    RecordLoader,
    TagWriter,
    failure,
)

__all__ = [
    "AuthFailure",
    "AuthUnavailable",
    "BoundedTtl",
    "FailureReason",
    "KeyRecord",
    "KeyVerifier",
    "Principal",
    "RecordLoader",
    "TagWriter",
    "failure",
]


@dataclass
class _Entry:
    kind: KeyKind
    digest: bytes  # HMAC of the key bcrypt accepted
    key_hash: str  # the stored hash it was accepted against
    record: KeyRecord | None  # None once invalidated: read again (no bcrypt) before the next use
    expires: float  # when the record must be read again
    generation: int = 0  # bumped by invalidate, so that a background read that raced it is not applied
    tag: str | None = None  # the accepted key's tag, kept on records read again before it is stored


class KeyVerifier:
    def __init__(
        self,
        load_record: RecordLoader,
        *,
        write_tag: TagWriter | None = None,
        lane: BcryptLane | None = None,
        ttl_s: float = 300.0,
        negative_ttl_s: float = 60.0,
        unknown_key_ttl_s: float = 300.0,
        max_failures: int = 5,
        max_total_failures: int = 50,
        failure_window_s: float = 60.0,
        max_tracked: int = 10_000,
        max_unknown_keys: int = 50_000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load_record
        self._write_tag = write_tag
        self._tag_writes: set[asyncio.Task[None]] = set()
        self.lane = lane if lane is not None else BcryptLane(monotonic=monotonic)
        self._ttl = ttl_s
        self._max_failures = max_failures
        self._max_total_failures = max_total_failures
        self._failure_window = failure_window_s
        self._clock = clock
        self._mono = monotonic
        self._pepper = secrets.token_bytes(32)
        self._verified: dict[str, _Entry] = {}  # only keys bcrypt accepted: as many as real keys in use
        # Bounded, whatever a forger sends:
        self._negative: BoundedTtl[bytes, bool] = BoundedTtl(max_tracked, negative_ttl_s, monotonic)
        self._unknown: BoundedTtl[str, bool] = BoundedTtl(max_unknown_keys, unknown_key_ttl_s, monotonic)
        self._attacked: BoundedTtl[str, KeyRecord] = BoundedTtl(max_tracked, negative_ttl_s, monotonic)
        self._failures: BoundedTtl[str, int] = BoundedTtl(max_tracked, failure_window_s, monotonic)
        self._total_failures = (0, monotonic())
        self._inflight: dict[bytes, asyncio.Future[KeyRecord]] = {}
        self._reading: dict[str, asyncio.Task[KeyRecord | None]] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        self._refresh_again: set[str] = set()
        self.bcrypt_calls = 0
        self.tag_refusals = 0  # wrong secrets refused by the key's tag (or verifier), without bcrypt
        self.verifier_accepts = 0  # first uses accepted by the stored SHA-256 verifier, without bcrypt
        self.cache_hits = 0
        self.cache_misses = 0
        self.record_loads = 0  # reads of a key's record by key_id
        self.record_reloads = 0  # misses answered by reading the record again, without bcrypt
        self.used: set[str] = set()

    def _digest(self, key: str) -> bytes:
        return hmac.new(self._pepper, key.encode(), hashlib.sha256).digest()

    @property
    def tracked(self) -> dict[str, int]:
        """How many entries each bounded table holds (what a flood of forged keys can grow)."""
        return {
            "negative_secrets": len(self._negative),
            "unknown_key_ids": len(self._unknown),
            "attacked_records": len(self._attacked),
            "failure_counts": len(self._failures),
            "inflight": len(self._inflight) + len(self._reading),
        }

    def invalidate(self, key_id: str | None = None) -> None:
        """Forget one key's cached record, or every key's: each is read again before its key is next accepted.
        What bcrypt proved (the HMAC of the accepted key) is kept."""
        entries = self._verified.values() if key_id is None else filter(None, [self._verified.get(key_id)])
        for entry in entries:
            entry.record = None
            entry.generation += 1
        if key_id is None:
            self._negative.clear()
            self._unknown.clear()
            self._attacked.clear()
        else:
            self._unknown.pop(key_id)
            self._attacked.pop(key_id)

    def refresh(self, key_id: str) -> None:
        """A change to this key was announced: read its record again in the background (without a running event
        loop, drop it instead). The cached record serves until the new one is read."""
        self._unknown.pop(key_id)  # a key created under this id, or changed: read it at its next use
        self._attacked.pop(key_id)
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
                record = await self._read(entry.kind, key_id)
            except AuthUnavailable:
                record = None  # cannot tell what changed: read it before the next use
            if self._verified.get(key_id) is not entry or entry.generation != generation:
                return  # invalidated or replaced meanwhile: that is newer than what was read here
            if record is None or record.key_hash != entry.key_hash:
                self.invalidate(key_id)
                return
            self.record_reloads += 1
            entry.record = record if record.key_tag is not None else replace(record, key_tag=entry.tag)
            entry.expires = self._mono() + self._ttl
            again = key_id in self._refresh_again

    async def _read(self, kind: KeyKind, key_id: str) -> KeyRecord | None:
        self.record_loads += 1
        return await self._load(kind, key_id)

    async def _read_once(self, kind: KeyKind, key_id: str) -> KeyRecord | None:
        """Read a key's record; concurrent misses for one key id (different secrets) share the read."""
        pending = self._reading.get(key_id)
        if pending is not None:
            return await asyncio.shield(pending)
        task = asyncio.get_running_loop().create_task(self._read(kind, key_id))
        self._reading[key_id] = task
        task.add_done_callback(lambda _t: self._reading.pop(key_id, None))
        return await asyncio.shield(task)

    def _check_state(self, record: KeyRecord) -> None:
        now = self._clock()
        if record.revoked_at is not None and record.revoked_at <= now:
            raise failure("revoked", record)
        if not record.active or record.customer_deleted:
            raise failure("revoked", record)
        if record.expires_at is not None and record.expires_at <= now:
            raise failure("expired", record)

    def _note_failure(self, record: KeyRecord, digest: bytes, *, cost_bcrypt: bool = True) -> None:
        self._negative.put(digest, True)
        self._attacked.put(record.key_id, record)  # the next forged try for it needs no database read
        # Counted until a whole window passes without a failure: a key id under a steady attack stays a suspect.
        self._failures.put(record.key_id, (self._failures.get(record.key_id) or 0) + 1)
        if not cost_bcrypt:
            return  # refused by the tag: nothing spent, so no reason to slow other keys' first uses
        count, since = self._total_failures
        now = self._mono()
        self._total_failures = (1, now) if now - since > self._failure_window else (count + 1, since)

    def _save_tag(self, kind: KeyKind, record: KeyRecord) -> None:
        """Store the tag and verifier of a key bcrypt accepted, in the background (best effort)."""
        if self._write_tag is None or record.key_tag is None or record.key_verifier is None:
            return
        task = asyncio.get_running_loop().create_task(
            self._write_tag(kind, record.key_id, record.key_hash, record.key_tag, record.key_verifier)
        )
        self._tag_writes.add(task)
        task.add_done_callback(self._tag_writes.discard)

    def is_suspect(self, key_id: str) -> bool:
        """Whether a miss for this key id goes to the lane's rate-limited share: the key id failed lately, or the
        whole process is seeing a flood of wrong secrets."""
        if (self._failures.get(key_id) or 0) >= self._max_failures:
            return True
        count, since = self._total_failures
        return count >= self._max_total_failures and self._mono() - since <= self._failure_window

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
        entry = self._verified.get(parsed.key_id)
        accepted_before = entry is not None and hmac.compare_digest(entry.digest, digest)
        if entry is not None and accepted_before and entry.record is not None and entry.expires > self._mono():
            self.cache_hits += 1
            self._check_state(entry.record)
            self.used.add(parsed.key_id)
            return self._principal(parsed.kind, entry.record)
        self.cache_misses += 1
        if not accepted_before:
            if self._unknown.get(parsed.key_id):
                raise failure("unknown")  # a key id that does not exist: no database read again
            if self._negative.get(digest):
                raise failure("unknown", self._attacked.get(parsed.key_id))
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
            known = self._verified.get(key_id)
            accepted_before = known is not None and hmac.compare_digest(known.digest, digest)
            record = await self._record_for(kind, key_id, known, accepted_before=accepted_before)
            if known is not None and accepted_before and known.key_hash == record.key_hash:
                self.record_reloads += 1  # this key was accepted against this very hash: no bcrypt
                if record.key_tag is None or record.key_verifier is None:  # not stored yet: store them now
                    record = replace(
                        record, key_tag=record.key_tag or key_tag(key), key_verifier=key_verifier(key, record.key_hash)
                    )
                    self._save_tag(kind, record)
            else:
                record = await self._prove(kind, key, digest, record)
            self._verified[key_id] = _Entry(
                kind, digest, record.key_hash, record, self._mono() + self._ttl, tag=record.key_tag
            )
            future.set_result(record)
            return record
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            self._inflight.pop(digest, None)

    async def _record_for(
        self, kind: KeyKind, key_id: str, known: _Entry | None, *, accepted_before: bool
    ) -> KeyRecord:
        """The key's record for a miss: for a secret not accepted before, a record read lately serves (the key id's
        record under attack, or the cached one); otherwise one read, shared by concurrent misses."""
        record = None
        if not accepted_before:
            record = self._attacked.get(key_id)
            if record is None and known is not None and known.record is not None and known.expires > self._mono():
                record = known.record
        if record is None:
            if not accepted_before:
                self.lane.admit_or_refuse(key_id)  # no read for a try the lane would refuse anyway
            record = await self._read_once(kind, key_id)
        if record is None:
            self._unknown.put(key_id, True)
            raise failure("unknown")
        return record

    async def _prove(self, kind: KeyKind, key: str, digest: bytes, record: KeyRecord) -> KeyRecord:
        """Check a secret not accepted before: the key's tag first (no bcrypt), then bcrypt in the lane. Returns the
        record, with its tag when this first accepted use computed it (and stores it)."""
        tag = key_tag(key)
        if record.key_tag is not None and not hmac.compare_digest(tag, record.key_tag):
            self.tag_refusals += 1  # a wrong secret for a tagged key: no bcrypt at all
            self._note_failure(record, digest, cost_bcrypt=False)
            raise failure("unknown", record)
        if record.key_verifier is not None:
            # bcrypt accepted this key once, somewhere: its SHA-256 decides, in constant time, without bcrypt
            if not hmac.compare_digest(key_verifier(key, record.key_hash), record.key_verifier):
                self.tag_refusals += 1
                self._note_failure(record, digest, cost_bcrypt=False)
                raise failure("unknown", record)
            self.verifier_accepts += 1
            self._attacked.pop(record.key_id)
            if record.key_tag is None:
                record = replace(record, key_tag=tag)
                self._save_tag(kind, record)
            return record
        ok = await self.lane.verify(record.key_id, key, record.key_hash, suspect=self.is_suspect(record.key_id))
        self.bcrypt_calls += 1
        if not ok:
            self._note_failure(record, digest)
            raise failure("unknown", record)
        self._attacked.pop(record.key_id)
        record = replace(record, key_tag=record.key_tag or tag, key_verifier=key_verifier(key, record.key_hash))
        self._save_tag(kind, record)
        return record

    @staticmethod
    def _principal(kind: KeyKind, record: KeyRecord) -> Principal:
        return Principal(kind, record.key_id, record.id, record.name, record.customer_id, record.tier)
