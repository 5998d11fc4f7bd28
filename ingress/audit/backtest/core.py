"""The pure part of backtesting: stored events and policy versions in, flip counts out.

Each stored ``DecisionEvent`` carries the features the engine decided on (operation summaries, personal-data
findings, session-budget usage) and the policy versions that decided. Replaying them under those same versions
must reproduce every stored decision (``reproduced``); replaying them with the target policy's rules swapped for
the candidate rules says which decisions would flip.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ingress.engine import Decision, PolicySnapshot, decide_from_features
from schemas.decision_event import DecisionEvent
from schemas.policy_rules import PolicyRules

SnapshotLookup = Callable[[str, int], PolicySnapshot | None]
SCORE = "risk_score"  # the "rule" a flip is put down to when the score, not a hard rule, made the difference


@dataclass
class FlipCounts:
    allow_to_block: int = 0
    block_to_allow: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"allow_to_block": self.allow_to_block, "block_to_allow": self.block_to_allow}


@dataclass
class BacktestReport:
    decisions: int = 0
    reproduced: int = 0
    not_reproduced: list[str] = field(default_factory=list)  # event ids whose replay differs from the record
    missing_versions: int = 0  # events naming a policy version we no longer have
    flips: FlipCounts = field(default_factory=FlipCounts)
    by_rule: dict[str, FlipCounts] = field(default_factory=dict)
    by_operation_type: dict[str, FlipCounts] = field(default_factory=dict)
    samples: dict[str, list[str]] = field(default_factory=lambda: {"allow_to_block": [], "block_to_allow": []})

    def as_dict(self) -> dict[str, Any]:
        return {
            "decisions": self.decisions,
            "reproduced": self.reproduced,
            "not_reproduced": self.not_reproduced[:20],
            "missing_versions": self.missing_versions,
            "flips": self.flips.as_dict(),
            "by_rule": {rule: counts.as_dict() for rule, counts in sorted(self.by_rule.items())},
            "by_operation_type": {t: counts.as_dict() for t, counts in sorted(self.by_operation_type.items())},
            "samples": self.samples,
        }


def _rules_that_block(decision: Decision, policy_id: str) -> set[str]:
    rules = {v.rule for v in decision.violations if v.policy_id == policy_id}
    if not decision.allowed and not decision.violations and decision.risk_score >= decision.threshold:
        rules.add(SCORE)
    return rules


def _snapshots(event: DecisionEvent, lookup: SnapshotLookup) -> list[PolicySnapshot] | None:
    snapshots = []
    for ref in event.policies:
        snapshot = lookup(ref.policy_id, ref.version)
        if snapshot is None:
            return None
        snapshots.append(snapshot)
    return snapshots


def _with_candidate(
    snapshots: list[PolicySnapshot], policy_id: str, name: str, candidate: PolicyRules
) -> list[PolicySnapshot]:
    replaced = False
    result = []
    for snapshot in snapshots:
        if snapshot.policy_id == policy_id:
            result.append(PolicySnapshot(policy_id, snapshot.version + 1, snapshot.name, candidate, "enforce"))
            replaced = True
        else:
            result.append(snapshot)
    if not replaced:  # the policy did not exist or was inactive then: evaluate it as if it had been
        result.append(PolicySnapshot(policy_id, 0, name, candidate, "enforce"))
    return result


def backtest(
    events: Iterable[DecisionEvent],
    lookup: SnapshotLookup,
    *,
    policy_id: str,
    policy_name: str,
    candidate: PolicyRules,
    samples: int = 10,
) -> BacktestReport:
    report = BacktestReport()
    for event in events:
        report.decisions += 1
        snapshots = _snapshots(event, lookup)
        if snapshots is None:
            report.missing_versions += 1
            continue
        baseline = decide_from_features(event.operations, event.personal_data, snapshots, event.budgets)
        if baseline.allowed == event.allowed and baseline.risk_score == event.risk_score:
            report.reproduced += 1
        else:
            report.not_reproduced.append(str(event.event_id))
        candidate_decision = decide_from_features(
            event.operations,
            event.personal_data,
            _with_candidate(snapshots, policy_id, policy_name, candidate),
            event.budgets,
        )
        if candidate_decision.allowed == baseline.allowed:
            continue
        direction = "allow_to_block" if baseline.allowed else "block_to_allow"
        counts = report.flips
        setattr(counts, direction, getattr(counts, direction) + 1)
        if baseline.allowed:
            rules = _rules_that_block(candidate_decision, policy_id) or {SCORE}
        else:
            rules = _rules_that_block(baseline, policy_id) or {SCORE}
        for rule in rules:
            entry = report.by_rule.setdefault(rule, FlipCounts())
            setattr(entry, direction, getattr(entry, direction) + 1)
        for op_type in Counter(op.type for op in event.operations):
            entry = report.by_operation_type.setdefault(op_type, FlipCounts())
            setattr(entry, direction, getattr(entry, direction) + 1)
        if len(report.samples[direction]) < samples:
            report.samples[direction].append(event.request_id)
    return report
