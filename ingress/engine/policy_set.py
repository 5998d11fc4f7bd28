"""A customer's policies with everything a decision needs of them worked out once, when they are loaded.

``PolicySet`` is a tuple of ``PolicySnapshot`` (anything that takes the policies takes it) that also holds their
index, ``prepared``: the policies grouped by mode and rules (policies with equal rules are evaluated once), their
references for the decision event and, from ``VECTOR_FROM`` distinct enforce rule sets on, a ``RuleTable`` that
evaluates them as bit sets. A decision's cost then no longer grows with the number of policies, only with what it
reports (violations and shadow outcomes). ``decide`` indexes a plain sequence of policies on the fly, at the cost
of doing so on every decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter

from ingress.engine.policy import PolicySnapshot
from ingress.engine.rule_table import VECTOR_FROM, RuleTable
from schemas.decision_event import PolicyRef

_GROUP_KEY = attrgetter("group_key")
_REF = attrgetter("ref")


@dataclass(frozen=True, eq=False)
class PolicyIndex:
    refs: tuple[PolicyRef, ...]
    members: dict[str, PolicySnapshot]
    """Group key → one policy of the group (all share mode and rules), in order of first appearance."""
    positions: dict[str, tuple[int, ...]] | None  # group key → where its policies are (prepared sets only)
    enforce: tuple[str, ...]  # the enforce groups' keys, in order: the rows of ``table``
    shadow: tuple[str, ...]
    table: RuleTable | None  # the enforce groups' rules as bit sets, when there are many

    @classmethod
    def of(
        cls, policies: Sequence[PolicySnapshot], *, prepared: bool = True, vector_from: int = VECTOR_FROM
    ) -> PolicyIndex:
        """The index; ``prepared=False`` makes the grouping alone, for one decision (the rest pays off only when
        it is reused)."""
        # Grouping and references in C: all that a decision pays for when its policies come unprepared.
        members = dict(zip(map(_GROUP_KEY, policies), policies, strict=True))
        refs = tuple(map(_REF, policies))
        if not prepared:
            return cls(refs, members, None, (), (), None)
        positions: dict[str, list[int]] = {}
        for position, policy in enumerate(policies):
            positions.setdefault(policy.group_key, []).append(position)
        enforce = tuple(key for key, member in members.items() if member.mode != "shadow")
        return cls(
            refs=refs,
            members=members,
            positions={key: tuple(where) for key, where in positions.items()},
            enforce=enforce,
            shadow=tuple(key for key, member in members.items() if member.mode == "shadow"),
            table=RuleTable.of([members[key].compiled for key in enforce]) if len(enforce) >= vector_from else None,
        )


class PolicySet(tuple[PolicySnapshot, ...]):
    """Policies, in order, with their index (``prepared``). Immutable, like the snapshots it holds."""

    prepared: PolicyIndex

    def __new__(cls, policies: Iterable[PolicySnapshot] = (), *, vector_from: int = VECTOR_FROM) -> PolicySet:
        self = super().__new__(cls, policies)
        self.prepared = PolicyIndex.of(self, vector_from=vector_from)
        return self


def index_of(policies: Sequence[PolicySnapshot]) -> PolicyIndex:
    """The index of a ``PolicySet``, or the grouping alone of other sequences, made for this decision."""
    if isinstance(policies, PolicySet):
        return policies.prepared
    return PolicyIndex.of(policies, prepared=False)
