"""The bcrypt lane: where every bcrypt of a verification cache miss runs, with bounded work.

bcrypt is the only expensive step of authentication (hundreds of milliseconds at cost 12), and a forger decides
how often it runs: every try with a real ``key_id`` and a new wrong secret needs one bcrypt to be refuted. The
lane bounds that work three ways:

- **its own executor** (``workers`` threads, default 2), so bcrypt never queues behind, or in front of, the
  default thread pool that spool writes use;
- **per key id**: one bcrypt at a time and at most ``per_key_waiting`` more waiting; a further try for that key
  id is answered at once (503, retry) instead of queueing;
- **suspect key ids** (recent failed tries, decided by the verifier): their bcrypts run on at most
  ``workers - 1`` threads, so a key id under attack never holds every thread, and together take at most
  ``suspect_rate_per_s`` bcrypts a second (a token bucket), whatever the number of key ids attacked.

Nothing is refused for good: a try that cannot be admitted within ``max_wait_s`` is answered 503 with a retry
hint, and the genuine key of a suspect key id is still checked (it waits its turn). The pure format check
(``ingress.auth.keys.parse_key``) and the verifier's caches run before the lane, so a cached key never reaches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from ingress.auth.keys import verify_key_hash


class VerificationBusy(Exception):
    """The try cannot be checked now (its key id, or the lane, is at its bound): answer 503 and a retry hint."""


class _TokenBucket:
    def __init__(self, rate_per_s: float, burst: float, monotonic: Callable[[], float]) -> None:
        self._rate = rate_per_s
        self._burst = burst
        self._tokens = burst
        self._mono = monotonic
        self._stamp = monotonic()

    def reserve(self) -> float:
        """Take a token, borrowing it when none is left; return how long to wait until it is really there."""
        now = self._mono()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate) - 1.0
        self._stamp = now
        return max(0.0, -self._tokens / self._rate)

    def give_back(self) -> None:
        self._tokens += 1.0


class BcryptLane:
    def __init__(
        self,
        *,
        workers: int = 2,
        per_key_waiting: int = 2,
        suspect_rate_per_s: float = 2.0,
        suspect_burst: float = 2.0,
        max_pending: int = 64,
        max_wait_s: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if workers < 1 or suspect_rate_per_s <= 0:
            raise ValueError("a bcrypt lane needs at least one worker and a positive suspect rate")
        self.workers = workers
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bcrypt")
        self._slots = asyncio.Semaphore(workers)
        self._suspect_slots = asyncio.Semaphore(max(1, workers - 1))
        self._suspect_tokens = _TokenBucket(suspect_rate_per_s, suspect_burst, monotonic)
        self._per_key_waiting = per_key_waiting
        self._max_pending = max_pending
        self._max_wait = max_wait_s
        self._load: dict[str, int] = {}  # key id -> tries admitted and not finished (running + waiting)
        self._locks: dict[str, asyncio.Lock] = {}
        self.pending = 0
        self.calls = 0  # bcrypt runs started
        self.suspect_calls = 0
        self.refused = 0  # tries answered "busy" without bcrypt
        self.peak_running = 0  # most bcrypts at work at once
        self.thread_names: set[str] = set()  # the threads bcrypt ran on (the lane's own)
        self._running = 0
        self._count_lock = threading.Lock()

    def admit_or_refuse(self, key_id: str) -> None:
        """Raise ``VerificationBusy`` now when a try for ``key_id`` would be refused (before any read for it)."""
        if self._load.get(key_id, 0) > self._per_key_waiting or self.pending >= self._max_pending:
            self.refused += 1
            raise VerificationBusy

    async def verify(self, key_id: str, key: str, key_hash: str, *, suspect: bool) -> bool:
        """Run bcrypt for ``key`` against ``key_hash`` when the bounds allow; raise ``VerificationBusy`` when not."""
        self.admit_or_refuse(key_id)
        load = self._load.get(key_id, 0)
        self._load[key_id] = load + 1
        self.pending += 1
        releases: list[Callable[[], None]] = []
        handed_over = False
        try:
            try:
                async with asyncio.timeout(self._max_wait):
                    await self._admit(key_id, suspect, releases)
            except TimeoutError:
                self.refused += 1
                raise VerificationBusy from None
            work: Future[bool] = self._executor.submit(self._run, key, key_hash)
            self.calls += 1
            self.suspect_calls += suspect
            # The slots are given back when the thread is done, not when this coroutine is: a cancelled request
            # does not stop a running bcrypt, and the bounds are about threads at work.
            loop = asyncio.get_running_loop()

            def release_on_loop(_work: Future[bool]) -> None:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (shutdown): nothing to release
                    loop.call_soon_threadsafe(self._release, key_id, releases)

            work.add_done_callback(release_on_loop)
            handed_over = True
            return await asyncio.wrap_future(work)
        finally:
            if not handed_over:
                self._release(key_id, releases)

    async def _admit(self, key_id: str, suspect: bool, releases: list[Callable[[], None]]) -> None:
        lock = self._locks.setdefault(key_id, asyncio.Lock())
        await lock.acquire()
        releases.append(lock.release)
        if suspect:
            await self._suspect_slots.acquire()
            releases.append(self._suspect_slots.release)
            delay = self._suspect_tokens.reserve()
            if delay > 0:
                try:
                    await asyncio.sleep(delay)
                except asyncio.CancelledError:
                    self._suspect_tokens.give_back()  # not used: the next suspect must not wait for it
                    raise
        await self._slots.acquire()
        releases.append(self._slots.release)

    def _run(self, key: str, key_hash: str) -> bool:
        with self._count_lock:
            self._running += 1
            self.peak_running = max(self.peak_running, self._running)
            self.thread_names.add(threading.current_thread().name)
        try:
            return verify_key_hash(key, key_hash)
        finally:
            with self._count_lock:
                self._running -= 1

    def _release(self, key_id: str, releases: list[Callable[[], None]]) -> None:
        for release in reversed(releases):
            release()
        releases.clear()
        self.pending -= 1
        left = self._load.get(key_id, 1) - 1
        if left <= 0:
            self._load.pop(key_id, None)
            lock = self._locks.get(key_id)
            if lock is not None and not lock.locked():
                del self._locks[key_id]
        else:
            self._load[key_id] = left

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._executor.shutdown(wait=False, cancel_futures=True)
