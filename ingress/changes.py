"""Cache invalidation across ingress processes through PostgreSQL LISTEN/NOTIFY.

Triggers on api_keys, admin_keys, policies and customers ``pg_notify('governance_changes', …)`` on every write
(migration 0001). Each process keeps one listening connection and calls its subscribers with the payload, so a
revoked key or a changed policy is dropped from every process's cache within milliseconds. If the connection is
lost, caches keep serving (degraded) and are flushed whole when it comes back, since notifications may have
been missed meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

log = logging.getLogger("ingress.changes")

CHANNEL = "governance_changes"
Subscriber = Callable[[dict[str, Any] | None], None]  # None means "flush everything"


class ChangeListener:
    def __init__(self, dsn: str, *, retry_s: float = 1.0) -> None:
        self._dsn = dsn
        self._retry = retry_s
        self._subscribers: list[Subscriber] = []
        self._task: asyncio.Task[None] | None = None
        self.connected = False

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def _dispatch(self, payload: dict[str, Any] | None) -> None:
        for subscriber in self._subscribers:
            try:
                subscriber(payload)
            except Exception:
                log.exception("change subscriber failed")

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, raw: str) -> None:
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        self._dispatch(payload)

    async def _run(self) -> None:
        first = True
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=5)
                await conn.add_listener(CHANNEL, self._on_notify)
                self.connected = True
                if not first:
                    self._dispatch(None)
                first = False
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, event=lost: event.set())
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), timeout=5)
                    except TimeoutError:
                        await conn.execute("SELECT 1", timeout=3)  # notices a silently dead connection
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: degrade and retry
                log.warning("change listener disconnected: %s", type(exc).__name__)
            finally:
                self.connected = False
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            first = False
            await asyncio.sleep(self._retry)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="change-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
