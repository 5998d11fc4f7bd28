"""A fetched batch → the records the windows take: the valid records of the assigned partitions, in order, decoded
(``decode.py``) with their subject resolved, and each one added to its subject's window."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from consumers.alerts.decode import Invalid, decode_record
from consumers.alerts.partitions import AlertingStats, Decoded, PartitionState
from consumers.alerts.store import AlertStore
from consumers.alerts.windows import SubjectWindow
from schemas.alerting import UNKNOWN_SUBJECT

log = logging.getLogger("consumers.alerts")


async def decode_batch(
    records: tuple[ConsumerRecord[Any, Any], ...],
    partitions: Mapping[TopicPartition, PartitionState],
    *,
    store: AlertStore,
    stats: AlertingStats,
    now: float,
) -> tuple[list[Decoded], dict[TopicPartition, int]]:
    """Valid records of assigned partitions, in order, with their subject, and the next offset per partition.
    Changes no state, so a retry after a database error starts over cleanly."""
    decoded = []
    next_offsets: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        state = partitions.get(tp)
        expected = next_offsets.get(tp, state.next_offset if state is not None else None)
        # Fetched before a rebalance or a rewind: not ours any more, already seen, or seen again soon.
        if state is None or (expected is not None and record.offset < expected):
            continue
        if state.stale(record.offset, time.monotonic()):
            continue
        item = await _decode_one(state, tp, record, store=store, stats=stats, now=now)
        next_offsets[tp] = record.offset + 1
        if item is not None:
            decoded.append(item)
    return decoded, next_offsets


async def _decode_one(
    state: PartitionState,
    tp: TopicPartition,
    record: ConsumerRecord[Any, Any],
    *,
    store: AlertStore,
    stats: AlertingStats,
    now: float,
) -> Decoded | None:
    decoded = decode_record(state.stream, tp, record, now)
    if isinstance(decoded, Invalid):
        stats.invalid += 1  # (a retried batch counts it again; a rare, harmless overcount)
        log.warning("skipped invalid record %s:%d@%d: %s", record.topic, record.partition, record.offset, decoded)
        return None
    if decoded.owner_of_key is not None:
        # A key id we issued (revoked, expired, wrong secret) names its customer; anything else is unknown.
        owner = await store.customer_for_key(decoded.owner_of_key)
        return replace(decoded, subject=str(owner) if owner is not None else UNKNOWN_SUBJECT, owner_of_key=None)
    return decoded


def add_to_window(window: SubjectWindow, item: Decoded) -> None:
    if item.decision is not None:
        d = item.decision
        window.add_decision(item.at, allowed=d.allowed, risk_score=d.risk_score, personal_data=len(d.personal_data))
    elif item.signal is not None:
        window.add_signal(item.at, kind=item.signal.kind, count=item.signal.count)
