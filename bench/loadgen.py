"""A constant-rate (open-loop) HTTP load client, for latency at a given rate (wrk2 is not on this machine).

Requests leave at their scheduled instants whatever the server does; a request's latency runs from its scheduled
instant to the last byte of its answer, so time spent waiting for a free connection counts (no coordinated
omission). HTTP/1.1 keep-alive on raw asyncio protocols, so that the client costs little CPU beside the server.

Run as ``python -m bench.loadgen`` with a JSON spec on stdin; prints one JSON result. The harness uses
:func:`constant_rate`, which runs it as a separate process pinned to its own CPU.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from bench.environment import answer_pinned_json, run_pinned_json
from bench.timing import percentile

_WARM_CONNECTIONS = 16


@dataclass(frozen=True)
class LoadSpec:
    url: str
    path: str
    body: str
    keys: list[str]
    rate: float
    seconds: float
    max_connections: int = 256
    # More bodies beside ``body``: each request takes one of them with probability ``other_share`` (e.g. the
    # personal-data variant of the guide's request).
    other_bodies: tuple[str, ...] = ()
    other_share: float = 0.0
    # Keys chosen at random (seeded, so two runs send the same sequence) instead of in turn.
    random_keys: bool = False
    seed: int = 15
    # A refused connection (the server restarting) is tried again every 20 ms instead of counting as an error:
    # the request waits, its latency running from its scheduled instant, until ``answer_timeout_s``.
    retry_refused: bool = False
    answer_timeout_s: float = 30.0
    timeline: bool = False  # return every request's (scheduled offset s, latency ms, status)
    start_at_epoch: float = 0.0  # when set, the first request leaves at this wall-clock instant


class _Connection(asyncio.Protocol):
    def __init__(self, client: _OpenLoopClient) -> None:
        self._client = client
        self._buffer = bytearray()
        self._expect: int | None = None
        self._status = 0
        self.transport: asyncio.Transport | None = None
        self.intended = 0.0
        self.payload = b""
        self.busy = False
        self.answering = False  # some of the answer has arrived

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a TCP connection (uvloop's is no subclass)

    def send(self, intended: float, payload: bytes) -> None:
        assert self.transport is not None  # noqa: S101
        self.intended = intended
        self.payload = payload
        self.busy = True
        self.answering = False
        self.transport.write(payload)

    def data_received(self, data: bytes) -> None:
        self.answering = True
        self._buffer += data
        while True:
            if self._expect is None:
                end = self._buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self._buffer[:end]).lower()
                self._status = int(head[9:12])
                start = head.find(b"content-length:")
                length = 0
                if start >= 0:  # every answer of ours has one (no chunked bodies)
                    stop = head.find(b"\r\n", start)
                    length = int(head[start + 15 : stop if stop >= 0 else None])
                self._expect = end + 4 + length
            if len(self._buffer) < self._expect:
                return
            del self._buffer[: self._expect]
            self._expect = None
            self.busy = False
            self._client.answered(self, self._status)

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002 - lost is lost
        self._client.lost(self)


class _OpenLoopClient:
    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        parts = urlsplit(spec.url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.payloads = [
            [self._payload(key, body) for key in spec.keys or [""]] for body in (spec.body, *spec.other_bodies)
        ]
        self._rng = random.Random(spec.seed)  # noqa: S311 - a reproducible load, not a secret
        self._turn = 0
        self.samples: list[tuple[float, float, int]] = []
        self.started = 0.0
        self.idle: list[_Connection] = []
        self.waiting: deque[tuple[float, bytes]] = deque()
        self.connections = 0
        self.latencies: list[float] = []
        self.errors = 0
        self.resent = 0
        self.outstanding = 0
        self.drained = asyncio.Event()
        self.loop = asyncio.get_running_loop()

    def _payload(self, key: str, body: str) -> bytes:
        encoded = body.encode()
        head = (
            f"POST {self.spec.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(encoded)}\r\n\r\n"
        )
        return head.encode() + encoded

    def next_payload(self) -> bytes:
        """The next request: a key in turn or at random, the main body or (``other_share`` of the time) another."""
        spec = self.spec
        variants = self.payloads[0]
        if len(self.payloads) > 1 and self._rng.random() < spec.other_share:
            variants = self.payloads[1 + self._rng.randrange(len(self.payloads) - 1)]
        if spec.random_keys:
            return variants[self._rng.randrange(len(variants))]
        self._turn += 1
        return variants[(self._turn - 1) % len(variants)]

    async def _open(self) -> None:
        self.connections += 1
        while True:
            try:
                _, conn = await self.loop.create_connection(lambda: _Connection(self), self.host, self.port)
            except OSError:
                if self.spec.retry_refused and self.waiting:
                    await asyncio.sleep(0.02)  # the server is restarting: the waiting requests wait on
                    continue
                self.connections -= 1
                if not self.spec.retry_refused:
                    self.errors += 1
                return
            break
        self._next(conn)

    def _next(self, conn: _Connection) -> None:
        if self.waiting:
            conn.send(*self.waiting.popleft())
        else:
            self.idle.append(conn)

    def submit(self, intended: float, payload: bytes) -> None:
        self.outstanding += 1
        if self.idle:
            self.idle.pop().send(intended, payload)
            return
        self.waiting.append((intended, payload))
        if self.connections < self.spec.max_connections:
            self.loop.create_task(self._open())

    def answered(self, conn: _Connection, status: int) -> None:
        latency = time.perf_counter() - conn.intended
        self.latencies.append(latency)
        if self.spec.timeline:
            self.samples.append((round(conn.intended - self.started, 4), round(latency * 1000, 3), status))
        if status != 200:
            self.errors += 1
        self._finished()
        self._next(conn)

    def lost(self, conn: _Connection) -> None:
        self.connections -= 1
        if conn in self.idle:
            self.idle.remove(conn)
        if conn.busy and not conn.answering:
            # The server closed an idle keep-alive connection as the request left on it (uvicorn closes them
            # after 5 s): the request never reached it. Send it again, from its scheduled instant, as an HTTP
            # client would.
            self.resent += 1
            self.outstanding -= 1
            self.submit(conn.intended, conn.payload)
        elif conn.busy and self.spec.retry_refused:
            # Closed with the request under way (the server stopping): a client retries it on a new connection.
            self.resent += 1
            self.outstanding -= 1
            self.submit(conn.intended, conn.payload)
        elif conn.busy:
            self.errors += 1
            self._finished()
        if self.waiting and self.connections < self.spec.max_connections and not self.idle:
            self.loop.create_task(self._open())

    def _finished(self) -> None:
        self.outstanding -= 1
        if self.outstanding == 0:
            self.drained.set()

    async def run(self) -> dict[str, Any]:
        for _ in range(min(_WARM_CONNECTIONS, self.spec.max_connections)):
            await self._open()
        if self.spec.start_at_epoch:
            await asyncio.sleep(max(0.0, self.spec.start_at_epoch - time.time()))
        total = max(1, int(self.spec.rate * self.spec.seconds))
        interval = 1.0 / self.spec.rate
        # perf_counter, not loop.time(): uvloop's clock moves in whole milliseconds
        started = time.perf_counter() + 0.05
        self.started = started
        started_epoch = time.time() + 0.05
        sent = 0
        while sent < total:
            now = time.perf_counter()
            due = started + sent * interval
            if due > now:
                await asyncio.sleep(due - now)
                continue
            while sent < total and started + sent * interval <= now:
                self.submit(started + sent * interval, self.next_payload())
                sent += 1
        if self.outstanding:
            self.drained.clear()
            try:
                await asyncio.wait_for(self.drained.wait(), timeout=self.spec.answer_timeout_s)
            except TimeoutError:
                self.errors += self.outstanding
        elapsed = time.perf_counter() - started
        for conn in self.idle:
            if conn.transport is not None:
                conn.transport.close()
        ordered = sorted(self.latencies)
        return {
            "rate": self.spec.rate,
            "sent": sent,
            "answered": len(ordered),
            "errors": self.errors,
            "achieved_per_s": round(len(ordered) / elapsed, 1) if elapsed > 0 else 0.0,
            "p50_ms": round(percentile(ordered, 0.50) * 1000, 3),
            "p99_ms": round(percentile(ordered, 0.99) * 1000, 3),
            "p999_ms": round(percentile(ordered, 0.999) * 1000, 3),
            "max_ms": round(ordered[-1] * 1000, 3) if ordered else None,
            "connections": self.connections,
            "resent_after_keepalive_close": self.resent,
            "unanswered": sent - len(ordered),
            "started_epoch": started_epoch,
            **({"timeline": self.samples} if self.spec.timeline else {}),
        }


async def _main(spec: LoadSpec) -> dict[str, Any]:
    return await _OpenLoopClient(spec).run()


async def constant_rate(spec: LoadSpec, *, cpu: int | None) -> dict[str, Any]:
    """Run the client in its own process (pinned to ``cpu``) and return its result."""
    return await run_pinned_json("bench.loadgen", spec.__dict__, cpu, "load client")


def _spec(raw: dict[str, Any]) -> LoadSpec:
    return LoadSpec(**{**raw, "other_bodies": tuple(raw.get("other_bodies", ()))})


def main() -> None:
    answer_pinned_json(lambda raw: _main(_spec(raw)))


if __name__ == "__main__":
    main()
