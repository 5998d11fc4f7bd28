"""A durable local spool for decision events that Kafka did not acknowledge in time.

One file per event: written to a temporary name, fsynced, renamed into place and the folder fsynced, so a file
that exists under its final name is complete and on disk. The relay (``workers.spool_relay``) publishes the
oldest files first and deletes each only after Kafka acknowledged it. A duplicate in Kafka (the event was
acknowledged late after all) is harmless: the audit log deduplicates on ``event_id``.

Why disk and not a PostgreSQL outbox: the spool is what answers when infrastructure is failing, and it must not
share a failure with anything else in the request path; a local fsync is a few milliseconds and needs nothing
but the disk it is on.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class SpoolFull(Exception):
    """The spool holds its maximum number of events; refuse rather than grow without bound."""


@dataclass(frozen=True)
class SpooledEvent:
    path: Path
    topic: str
    key: bytes
    headers: dict[str, str]
    value: bytes


class DiskSpool:
    def __init__(self, folder: Path, *, max_events: int = 100_000) -> None:
        self.folder = folder
        self.max_events = max_events
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._seq = 0
        self._depth = sum(1 for _ in self.folder.glob("*.event"))

    @property
    def depth(self) -> int:
        return self._depth

    def refresh_depth(self) -> int:
        """Count the events on disk again. A folder that is not there (or not a folder) counts nothing, which says
        nothing about what it holds once back: the last count stands, so the limit still holds then."""
        if self.folder.is_dir():
            self._depth = sum(1 for _ in self.folder.glob("*.event"))
        return self._depth

    def write(self, topic: str, key: bytes, headers: dict[str, str], value: bytes) -> Path:
        """Store one event durably (blocking: call it in a thread). Raises SpoolFull or OSError."""
        # The relay runs in another process (python -m workers) and several ingress processes share the folder:
        # the count kept here can be stale, so a spool that looks full is counted again before it refuses.
        if self._depth >= self.max_events and self.refresh_depth() >= self.max_events:
            raise SpoolFull(f"spool holds {self._depth} events")
        with self._lock:
            self._seq += 1
            name = f"{time.time_ns():020d}-{os.getpid()}-{self._seq:08d}"
        envelope = json.dumps({"topic": topic, "key": key.decode(), "headers": headers}).encode()
        tmp = self.folder / f".{name}.tmp"
        final = self.folder / f"{name}.event"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, envelope + b"\n" + value)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, final)
        dir_fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._depth += 1
        return final

    def pending(self, limit: int = 500) -> Iterator[SpooledEvent]:
        """The oldest complete events first."""
        for path in sorted(self.folder.glob("*.event"))[:limit]:
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                continue  # another relay took it
            head, _, value = raw.partition(b"\n")
            envelope = json.loads(head)
            yield SpooledEvent(path, envelope["topic"], envelope["key"].encode(), envelope["headers"], value)

    def remove(self, event: SpooledEvent) -> None:
        try:
            event.path.unlink()
        except FileNotFoundError:
            return
        self._depth = max(0, self._depth - 1)
