"""The webhook delivery worker: polls the outbox, POSTs each alert event to its endpoint, signed, and records the
attempt. Several workers (processes or hosts) can run at once: claims never overlap.

Each call goes to the registered URL only: redirects are not followed (a 3xx is a failed attempt), the response
body is never read, and the whole call is bounded by ``WEBHOOK_TIMEOUT_S``. Any answer but 2xx, a timeout or a
connection error is retried after an exponential, jittered wait, until ``WEBHOOK_MAX_ATTEMPTS``; then the
delivery is ``failed``. Environment proxy variables are ignored, so a call goes straight to the endpoint.
The host is resolved once per attempt and the call connects to that address (Host header and TLS server name
kept); outside local runs a host that resolves to a loopback, private or link-local address is refused before the
call (``addresses.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import httpx

from infra import pipeline_metrics
from infra.postgres import TRANSIENT_ERRORS, build_postgres_pool
from infra.secret_box import SecretBox, SecretBoxError
from schemas.alerting import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER
from workers.webhooks.addresses import destination
from workers.webhooks.outbox import AttemptResult, Claimed, Outcome, claim_due, record_attempt
from workers.webhooks.settings import WebhookSettings
from workers.webhooks.signing import sign

log = logging.getLogger("workers.webhooks")

USER_AGENT = "governance-webhooks/1"
_ERROR_MAX = 500
_RETRYABLE_DB = TRANSIENT_ERRORS


def retry_delay(attempt: int, *, initial_s: float, max_s: float, rng: Callable[[], float] = random.random) -> float:
    """The wait after failed attempt ``attempt`` (1-based): exponential, capped, jittered to [half, all] of it."""
    ceiling: float = min(initial_s * 2.0 ** min(attempt - 1, 40), max_s)
    return ceiling / 2 + ceiling / 2 * rng()


@dataclass
class DeliveryStats:
    attempts: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0


class WebhookDeliveryWorker:
    """Run with ``await start()`` and ``await stop()``; ``python -m workers`` starts one beside the spool relay."""

    def __init__(
        self,
        settings: WebhookSettings,
        *,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self._box = SecretBox.from_settings(settings)  # refuses to start without WEBHOOK_SECRETS_KEY outside local runs
        self.stats = DeliveryStats()
        self._clock = clock
        self._rng = rng
        self._pool: asyncpg.Pool | None = None
        self._http: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        """Start polling. PostgreSQL being down does not fail the start: the worker keeps trying to connect."""
        if self._task is not None:
            return
        self._http = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(self.settings.webhook_timeout_s),
            headers={"User-Agent": USER_AGENT},
        )
        self._stopping.clear()
        await self._connect()
        self._task = asyncio.create_task(self._run(), name="webhook-delivery")
        log.info("webhook delivery worker started")

    async def _connect(self) -> bool:
        if self._pool is None:
            try:
                self._pool = await build_postgres_pool(self.settings.database_url, min_size=1, max_size=4)
            except (*_RETRYABLE_DB, asyncpg.PostgresError) as exc:
                log.warning("webhook delivery waits for PostgreSQL: %s", type(exc).__name__)
                return False
        return True

    async def stop(self) -> None:
        """Let the calls in flight finish (each is bounded by the timeout), then close."""
        self._stopping.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await self._pool.close()
            self._pool = None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            claimed = 0
            try:
                if await self._connect():
                    claimed = await self.deliver_due()
            except _RETRYABLE_DB as exc:
                log.warning("webhook outbox unavailable: %s", type(exc).__name__)
            except Exception:
                log.exception("webhook delivery round failed")
            if claimed < self.settings.webhook_batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=self.settings.webhook_poll_interval_s)

    async def deliver_due(self) -> int:
        """Claim the deliveries due now, send them concurrently, record every attempt. Returns how many."""
        assert self._pool is not None  # noqa: S101 - started
        claimed = await claim_due(
            self._pool, limit=self.settings.webhook_batch_size, lease_s=self.settings.webhook_lease_s
        )
        if claimed:
            await asyncio.gather(*(self._deliver(item) for item in claimed))
        return len(claimed)

    async def _deliver(self, claimed: Claimed) -> None:
        assert self._pool is not None  # noqa: S101
        result = await self._send(claimed)
        self.stats.attempts += 1
        outcome: Outcome
        retry_in: float | None = None
        if result.ok:
            outcome = "delivered"
            self.stats.delivered += 1
        elif claimed.attempt >= self.settings.webhook_max_attempts:
            outcome = "failed"
            self.stats.failed += 1
        else:
            outcome = "retry"
            self.stats.retried += 1
            retry_in = retry_delay(
                claimed.attempt,
                initial_s=self.settings.webhook_backoff_initial_s,
                max_s=self.settings.webhook_backoff_max_s,
                rng=self._rng,
            )
        await record_attempt(self._pool, claimed, result, outcome, retry_in_s=retry_in)
        pipeline_metrics.webhook_delivered(outcome)
        level = logging.INFO if outcome != "failed" else logging.WARNING
        log.log(
            level,
            "webhook delivery %s attempt %d: %s (%s)",
            claimed.id,
            claimed.attempt,
            outcome,
            result.status_code if result.error is None else result.error,
        )

    async def _send(self, claimed: Claimed) -> AttemptResult:
        assert self._http is not None  # noqa: S101
        started_at = datetime.now(UTC)
        try:
            secret = self._box.open(claimed.secret)
        except SecretBoxError as exc:
            return AttemptResult(started_at, 0.0, None, str(exc))
        body = claimed.event.model_dump_json().encode()
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: f"alert.{claimed.transition}",
            DELIVERY_HEADER: str(claimed.id),
            SIGNATURE_HEADER: sign(secret, int(self._clock()), body),
        }
        began = time.perf_counter()
        status: int | None = None
        error: str | None = None
        # Resolved once; the call goes to the address that was checked (addresses.py: no DNS rebinding).
        target, refused = await destination(claimed.url, allow_private=self.settings.allows_private_addresses)
        if target is None:
            return AttemptResult(started_at, (time.perf_counter() - began) * 1000, None, (refused or "")[:_ERROR_MAX])
        try:
            async with (
                asyncio.timeout(self.settings.webhook_timeout_s),
                self._http.stream(
                    "POST",
                    target.url,
                    content=body,
                    headers={**headers, **target.headers},
                    extensions=target.extensions,
                ) as response,
            ):
                status = response.status_code
        except TimeoutError:
            error = f"timed out after {self.settings.webhook_timeout_s:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:_ERROR_MAX] or type(exc).__name__
        if status is not None and 300 <= status < 400:
            error = f"HTTP {status}: redirects are not followed"
        elif status is not None and not 200 <= status < 300:
            error = f"HTTP {status}"
        return AttemptResult(started_at, (time.perf_counter() - began) * 1000, status, error)
