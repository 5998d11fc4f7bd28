"""The audit writer's batch, its states and counters, and building a batch's rows without holding the loop."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aiokafka import TopicPartition

from consumers.audit.transform import Accepted, Rejected, decision_row

# Decoding a record or building its row takes tens of microseconds, on the event loop; on the read side that loop
# also answers analysts. Yielding every so many records bounds what a batch of hundreds holds them up by (~2 ms,
# not ~40).
YIELD_EVERY = 32


async def rows_of(accepted: list[Accepted]) -> list[tuple[Any, ...]]:
    rows = []
    for count, item in enumerate(accepted, 1):
        if count % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        rows.append(decision_row(item.event, item.origin))
    return rows


class WriterState(StrEnum):
    IDLE = "idle"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


class DlqLimitExceeded(RuntimeError):
    """Too many invalid records in a row: the upstream is broken, not unlucky."""


class Abandoned(Exception):
    """A flush gave up (the writer is stopping, or a one-shot flush failed); nothing was committed."""


@dataclass
class AuditStats:
    """Counters for the metrics work; plain attributes, updated in place."""

    messages_consumed: int = 0
    rows_written: int = 0
    batches_written: int = 0
    duplicates_skipped: int = 0
    dlq_count: int = 0
    insert_failures: int = 0
    dlq_publish_failures: int = 0
    commit_failures: int = 0
    last_insert_latency_s: float = 0.0
    insert_latency_s_total: float = 0.0
    last_batch_size: int = 0
    last_flush_at: float | None = None  # wall clock (time.time())
    # next offset to read, per "topic:partition", as last committed by this writer
    last_committed: dict[str, int] = field(default_factory=dict)


@dataclass
class Batch:
    accepted: list[Accepted] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    started_at: float | None = None  # loop time of the first record

    def __len__(self) -> int:
        return len(self.accepted) + len(self.rejected)
