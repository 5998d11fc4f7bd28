"""The authentication service one ingress process holds: a verifier per key kind and last-use bookkeeping."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from infra.postgres import STORE_ERRORS
from ingress.auth.lane import BcryptLane
from ingress.auth.store import postgres_record_loader, postgres_tag_writer, record_key_use
from ingress.auth.verifier import KeyVerifier

log = logging.getLogger("ingress.auth")


class AuthService:
    def __init__(
        self,
        get_pool: Callable[[], Awaitable[asyncpg.Pool]],
        *,
        ttl_s: float = 300.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        loader = postgres_record_loader(get_pool)
        # One lane for both kinds: the bound on bcrypt work is per process, not per kind of key.
        self.lane = BcryptLane()
        tags = postgres_tag_writer(get_pool)
        self.customers = KeyVerifier(loader, write_tag=tags, lane=self.lane, ttl_s=ttl_s, clock=clock)
        self.admins = KeyVerifier(loader, write_tag=tags, lane=self.lane, ttl_s=ttl_s, clock=clock)
        self._get_pool = get_pool
        self._task: asyncio.Task[None] | None = None

    def on_change(self, payload: dict[str, Any] | None) -> None:
        if payload is None:
            self.customers.invalidate()
            self.admins.invalidate()
            return
        table = payload.get("table")
        # A key's record is read again in the background; most announcements are the periodic last_used_at update.
        if table == "api_keys" and payload.get("key_id"):
            self.customers.refresh(payload["key_id"])
        elif table == "admin_keys" and payload.get("key_id"):
            self.admins.refresh(payload["key_id"])
        elif table == "customers":
            self.customers.invalidate()  # a deleted customer's keys must stop at once

    async def flush_usage(self) -> None:
        for kind, verifier in (("live", self.customers), ("admin", self.admins)):
            if verifier.used:
                used, verifier.used = verifier.used, set()
                try:
                    await record_key_use(await self._get_pool(), kind, used)  # type: ignore[arg-type]
                except STORE_ERRORS:
                    verifier.used |= used

    async def _usage_loop(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await self.flush_usage()

    def start(self, usage_interval_s: float = 10.0) -> None:
        self._task = asyncio.create_task(self._usage_loop(usage_interval_s), name="key-usage")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.flush_usage()
        self.lane.close()
