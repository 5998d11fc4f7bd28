"""The alerting consumer's state per assigned partition: where replay ends, the subjects' windows, the open alerts
each partition owns, and the consumer's counters. Plain data and bookkeeping, no I/O."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from aiokafka import TopicPartition

from consumers.alerts.evaluate import OpenAlert
from consumers.alerts.windows import SubjectWindow
from schemas.alerting import DECISION_RULES, SIGNAL_RULES, RuleKind
from schemas.decision_event import DecisionEvent
from schemas.signal_event import SignalEvent

StreamName = Literal["decisions", "signals"]
_REWIND_WAIT_S = 30.0
RULES_OF: dict[StreamName, frozenset[RuleKind]] = {"decisions": DECISION_RULES, "signals": SIGNAL_RULES}


class Abandoned(Exception):
    """The consumer is stopping while a batch waited for the database; the batch stays uncommitted."""


@dataclass
class AlertingStats:
    records: int = 0
    replayed: int = 0  # records read only to rebuild windows
    invalid: int = 0
    transitions: Counter[str] = field(default_factory=Counter)  # applied, by kind
    events_published: int = 0
    publish_failures: int = 0
    database_failures: int = 0
    commit_failures: int = 0
    batches: int = 0


@dataclass
class PartitionState:
    stream: StreamName
    replay_until: int  # records below this offset were evaluated by an earlier run: windows only
    live_from: int  # the log's end when assigned: windows are complete once read up to here
    next_offset: int | None  # the next record expected
    windows: dict[str, SubjectWindow] = field(default_factory=dict)
    # Rewound behind the committed offset: until a record from before it arrives, records from the committed
    # offset on were fetched before the rewind (a batch already handed out) and are dropped; they come again.
    rewinding_since: float | None = None

    def stale(self, offset: int, now: float) -> bool:
        if self.rewinding_since is None:
            return False
        if offset < self.replay_until:
            self.rewinding_since = None  # the rewound records have started to arrive
            return False
        # (a safety valve: should the rewound records be gone from the log, stop waiting for them)
        return now - self.rewinding_since < _REWIND_WAIT_S

    @property
    def caught_up(self) -> bool:
        """Whether the windows hold everything up to about now, so evaluating at the wall clock is sound (before
        that, an alert could be resolved for want of records not read yet)."""
        return self.next_offset is None or self.next_offset >= max(self.replay_until, self.live_from)

    def window(self, subject: str) -> SubjectWindow:
        found = self.windows.get(subject)
        if found is None:
            found = self.windows[subject] = SubjectWindow()
        return found


@dataclass(frozen=True)
class Decoded:
    tp: TopicPartition
    offset: int
    subject: str
    at: float
    decision: DecisionEvent | None = None
    signal: SignalEvent | None = None
    owner_of_key: str | None = None  # the subject is the customer owning this key id, still to be looked up


class OpenAlerts:
    """The open alerts of the assigned partitions, by (rule, subject), with the partition that owns each."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[RuleKind, str], tuple[OpenAlert, TopicPartition]] = {}
        self._by_subject: dict[str, dict[RuleKind, OpenAlert]] = {}

    def put(self, alert: OpenAlert, owner: TopicPartition) -> None:
        self._by_key[(alert.rule, alert.subject)] = (alert, owner)
        self._by_subject.setdefault(alert.subject, {})[alert.rule] = alert

    def drop(self, rule: RuleKind, subject: str) -> None:
        self._by_key.pop((rule, subject), None)
        rules = self._by_subject.get(subject)
        if rules is not None:
            rules.pop(rule, None)
            if not rules:
                del self._by_subject[subject]

    def of_subject(self, subject: str) -> dict[RuleKind, OpenAlert]:
        return dict(self._by_subject.get(subject, {}))

    def subjects_of(self, owner: TopicPartition) -> set[str]:
        return {subject for (_, subject), (_, tp) in self._by_key.items() if tp == owner}

    def drop_partitions(self, owners: set[TopicPartition]) -> None:
        for rule, subject in [key for key, (_, tp) in self._by_key.items() if tp in owners]:
            self.drop(rule, subject)

    def snapshot(self) -> dict[tuple[RuleKind, str], OpenAlert]:
        return {key: alert for key, (alert, _) in self._by_key.items()}
