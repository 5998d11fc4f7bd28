"""The partitioned-batch consumer kit both consumers are built on (the audit writer, the alerting consumer).

What every consumer of ours does the same way lives here once:

- **Subscription** through FastStream: a batch subscriber in the consumer's group, ``AckPolicy.MANUAL`` (offsets
  are committed by the consumer after its store accepted the batch, never by the framework), earliest offset for
  a new group, and the raw records handed through untouched (FastStream's own parser and decoder would decode
  headers and JSON before our handler runs, so one poison record would fail the whole batch outside our control).
- **Rebalance**: one listener that forwards revocation and assignment to the consumer's own two steps.
- **Commits**: explicit, after the store; a commit that fails (the group moved on) is counted and logged, and the
  records are delivered again to whoever owns the partitions now, where the store's idempotence absorbs them.
- **Backoff**: exponential, capped, and cut short the moment the consumer is asked to stop.
- **Rewind**: seek partitions back to a time, for a consumer that rebuilds in-memory state from the log.
- **Tasks**: background tasks spawned and reaped in one set.

A consumer is then its decode -> pure step -> store, plus what is its own (the audit writer's flush interval,
the alerting consumer's replay of history on assignment).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.message import FAKE_CONSUMER
from faststream.message import StreamMessage

Records = tuple[ConsumerRecord[Any, Any], ...]
PartitionsHook = Callable[[set[TopicPartition]], Awaitable[None]]

# What a commit can fail with when the group has moved on or the broker is away.
COMMIT_ERRORS: tuple[type[BaseException], ...] = (CommitFailedError, IllegalStateError, KafkaError)


def partition_label(tp: TopicPartition) -> str:
    return f"{tp.topic}:{tp.partition}"


class RebalanceHooks(ConsumerRebalanceListener):  # type: ignore[misc]
    """Forwards the group's rebalance callbacks to the consumer's own steps."""

    def __init__(self, on_revoked: PartitionsHook, on_assigned: PartitionsHook) -> None:
        self._on_revoked = on_revoked
        self._on_assigned = on_assigned

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._on_assigned(assigned)


async def _raw_records(records: Records, _original: Any) -> StreamMessage[Any]:
    first = records[0]
    return KafkaMessage(
        body=b"",
        headers={},
        raw_message=records,
        message_id=f"{first.topic}:{first.partition}:{first.offset}",
        consumer=FAKE_CONSUMER,  # never acked through the message: offsets are committed explicitly
    )


async def _decode_nothing(_message: StreamMessage[Any], _original: Any) -> None:
    return None


class BatchSubscription:
    """A FastStream batch subscriber of ``topics`` in ``group_id`` whose handler gets the raw records."""

    def __init__(
        self,
        broker: KafkaBroker,
        *topics: str,
        group_id: str,
        max_records: int,
        hooks: RebalanceHooks,
        handle: Callable[[Records], Awaitable[None]],
    ) -> None:
        self._handle = handle
        self.subscriber = broker.subscriber(
            *topics,
            group_id=group_id,
            batch=True,
            max_records=max_records,
            batch_timeout_ms=200,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.MANUAL,
            listener=hooks,
            parser=_raw_records,
            decoder=_decode_nothing,
            include_in_schema=False,  # the channels are documented by the AsyncAPI contract
        )
        self.subscriber(self._on_message)

    async def _on_message(self, msg: KafkaMessage) -> None:
        await self._handle(msg.raw_message)

    @property
    def consumer(self) -> AIOKafkaConsumer | None:
        consumer: AIOKafkaConsumer | None = self.subscriber.consumer
        return consumer


async def commit(
    consumer: AIOKafkaConsumer | None, offsets: dict[TopicPartition, int], log: logging.Logger, what: str
) -> bool:
    """Commit ``offsets`` (next offsets to read); False when the commit failed and ``what`` will be redelivered."""
    if consumer is None or not offsets:
        return False
    try:
        await consumer.commit(dict(offsets))
    except COMMIT_ERRORS as exc:
        log.warning("offset commit failed (%s); %s will be redelivered", type(exc).__name__, what)
        return False
    return True


async def rewind_to(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], since_s: float
) -> dict[TopicPartition, tuple[int, int, int | None]]:
    """Seek each partition to its first record newer than ``since_s`` (Unix seconds), to replay history a consumer
    keeps in memory. Returns, per partition, (replay until: the committed offset, or the end for a new group, since
    what is in the log then is history, not news; the end offset; where it now starts)."""
    ends = await consumer.end_offsets(tps)
    by_time = await consumer.offsets_for_times({tp: max(int(since_s * 1000), 0) for tp in tps})
    positions: dict[TopicPartition, tuple[int, int, int | None]] = {}
    for tp in tps:
        committed = await consumer.committed(tp)
        end = ends[tp]
        replay_until = committed if committed is not None else end
        found = by_time.get(tp)
        start = found.offset if found is not None else end
        consumer.seek(tp, start)
        positions[tp] = (replay_until, end, start)
    return positions


async def backoff(stopping: asyncio.Event, attempt: int, initial_s: float, max_s: float) -> None:
    """Wait ``initial_s * 2**(attempt-1)`` seconds, at most ``max_s``, or until ``stopping`` is set."""
    delay = min(initial_s * 2 ** min(attempt - 1, 30), max_s)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=delay)


class TaskSet:
    """The background tasks of one consumer, spawned and cancelled together."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str | None = None) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def others(self) -> list[asyncio.Task[None]]:
        current = asyncio.current_task()
        return [task for task in self._tasks if task is not current]

    async def cancel_others(self) -> None:
        """Cancel every task but the caller's and wait until each has unwound."""
        others = self.others()
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
