"""Many rule sets evaluated at once: each rule set is a bit, each condition a set of bits (a Python int).

A customer with hundreds of policies of different rules would cost a Python call per rule set and decision. Here a
decision costs a few dozen operations on integers of one bit per rule set, done in C, whatever their number:

* **Hard rules.** Which rule sets a request breaks is a union of precomputed sets: those that block personal data,
  those that restrict models and do not allow one of the request's, and those whose ``max_tokens`` or
  ``max_external_calls`` is below the request's (a sorted list of the limits and the set of rule sets below each).
* **Scores.** A rule set's score depends on the request only through four facts: personal data found, an unknown
  operation, an external model call it does not allow, a dataset at least as large as its limits. The first two
  hold for every rule set or none; the last two split the rule sets into at most four classes. For each of the
  sixteen combinations the rule sets are ranked once, into buckets of equal score and threshold, best first; the
  top rule set of a class is the lowest bit of the first bucket that meets the class.

``decision.py`` uses it from ``VECTOR_FROM`` distinct enforce rule sets on; below, its per-rule-set loop is cheaper.
Both compute the same scores, broken rules and ranking (``_scorer`` and ``_rank_enforced``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from ingress.engine.policy import CompiledRules

VECTOR_FROM: Final = 32
"""Distinct enforce rule sets from which a decision evaluates them as bit sets (below, one Python call each)."""

MAX_EXTERNAL_MODEL_CALLS: Final = 8
"""Above this many external model calls in one request, the per-rule-set loop counts them instead."""


class ModelCall(Protocol):
    @property
    def model(self) -> str: ...


class Features(Protocol):
    """What the table reads of a decision's features (``decision._Features``)."""

    @property
    def personal_paths(self) -> tuple[str, ...]: ...
    @property
    def external_models(self) -> Sequence[ModelCall]: ...
    @property
    def model_names(self) -> frozenset[str]: ...
    @property
    def max_llm_tokens(self) -> int: ...
    @property
    def external_calls(self) -> int: ...
    @property
    def max_rows(self) -> int: ...
    @property
    def max_bytes(self) -> int: ...
    @property
    def unknown(self) -> tuple[object, ...]: ...


def _bits(flags: Sequence[bool]) -> int:
    mask = 0
    for position, flag in enumerate(flags):
        if flag:
            mask |= 1 << position
    return mask


def _count_at_most(values: Sequence[int], limit: int) -> int:
    """How many of the ascending ``values`` are ``<= limit`` (a binary search)."""
    low, high = 0, len(values)
    while low < high:
        middle = (low + high) // 2
        if values[middle] <= limit:
            low = middle + 1
        else:
            high = middle
    return low


@dataclass(frozen=True, slots=True)
class _Limits:
    """One numeric limit of every rule set that sets it: the distinct values ascending, and for each prefix of them
    the set of rule sets whose limit lies in it."""

    values: tuple[int, ...]
    prefixes: tuple[int, ...]  # prefixes[k]: rule sets whose limit is one of the k smallest values

    @classmethod
    def of(cls, limits: Sequence[int | None]) -> _Limits:
        by_value: dict[int, int] = {}
        for position, limit in enumerate(limits):
            if limit is not None:
                by_value[limit] = by_value.get(limit, 0) | (1 << position)
        values = tuple(sorted(by_value))
        prefixes = [0]
        for value in values:
            prefixes.append(prefixes[-1] | by_value[value])
        return cls(values, tuple(prefixes))

    def at_most(self, limit: int) -> int:
        return self.prefixes[_count_at_most(self.values, limit)]

    def below(self, limit: int) -> int:
        return self.prefixes[_count_at_most(self.values, limit - 1)]


@dataclass(frozen=True, slots=True)
class _Ranking:
    """The rule sets ranked under one combination of the four facts."""

    scores: tuple[int, ...]
    buckets: tuple[tuple[int, bool], ...]  # (rule sets of equal score and threshold, whether they block), best first


