"""The audit writer: ``governance.decisions.v1`` → ClickHouse ``decisions``, once.

A short pipeline (arroyo style): decode → transform (pure, ``transform.py``) → check the receipt
(``receipt_check.py``) → batch by size or time → write (``sinks.py``: ClickHouse and the DLQ) → commit. Three kinds
of failure, three answers:

* an invalid record is dead-lettered (``governance.decisions.dlq``, explaining itself) and committed with its batch;
  so is a decision whose receipt does not verify against the published receipt keys or does not sign the event's
  own fields (``authenticity.py``, reason ``unverified_receipt``): anyone who can write to the topic can write a
  well-formed event, only ingress can sign one. Keys that cannot be read are an infrastructure failure (below);
  more than ``AUDIT_DLQ_LIMIT`` of the last ``AUDIT_DLQ_WINDOW`` invalid → the writer stops instead of draining the
  topic into the DLQ;
* ClickHouse (or the DLQ producer) failing → back off, capped, and retry the same batch; nothing is committed, and
  the consumer stops fetching meanwhile (back-pressure);
* anything else is a bug → stop without committing; a restart consumes again from the last commit.

Offsets are committed explicitly, per partition, only after the batch is in ClickHouse (FastStream
``AckPolicy.MANUAL``; its default acks before processing, and ``ACK`` commits even after the handler raised).
Redelivery cannot duplicate: a batch repeated with the same records carries the same insert deduplication token,
and before inserting, rows whose event_id is already stored are dropped (a redelivered batch can have other
boundaries after a crash or rebalance). ``ReplacingMergeTree(event_id)`` plus ``FINAL`` reads is the last layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from clickhouse_connect.driver.client import Client

from consumers.audit.batch import YIELD_EVERY, Abandoned, AuditStats, Batch, DlqLimitExceeded, WriterState
from consumers.audit.receipt_check import ReceiptCheck
from consumers.audit.sinks import DeadLetterSink, DecisionSink
from consumers.audit.spec import declare_contract
from consumers.audit.transform import Accepted, DlqLimit, Origin, Rejected, classify
from consumers.settings import AuditSettings
from consumers.stream import BatchSubscription, RebalanceHooks, Records, TaskSet, backoff, commit, partition_label
from infra.decisions_table import DecisionStore
from infra.kafka import build_kafka_broker
from infra.kafka_topics import ensure_project_topics
from infra.receipt_keys import PublishedReceiptKeys

log = logging.getLogger("consumers.audit")


class AuditWriter:
    """Consumes decisions in its own group and writes them to ClickHouse in batches; see the module docstring."""

    def __init__(
        self,
        settings: AuditSettings,
        client: Client,
        *,
        client_id: str = "governance-audit",
        receipt_keys: PublishedReceiptKeys | None = None,
    ) -> None:
        self.settings = settings
        self.receipt_keys = receipt_keys or PublishedReceiptKeys(
            settings.receipt_keys_dir, url=settings.receipt_keys_url
        )
        self.group_id = settings.audit_group_id
        self.store = DecisionStore(client, settings.clickhouse_database)
        self.stats = AuditStats()
        self.state = WriterState.IDLE
        self.failure: BaseException | None = None

        self.broker = build_kafka_broker(settings.kafka_bootstrap_servers, client_id=client_id, log_level=logging.DEBUG)
        dlq = declare_contract(self.broker, decisions_topic=settings.decisions_topic, dlq_topic=settings.dlq_topic)
        self._subscription = BatchSubscription(
            self.broker,
            settings.decisions_topic,
            group_id=self.group_id,
            max_records=settings.audit_batch_size,
            hooks=RebalanceHooks(self._on_partitions_revoked, self._on_partitions_assigned),
            handle=self._handle,
        )

        self._dlq_limit = DlqLimit(settings.audit_dlq_limit, settings.audit_dlq_window)
        self._batch = Batch()
        self._next_offset: dict[TopicPartition, int] = {}
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._receipts = ReceiptCheck(self.receipt_keys, self._stopping, self._backoff)
        self._decisions = DecisionSink(self.store, self.stats, self._stopping, self._backoff)
        self._dead_letters = DeadLetterSink(dlq, self.group_id, self.stats, self._stopping, self._backoff)
        self._stopped = asyncio.Event()
        self._tasks = TaskSet()
        self._writing: asyncio.Task[None] | None = None  # the batch being written and committed (at most one)

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and start consuming; raises when Kafka cannot be reached."""
        self.state = WriterState.STARTING
        try:
            await ensure_project_topics(self.settings)
            await self.broker.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await self.broker.stop()
            self.state = WriterState.IDLE
            raise
        self.state = WriterState.RUNNING
        self._spawn(self._flush_when_due())
        log.info(
            "audit writer consuming %s as group %s (batches of %d or every %.1f s)",
            self.settings.decisions_topic,
            self.group_id,
            self.settings.audit_batch_size,
            self.settings.audit_flush_interval_s,
        )

    def start_in_background(self) -> None:
        """Start without blocking the caller; retry with backoff until Kafka answers or :meth:`stop` is called."""
        self._spawn(self._start_with_retries())

    async def _start_with_retries(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            try:
                await self.start()
                return
            except Exception as exc:  # noqa: BLE001 - any start failure is retried; the type is logged
                attempt += 1
                log.warning("audit writer could not start (%s); retrying", type(exc).__name__)
                await self._backoff(attempt)

    async def stop(self) -> None:
        """Flush what is buffered (one attempt), commit it, leave the group."""
        if self.state is WriterState.FAILED or self._stopped.is_set():
            await self._stopped.wait()  # a failure shuts down on its own
            return
        if self.state is WriterState.RUNNING:
            self.state = WriterState.STOPPING
        self._stopping.set()  # interrupts backoff waits, so the lock comes free
        async with self._lock:
            if self.state is WriterState.STOPPING:
                with contextlib.suppress(Abandoned):
                    await self._flush(persistent=False)
        await self._shutdown()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    async def _shutdown(self) -> None:
        # Let them finish unwinding first: a start cancelled mid-connect cleans up after itself, and must not do
        # so after the state below says STOPPED.
        await self._tasks.cancel_others()
        with contextlib.suppress(Exception):
            await self.broker.stop()
        if self.state is not WriterState.FAILED:
            self.state = WriterState.STOPPED
        self._stopped.set()

    def _halt(self, exc: BaseException) -> None:
        """Stop consuming without committing anything more (a crash, minus the process exit)."""
        if self.state is WriterState.FAILED:
            return
        self.failure = exc
        self.state = WriterState.FAILED
        self._stopping.set()
        log.critical("audit writer stopped: %s: %s; nothing after the last commit is lost", type(exc).__name__, exc)
        self._spawn(self._shutdown())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks.spawn(coro)

    # -- observability -----------------------------------------------------------------------------------------

    @property
    def consumer(self) -> AIOKafkaConsumer | None:
        return self._subscription.consumer

    @property
    def buffered(self) -> int:
        return len(self._batch)

    def lag(self) -> dict[str, int]:
        """Records in Kafka not yet committed by this writer, per partition (from the last fetch; cheap)."""
        consumer = self.consumer
        if consumer is None:
            return {}
        lags = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            done = self.stats.last_committed.get(partition_label(tp), self._next_offset.get(tp))
            if highwater is not None and done is not None:
                lags[partition_label(tp)] = max(highwater - done, 0)
        return lags

    # -- consume -----------------------------------------------------------------------------------------------

    async def _handle(self, records: Records) -> None:
        if self.state is not WriterState.RUNNING:
            return  # stopping or failed: leave them uncommitted
        try:
            async with self._lock:
                await self._take(records)
        except Abandoned:
            return  # stopping mid-retry: the batch stays uncommitted
        except Exception as exc:  # noqa: BLE001 - a bug or the DLQ limit: stop, commit nothing more
            self._halt(exc)

    async def _take(self, records: tuple[ConsumerRecord[Any, Any], ...]) -> None:
        consumer = self.consumer
        assigned = consumer.assignment() if consumer is not None else set()
        loop = asyncio.get_running_loop()
        # Classified one by one, then the accepted ones' receipts checked together, then batched in
        # the records' order.
        taken: list[tuple[ConsumerRecord[Any, Any], TopicPartition, Accepted | Rejected]] = []
        for count, record in enumerate(records, 1):
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            tp = TopicPartition(record.topic, record.partition)
            # Records fetched before a rebalance reach us after it: the partition is gone or rewound.
            if tp not in assigned or record.offset < self._next_offset.get(tp, -1):
                continue
            origin = Origin(record.topic, record.partition, record.offset, record.timestamp, record.key)
            taken.append((record, tp, classify(origin, record.value, tuple(record.headers or ()))))
        claims = [(item, record) for record, _, item in taken if isinstance(item, Accepted)]
        checked = iter(await self._receipts.check(claims))
        for record, tp, classified in taken:
            if self.state is not WriterState.RUNNING:
                return
            if len(self._batch) >= self.settings.audit_batch_size:
                await self._flush()
            item = next(checked) if isinstance(classified, Accepted) else classified
            self.stats.messages_consumed += 1
            self._dlq_limit.record(isinstance(item, Rejected))
            if self._dlq_limit.exceeded:
                raise DlqLimitExceeded(
                    f"{self._dlq_limit.invalid_in_window} of the last {self._dlq_limit.window} records on "
                    f"{record.topic} were invalid (limit {self._dlq_limit.limit}); last: "
                    f"{record.partition}@{record.offset}: {getattr(item, 'reason', '')}"
                )
            if isinstance(item, Accepted):
                self._batch.accepted.append(item)
            else:
                self._batch.rejected.append(item)
            self._batch.next_offsets[tp] = record.offset + 1
            self._next_offset[tp] = record.offset + 1
            if self._batch.started_at is None:
                self._batch.started_at = loop.time()
        if len(self._batch) >= self.settings.audit_batch_size:
            await self._flush()

    async def _flush_when_due(self) -> None:
        interval = self.settings.audit_flush_interval_s
        loop = asyncio.get_running_loop()
        try:
            while self.state is WriterState.RUNNING:
                started = self._batch.started_at
                wait = interval if started is None else started + interval - loop.time()
                if wait > 0:
                    await asyncio.sleep(min(wait, interval))
                    continue
                async with self._lock:
                    started = self._batch.started_at
                    if self.state is WriterState.RUNNING and started is not None and loop.time() >= started + interval:
                        await self._flush()
        except Abandoned:
            return
        except Exception as exc:  # noqa: BLE001 - a bug: stop, commit nothing more
            self._halt(exc)

    async def _on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("audit writer assigned %s", sorted(partition_label(tp) for tp in assigned))

    async def _on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Write and commit what we hold while the partitions are still ours; what cannot be written now is
        # dropped here and delivered again (from the last commit) to whoever gets the partitions.
        log.info("audit writer losing %s", sorted(partition_label(tp) for tp in revoked))
        async with self._lock:
            if self.state in (WriterState.RUNNING, WriterState.STOPPING) and (self._batch or self._writing):
                try:
                    await self._flush(persistent=False)
                except Abandoned:
                    log.warning("audit batch not written before rebalance; it will be consumed again")
                except Exception as exc:  # noqa: BLE001 - a bug: stop, commit nothing more
                    self._halt(exc)
            self._batch = Batch()
            self._next_offset.clear()

    # -- write and commit --------------------------------------------------------------------------------------

    async def _flush(self, *, persistent: bool = True) -> None:
        """Write the batch (retrying while ``persistent``), dead-letter its invalid records, then commit.

        A persistent flush writes in the background, so that the next records are decoded while ClickHouse
        inserts (the embedded engine works outside the GIL for most of an insert). At most one batch is under
        way: each flush first waits for the one before, so commits stay in order, a batch that could not be
        written stops every later one from being committed, and a ClickHouse that is down still stops the
        consumer (back-pressure). A flush that is not persistent (stopping, losing partitions) waits for its own.
        """
        await self._settle()
        batch = self._batch
        if not batch:
            return
        self._batch = Batch()
        if not persistent:
            await self._write_batch(batch, persistent=False)
            return
        writing = asyncio.get_running_loop().create_task(self._write_batch(batch, persistent=True))
        self._writing = writing
        writing.add_done_callback(self._written)

    async def _settle(self) -> None:
        """Wait for the batch under way, if any; raise what writing it raised, on every call: once a batch could
        not be written, no later batch may be committed past it (its records are consumed again instead)."""
        if self._writing is not None:
            await self._writing
            self._writing = None

    def _written(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not isinstance(exc, Abandoned):
            self._halt(exc)  # a bug: stop, commit nothing more

    async def _write_batch(self, batch: Batch, *, persistent: bool) -> None:
        await self._decisions.write(batch.accepted, persistent=persistent)
        await self._dead_letters.publish(batch.rejected, persistent=persistent)
        await self._commit(batch.next_offsets)
        self.stats.batches_written += 1
        self.stats.last_batch_size = len(batch)
        self.stats.last_flush_at = time.time()

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        # The rows are stored; whoever owns the partitions now gets them again and skips them as stored.
        if await commit(self.consumer, offsets, log, "the batch (deduplicated when stored again)"):
            for tp, offset in offsets.items():
                self.stats.last_committed[partition_label(tp)] = offset
        elif self.consumer is not None and offsets:
            self.stats.commit_failures += 1

    async def _backoff(self, attempt: int) -> None:
        await backoff(self._stopping, attempt, self.settings.audit_backoff_initial_s, self.settings.audit_backoff_max_s)


async def start_in_process(settings: AuditSettings, client: Client) -> AuditWriter:
    """Prepare the schema and start a writer in this process without waiting for Kafka (ingress uses this)."""
    store = DecisionStore(client, settings.clickhouse_database)
    await store.prepare(settings.audit_retention_days)
    writer = AuditWriter(settings, client)
    writer.start_in_background()
    return writer
