"""The alerting rules run over the subjects' windows: read the rules (again every ``ALERTS_RULES_REFRESH_S``),
evaluate a subject against the rules of its stream (pure, ``evaluate.py``), store each transition (one transaction
each, idempotent, ``store.py``) and keep the in-memory open alerts in step with what was stored.

The alerting consumer calls it under its lock: for the subjects a batch touched, and for every subject as time
passes (``tick``). It holds no Kafka handle and commits nothing; a database error propagates to the caller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from aiokafka import TopicPartition

from consumers.alerts.evaluate import Transition, evaluate
from consumers.alerts.partitions import RULES_OF, AlertingStats, OpenAlerts, PartitionState
from consumers.alerts.store import AlertStore, Source
from consumers.alerts.windows import SubjectWindow
from schemas.alerting import RULE_KINDS, RuleBook

log = logging.getLogger("consumers.alerts")


class RuleRunner:
    """Evaluates subjects and applies their transitions; ``on_event`` is called when an alert event is stored."""

    def __init__(
        self,
        store: AlertStore,
        open_alerts: OpenAlerts,
        stats: AlertingStats,
        *,
        refresh_s: float,
        on_event: Callable[[], None],
    ) -> None:
        self.rules = RuleBook()
        self._store = store
        self._open = open_alerts
        self._stats = stats
        self._refresh_s = refresh_s
        self._on_event = on_event
        self._loaded_at = 0.0

    async def refresh(self, *, force: bool = False) -> None:
        """Read the rules if ``force`` or if they were read more than ``refresh_s`` ago."""
        loop = asyncio.get_running_loop()
        if not force and loop.time() - self._loaded_at < self._refresh_s:
            return
        self.rules = await self._store.load_rules()
        self._loaded_at = loop.time()

    async def evaluate(
        self,
        partitions: Mapping[TopicPartition, PartitionState],
        subjects: dict[TopicPartition, set[str]],
        now: datetime,
    ) -> None:
        """Evaluate the given subjects of each caught-up partition (the ones a batch of new records touched)."""
        for tp, names in subjects.items():
            state = partitions.get(tp)
            if state is None or not state.caught_up:
                continue
            for subject in sorted(names):
                await self._evaluate_subject(tp, state, subject, now)

    async def tick(self, partitions: Mapping[TopicPartition, PartitionState], now: datetime) -> None:
        """Evaluate every subject of every caught-up partition at ``now``, then forget seconds no rule can see."""
        keep_s = self.rules.max_span_s() + 1
        for tp, state in list(partitions.items()):
            if not state.caught_up:
                continue
            subjects = set(state.windows) | self._open.subjects_of(tp)
            for subject in sorted(subjects):
                await self._evaluate_subject(tp, state, subject, now)
            for subject, window in list(state.windows.items()):
                window.prune(now.timestamp(), keep_s)
                if window.empty:
                    del state.windows[subject]

    async def _evaluate_subject(self, tp: TopicPartition, state: PartitionState, subject: str, now: datetime) -> None:
        kinds = RULES_OF[state.stream]
        rules = self.rules.rules_for(subject, [k for k in RULE_KINDS if k in kinds])
        open_alerts = {rule: alert for rule, alert in self._open.of_subject(subject).items() if rule in kinds}
        window = state.windows.get(subject) or SubjectWindow()
        for transition in evaluate(subject, rules, window, open_alerts, now):
            await self._apply(tp, transition)

    async def _apply(self, tp: TopicPartition, transition: Transition) -> None:
        applied = await self._store.apply(transition, Source(tp.topic, tp.partition))
        if applied.open_alert is None:
            self._open.drop(transition.rule, transition.subject)
        else:
            self._open.put(applied.open_alert, tp)
        if applied.event is not None:
            self._stats.transitions[transition.kind] += 1
            self._on_event()
            log.info(
                "alert %s %s for %s: %s",
                applied.event.rule,
                transition.kind,
                transition.subject,
                transition.observation.summary,
            )