@dataclass(frozen=True, eq=False)
class RuleTable:
    """The rule sets of one policy set, in order; built once per policy set, read-only afterwards."""

    size: int
    thresholds: tuple[int, ...]
    restricts_models: int  # allowed_models is set
    allows: dict[str, int]  # a model named in some allowed_models → the rule sets that allow it
    blocks_personal_data: int
    max_tokens: _Limits
    max_external_calls: _Limits
    large_rows: _Limits
    large_bytes: _Limits
    rankings: dict[tuple[bool, bool, bool, bool], _Ranking]  # (personal, unknown, external, large) → ranking

    @classmethod
    def of(cls, rules: Sequence[CompiledRules]) -> RuleTable:
        allows: dict[str, int] = {}
        for position, r in enumerate(rules):
            for model in r.allowed_models or ():
                allows[model] = allows.get(model, 0) | (1 << position)
        thresholds = tuple(r.threshold for r in rules)
        rankings = {
            (personal, unknown, external, large): _ranking(rules, personal, unknown, external, large)
            for personal in (False, True)
            for unknown in (False, True)
            for external in (False, True)
            for large in (False, True)
        }
        return cls(
            size=len(rules),
            thresholds=thresholds,
            restricts_models=_bits([r.allowed_models is not None for r in rules]),
            allows=allows,
            blocks_personal_data=_bits([r.block_personal_data for r in rules]),
            max_tokens=_Limits.of([r.max_tokens for r in rules]),
            max_external_calls=_Limits.of([r.max_external_calls for r in rules]),
            large_rows=_Limits.of([r.large_dataset_rows for r in rules]),
            large_bytes=_Limits.of([r.large_dataset_bytes for r in rules]),
            rankings=rankings,
        )

    def handles(self, features: Features) -> bool:
        return len(features.external_models) <= MAX_EXTERNAL_MODEL_CALLS

    def evaluate(self, features: Features) -> tuple[tuple[int, int], tuple[int, int] | None, list[int]]:
        """(top rule set, its score), (deciding rule set, its score) or None, and the rule sets broken, in order.

        Top: the highest score; ties: the lower threshold, then the earlier rule set. Deciding: the top among the
        rule sets whose score reaches their threshold.
        """
        everyone = (1 << self.size) - 1
        personal = bool(features.personal_paths)
        # penalised[j]: the rule sets that penalise at least j of the external model calls (a bit-sliced count).
        penalised = [everyone]
        for call in features.external_models:
            refused = everyone & ~self.allows.get(call.model, 0)
            penalised.append(0)
            for j in range(len(penalised) - 1, 0, -1):
                penalised[j] |= penalised[j - 1] & refused
        broken = self.blocks_personal_data if personal else 0
        for model in features.model_names:
            broken |= self.restricts_models & ~self.allows.get(model, 0)
        if features.max_llm_tokens >= 0:
            broken |= self.max_tokens.below(features.max_llm_tokens)
        penalised.append(0)
        for j in range(len(penalised) - 1):
            exactly = penalised[j] & ~penalised[j + 1]
            broken |= exactly & self.max_external_calls.below(features.external_calls + j)
        external = penalised[1]
        large = 0
        if features.max_rows >= 0 or features.max_bytes >= 0:
            large = self.large_rows.at_most(features.max_rows) | self.large_bytes.at_most(features.max_bytes)
        unknown = bool(features.unknown)
        top: tuple[int, int, int] | None = None  # (rank key, rule set, score)
        decider: tuple[int, int, int] | None = None
        for is_external in (True, False):
            for is_large in (True, False):
                members = (external if is_external else everyone & ~external) & (
                    large if is_large else everyone & ~large
                )
                if not members:
                    continue
                ranking = self.rankings[personal, unknown, is_external, is_large]
                top = self._best(ranking, members, top, blocking=False)
                decider = self._best(ranking, members, decider, blocking=True)
        assert top is not None  # noqa: S101 - the classes cover every rule set, and there is at least one
        return (top[1], top[2]), (decider[1], decider[2]) if decider else None, _positions(broken)

    def _best(
        self, ranking: _Ranking, members: int, best: tuple[int, int, int] | None, *, blocking: bool
    ) -> tuple[int, int, int] | None:
        for bucket, blocks in ranking.buckets:
            if blocking and not blocks:
                continue
            found = bucket & members
            if found:
                position = (found & -found).bit_length() - 1
                score = ranking.scores[position]
                key = (score * 101 + 100 - self.thresholds[position]) * self.size + self.size - 1 - position
                return (key, position, score) if best is None or key > best[0] else best
        return best


def _positions(mask: int) -> list[int]:
    found = []
    while mask:
        lowest = mask & -mask
        found.append(lowest.bit_length() - 1)
        mask ^= lowest
    return found


def _ranking(rules: Sequence[CompiledRules], personal: bool, unknown: bool, external: bool, large: bool) -> _Ranking:
    scores = tuple(
        min(
            (r.personal_data_points if personal else 0)
            + (r.external_model_call_points if external else 0)
            + (r.large_dataset_points if large else 0)
            + (r.unknown_operation_points if unknown else 0),
            100,
        )
        for r in rules
    )
    buckets: dict[tuple[int, int], int] = {}
    for position, (score, r) in enumerate(zip(scores, rules, strict=True)):
        buckets[score, r.threshold] = buckets.get((score, r.threshold), 0) | (1 << position)
    ordered = sorted(buckets.items(), key=lambda item: (-item[0][0], item[0][1]))
    return _Ranking(scores, tuple((mask, score >= threshold) for (score, threshold), mask in ordered))
