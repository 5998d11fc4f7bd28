"""Where a batch goes before its offsets are committed: its accepted decisions into ClickHouse, once
(``DecisionSink``), and its rejected records onto the DLQ, each explaining itself (``DeadLetterSink``).

Both retry an infrastructure failure with backoff while the flush is persistent and the writer is not stopping;
otherwise they raise ``Abandoned`` and the writer commits nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.errors import KafkaError
from faststream.kafka.publisher import DefaultPublisher

from consumers.audit.batch import Abandoned, AuditStats, rows_of
from consumers.audit.transform import Accepted, Rejected, dead_letter, deduplication_token
from infra import pipeline_metrics
from infra.decisions_table import RETRYABLE_ERRORS, DecisionStore

log = logging.getLogger("consumers.audit")

Backoff = Callable[[int], Awaitable[None]]  # waits before attempt n, returning early when the writer stops


class DecisionSink:
    """Writes accepted decisions to ClickHouse: duplicates within the batch and rows already stored are dropped,
    and the insert carries the batch's deduplication token."""

    def __init__(self, store: DecisionStore, stats: AuditStats, stopping: asyncio.Event, backoff: Backoff) -> None:
        self.store = store
        self._stats = stats
        self._stopping = stopping
        self._backoff = backoff

    async def write(self, accepted: list[Accepted], *, persistent: bool) -> None:
        stats = self._stats
        unique: dict[Any, Accepted] = {}
        for item in accepted:
            unique.setdefault(item.event.event_id, item)
        stats.duplicates_skipped += len(accepted) - len(unique)
        if not unique:
            return
        attempt = 0
        while True:
            try:
                stored = await self.store.existing_event_ids(
                    [(a.event.event_id, a.event.customer_id, a.event.decided_at) for a in unique.values()]
                )
                fresh = [a for a in unique.values() if a.event.event_id not in stored]
                if fresh:
                    rows = await rows_of(fresh)
                    started = time.perf_counter()
                    await self.store.insert(rows, deduplication_token(fresh))
                    elapsed = time.perf_counter() - started
                    stats.last_insert_latency_s = elapsed
                    stats.insert_latency_s_total += elapsed
                    pipeline_metrics.CLICKHOUSE_INSERT_LATENCY.observe(elapsed * 1000)
                    pipeline_metrics.AUDIT_BATCH_SIZE.observe(len(fresh))
                    pipeline_metrics.AUDIT_ROWS_WRITTEN.inc(len(fresh))
                stats.rows_written += len(fresh)
                stats.duplicates_skipped += len(unique) - len(fresh)
                return
            except RETRYABLE_ERRORS as exc:
                attempt += 1
                stats.insert_failures += 1
                log.warning(
                    "ClickHouse insert of %d rows failed (%s, attempt %d); retrying, nothing committed",
                    len(unique),
                    type(exc).__name__,
                    attempt,
                )
                if not persistent or self._stopping.is_set():
                    raise Abandoned from exc
                await self._backoff(attempt)
                if self._stopping.is_set():
                    raise Abandoned from exc


class DeadLetterSink:
    """Publishes rejected records to the DLQ with their origin, the consumer group and the reason."""

    def __init__(
        self, dlq: DefaultPublisher, group_id: str, stats: AuditStats, stopping: asyncio.Event, backoff: Backoff
    ) -> None:
        self._dlq = dlq
        self._group_id = group_id
        self._stats = stats
        self._stopping = stopping
        self._backoff = backoff

    async def publish(self, rejected: list[Rejected], *, persistent: bool) -> None:
        for item in rejected:
            value, headers, key = dead_letter(item, self._group_id)
            attempt = 0
            while True:
                try:
                    await self._dlq.publish(value, key=key, headers=headers)
                    break
                except (KafkaError, OSError, TimeoutError) as exc:
                    attempt += 1
                    self._stats.dlq_publish_failures += 1
                    log.warning("DLQ publish failed (%s, attempt %d); retrying", type(exc).__name__, attempt)
                    if not persistent or self._stopping.is_set():
                        raise Abandoned from exc
                    await self._backoff(attempt)
            self._stats.dlq_count += 1
            pipeline_metrics.dead_lettered(item.reason)
            log.warning(
                "dead-lettered %s:%d@%d (%s): %s",
                item.origin.topic,
                item.origin.partition,
                item.origin.offset,
                item.reason,
                item.detail,
            )
