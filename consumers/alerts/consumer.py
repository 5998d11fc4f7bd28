"""The alerting consumer: decisions and signals → sliding windows per subject → rule transitions → PostgreSQL
(alerts, events, webhook deliveries) → ``governance.alerts.v1``.

A short pipeline: decode → add to the subject's window → evaluate (pure, ``evaluate.py``) → apply (one
transaction per transition, idempotent, ``store.py``) → commit the batch's offsets. Decoding a batch lives in
``records.py``, evaluating and applying in ``rule_runner.py``; this module holds the Kafka side. Offsets are
committed only after the batch's transitions are stored (FastStream ``AckPolicy.MANUAL``), so nothing is lost on a
crash; a redelivered record is harmless because applying a transition checks the alert's stored sequence.

State across restarts and rebalances:

* alerts (open or not) and their notification times live in PostgreSQL; the open ones of a partition are loaded
  when the partition is assigned;
* windows are rebuilt from Kafka itself: on assignment each partition is rewound to the oldest record any rule
  can still see (``offsets_for_times``); records before the committed offset are replayed into the windows
  without being evaluated again (they were evaluated before), and evaluation resumes at the committed offset;
* alert events reach Kafka through an outbox (``alert_events.published_at``), so a Kafka outage delays them and
  loses none.

An invalid record is counted, logged with its origin and skipped: the audit writer dead-letters decisions, and
signals are best effort by contract. A database error is retried with backoff, nothing committed meanwhile
(back-pressure); any other error stops the consumer without committing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord, TopicPartition

from consumers.alerts.evaluate import OpenAlert
from consumers.alerts.outbox import AlertOutbox
from consumers.alerts.partitions import Abandoned, AlertingStats, OpenAlerts, PartitionState, StreamName
from consumers.alerts.records import add_to_window, decode_batch
from consumers.alerts.rule_runner import RuleRunner
from consumers.alerts.settings import AlertingSettings
from consumers.alerts.store import RETRYABLE_ERRORS, AlertStore, Source
from consumers.stream import BatchSubscription, RebalanceHooks, Records, TaskSet, backoff, commit, rewind_to
from infra.kafka import build_kafka_broker
from infra.kafka_topics import ensure_project_topics
from infra.postgres import build_postgres_pool
from schemas.alerting import RuleKind

log = logging.getLogger("consumers.alerts")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AlertingConsumer:
    """Run with ``await start()`` and ``await stop()``; ``python -m consumers.alerts`` runs one standalone."""

    def __init__(
        self,
        settings: AlertingSettings,
        *,
        client_id: str = "governance-alerts",
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.settings = settings
        self.group_id = settings.alerts_group_id
        self.stats = AlertingStats()
        self.failure: BaseException | None = None
        self._clock = clock
        self.broker = build_kafka_broker(settings.kafka_bootstrap_servers, client_id=client_id)
        self._subscription = BatchSubscription(
            self.broker,
            settings.decisions_topic,
            settings.signals_topic,
            group_id=self.group_id,
            max_records=settings.alerts_batch_size,
            hooks=RebalanceHooks(self._on_revoked, self._on_assigned),
            handle=self._handle,
        )
        self._store: AlertStore | None = None
        self._rules: RuleRunner | None = None
        self._pool: asyncpg.Pool | None = None
        self._partitions: dict[TopicPartition, PartitionState] = {}
        self._open = OpenAlerts()
        self._lock = asyncio.Lock()
        self._publish_now = asyncio.Event()
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._running = False
        self._tasks = TaskSet()

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open PostgreSQL, read the rules, join the group and start consuming; raises if either is down."""
        self._pool = await build_postgres_pool(self.settings.database_url, min_size=1, max_size=4)
        self._store = AlertStore(self._pool)
        self._rules = RuleRunner(
            self._store,
            self._open,
            self.stats,
            refresh_s=self.settings.alerts_rules_refresh_s,
            on_event=self._publish_now.set,
        )
        self._running = True  # before the broker starts: its first batch may come at once
        try:
            await self._rules.refresh(force=True)
            await ensure_project_topics(self.settings)
            await self.broker.start()
        except BaseException:
            self._running = False
            with contextlib.suppress(Exception):
                await self.broker.stop()
            await self._pool.close()
            raise
        self._spawn(self._tick_forever(), "alerts-tick")
        self._spawn(self._publish_forever(), "alerts-publish")
        log.info(
            "alerting consumer reading %s and %s as group %s",
            self.settings.decisions_topic,
            self.settings.signals_topic,
            self.group_id,
        )

    async def stop(self) -> None:
        """Finish the batch in hand (a batch waiting for the database is left uncommitted), leave the group."""
        if self._stopped.is_set():
            return
        self._stopping.set()
        self._running = False
        for task in self._tasks.others():
            task.cancel()
        async with self._lock:  # the batch in hand is finished (or abandoned); later ones are not taken
            self._running = False
        # Not under the lock: leaving the group may wait for a rebalance callback, which takes the lock.
        with contextlib.suppress(Exception):
            await self.broker.stop()
        for task in self._tasks.others():
            with contextlib.suppress(BaseException):
                await task
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await self._pool.close()
        self._stopped.set()
        log.info("alerting consumer stopped")

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    def _halt(self, exc: BaseException) -> None:
        """A bug: stop without committing more; a restart consumes again from the last commit."""
        if self.failure is None:
            self.failure = exc
            log.critical("alerting consumer stopped: %s: %s", type(exc).__name__, exc, exc_info=exc)
        self._running = False
        self._spawn(self.stop(), "alerts-halt")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.spawn(coro, name)

    # -- observability -----------------------------------------------------------------------------------------

    @property
    def assigned(self) -> list[TopicPartition]:
        return sorted(self._partitions, key=lambda tp: (tp.topic, tp.partition))

    @property
    def caught_up(self) -> bool:
        """Assigned partitions exist and every one has replayed its history."""
        return bool(self._partitions) and all(state.caught_up for state in self._partitions.values())

    def open_alerts(self) -> dict[tuple[RuleKind, str], OpenAlert]:
        return self._open.snapshot()

    # -- rebalance ---------------------------------------------------------------------------------------------

    def _stream_of(self, topic: str) -> StreamName:
        return "decisions" if topic == self.settings.decisions_topic else "signals"

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        consumer = self._subscription.consumer
        if consumer is None or self._rules is None:
            return
        fresh = [tp for tp in assigned if tp not in self._partitions]
        if not fresh:
            return
        async with self._lock:
            if self._stopping.is_set():
                return
            now = self._clock()
            lookback_s = self._rules.rules.max_span_s() + 1
            positions: dict[TopicPartition, tuple[int, int, int | None]]
            try:
                positions = await rewind_to(consumer, fresh, now.timestamp() - lookback_s)
            except Exception as exc:  # noqa: BLE001 - rewinding is an optimisation of recovery, not a must
                log.warning("could not rewind %s (%s); windows start empty", fresh, type(exc).__name__)
                positions = dict.fromkeys(fresh, (0, 0, None))
            for tp, (replay_until, live_from, start) in positions.items():
                state = PartitionState(self._stream_of(tp.topic), replay_until, live_from, start)
                if start is not None and start < replay_until:
                    state.rewinding_since = time.monotonic()
                self._partitions[tp] = state
            await self._load_open_alerts(fresh)
        log.info(
            "alerting assigned %s",
            {f"{tp.topic}:{tp.partition}": positions[tp] for tp in sorted(positions, key=lambda t: t.partition)},
        )

    async def _load_open_alerts(self, tps: list[TopicPartition]) -> None:
        assert self._store is not None  # noqa: S101
        attempt = 0
        while True:
            try:
                found = await self._store.open_alerts(Source(tp.topic, tp.partition) for tp in tps)
                break
            except RETRYABLE_ERRORS as exc:
                attempt += 1
                self.stats.database_failures += 1
                log.warning("open alerts not loaded (%s, attempt %d); retrying", type(exc).__name__, attempt)
                await self._backoff(attempt)
                if self._stopping.is_set():
                    return
        for alert, source in found:
            self._open.put(alert, TopicPartition(source.topic, source.partition))

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        # Every handled batch was committed already; what is in flight is redelivered to the next owner.
        async with self._lock:
            for tp in revoked:
                self._partitions.pop(tp, None)
            self._open.drop_partitions(revoked)
        if revoked:
            log.info("alerting revoked %s", sorted(f"{tp.topic}:{tp.partition}" for tp in revoked))

    # -- consume -----------------------------------------------------------------------------------------------

    async def _handle(self, records: Records) -> None:
        if not self._running:
            return
        try:
            async with self._lock:
                if not self._running:
                    return
                await self._take(records)
        except Abandoned:
            return
        except Exception as exc:  # noqa: BLE001 - a bug: stop, commit nothing more
            self._halt(exc)

    async def _take(self, records: tuple[ConsumerRecord[Any, Any], ...]) -> None:
        store = self._store
        assert store is not None  # noqa: S101
        decoded, next_offsets = await self._retrying(
            "decode",
            lambda: decode_batch(
                records, self._partitions, store=store, stats=self.stats, now=self._clock().timestamp()
            ),
        )
        self.stats.records += len(records)
        for tp, offset in next_offsets.items():
            self._partitions[tp].next_offset = offset
        touched: dict[TopicPartition, set[str]] = {}
        for item in decoded:
            state = self._partitions.get(item.tp)
            if state is None:
                continue
            add_to_window(state.window(item.subject), item)
            if item.offset >= state.replay_until:
                touched.setdefault(item.tp, set()).add(item.subject)
            else:
                self.stats.replayed += 1
        if touched:
            rules = self._rules
            assert rules is not None  # noqa: S101
            await self._retrying("evaluate", lambda: rules.evaluate(self._partitions, touched, self._clock()))
        await self._commit()
        self.stats.batches += 1

    async def _commit(self) -> None:
        consumer = self._subscription.consumer
        if consumer is None:
            return
        offsets = {
            tp: state.next_offset
            for tp, state in self._partitions.items()
            if state.next_offset is not None and state.next_offset >= state.replay_until
        }
        if not offsets:
            return
        # The transitions are stored; the next owner reprocesses the records and finds nothing to change.
        if not await commit(consumer, offsets, log, "the records"):
            self.stats.commit_failures += 1

    async def _retrying(self, what: str, work: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        attempt = 0
        while True:
            try:
                return await work()
            except RETRYABLE_ERRORS as exc:
                attempt += 1
                self.stats.database_failures += 1
                log.warning("alerting %s failed (%s, attempt %d); retrying, nothing committed", what, exc, attempt)
                if self._stopping.is_set():
                    raise Abandoned from exc
                await self._backoff(attempt)
                if self._stopping.is_set():
                    raise Abandoned from exc

    async def _backoff(self, attempt: int) -> None:
        await backoff(
            self._stopping, attempt, self.settings.alerts_backoff_initial_s, self.settings.alerts_backoff_max_s
        )

    # -- time passing: resolve, re-notify, forget ---------------------------------------------------------------

    async def reload_rules(self) -> None:
        """Read the rules now rather than at the next refresh."""
        assert self._rules is not None  # noqa: S101
        async with self._lock:
            await self._rules.refresh(force=True)

    async def tick(self) -> None:
        """Evaluate every subject of every caught-up partition at the current time, then forget old seconds."""
        assert self._rules is not None  # noqa: S101
        async with self._lock:
            await self._rules.refresh()
            await self._rules.tick(self._partitions, self._clock())

    async def _tick_forever(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.settings.alerts_tick_s)
            if self._stopping.is_set():
                return
            try:
                await self.tick()
            except RETRYABLE_ERRORS as exc:
                self.stats.database_failures += 1
                log.warning("alerting tick skipped: %s", type(exc).__name__)
            except Exception as exc:  # noqa: BLE001 - a bug: stop
                self._halt(exc)
                return

    # -- the alert-event outbox (consumers/alerts/outbox.py) ---------------------------------------------------

    async def publish_pending(self) -> int:
        """Publish alert events not yet on Kafka; returns how many were published."""
        assert self._store is not None  # noqa: S101
        return await AlertOutbox(self._store, self.broker, self.settings, self.stats).publish_pending()

    async def _publish_forever(self) -> None:
        assert self._store is not None  # noqa: S101
        outbox = AlertOutbox(self._store, self.broker, self.settings, self.stats)
        await outbox.publish_forever(self._publish_now, self._stopping)
