"""The walk over a request's values: each string normalised and scanned once, under a budget.

A finding is ``PersonalDataFinding(category, path)`` with paths like ``context.user.email``,
``operations[0].prompt`` or ``context.items[2]``. A key that itself contains personal data appears in paths as
``<redacted>``, so that a path never carries a value.

**The budget.** A scanner reads at most ``SCAN_BUDGET_CHARS`` characters of normalised text per request (keys
included). Normalisation can lengthen a string (NFKC turns one U+FDFA into 18 characters), so long non-ASCII
strings are normalised a slice at a time and charged as they grow. When the budget runs out the scan stops and
records one finding of the pseudo-category ``scan_limit`` at the path where it stopped: the decision is then
blocked with a reason naming the limit (fail closed), since what was not read may hold anything.
"""

from __future__ import annotations

from typing import Any, Final

from ingress.engine.personal_data.categories import PAYMENT_CARD
from ingress.engine.personal_data.keys import key_category
from ingress.engine.personal_data.normalise import normalise
from ingress.engine.personal_data.validators import luhn_valid
from ingress.engine.personal_data.values import MIN_SCANNED, text_categories
from schemas.decision_event import PersonalDataFinding

REDACTED_KEY: Final = "<redacted>"
SCAN_LIMIT: Final = "scan_limit"
"""Not personal data: the finding that says the scan stopped at its budget, and where."""
SCAN_BUDGET_CHARS: Final = 1024 * 1024
"""Characters of normalised text one request may have scanned: the largest body, written in ASCII."""
MAX_PATHS_PER_CATEGORY: Final = 50
"""Findings kept per category: every category is reported, the event stays small whatever the request holds."""

_MAX_KEY_IN_PATH = 64
_SLICE = 4096  # characters normalised at a time when a string is not ASCII
_CARD_NUMBER_MIN = 10**12
_CARD_NUMBER_LIMIT = 10**19


class _Exhausted(Exception):
    """The budget ran out; carries nothing (the scanner records where)."""


def _number_category(value: int) -> str | None:
    # A card number sent as a JSON number; only in the issuers' first-digit range, so that epoch milliseconds
    # and other long counters are not mistaken for one.
    if _CARD_NUMBER_MIN <= value < _CARD_NUMBER_LIMIT:
        digits = str(value)
        if digits[0] in "23456" and luhn_valid(digits):
            return PAYMENT_CARD
    return None


def _present(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, dict | list | tuple):
        return bool(value)
    return isinstance(value, int | float)


class Scanner:
    """One walk over a request's values, collecting findings. Each string is scanned once.

    Keys repeat (every item of a list of objects has the same ones), so what a key means is worked out once per
    scanner: a local memo, not a global cache. Paths are only built where something is found or to descend.
    """

    __slots__ = ("_counts", "_found", "_keys", "_left", "exhausted")

    def __init__(self, budget: int = SCAN_BUDGET_CHARS) -> None:
        self._found: dict[tuple[str, str], None] = {}  # an insertion-ordered set of (category, path)
        self._counts: dict[str, int] = {}
        # key -> (path segment, categories found in the key itself, category the key name stands for)
        self._keys: dict[str, tuple[str, tuple[str, ...], str | None]] = {}
        self._left = budget
        self.exhausted = False

    def add(self, category: str, path: str) -> None:
        """Record one finding (once per category and path, at most MAX_PATHS_PER_CATEGORY per category)."""
        finding = (category, path)
        if finding in self._found:
            return
        count = self._counts.get(category, 0)
        if count < MAX_PATHS_PER_CATEGORY:
            self._counts[category] = count + 1
            self._found[finding] = None

    def findings(self) -> list[PersonalDataFinding]:
        return [PersonalDataFinding(category=category, path=path) for category, path in self._found]

    def categories(self, text: str, path: str) -> tuple[str, ...]:
        """The categories in one string (normalised, charged to the budget); at the budget, none, and the scan
        is marked as stopped at ``path``."""
        if self.exhausted:
            return ()
        try:
            return text_categories(self._normalised(text))
        except _Exhausted:
            self.exhausted = True
            self.add(SCAN_LIMIT, path)
            return ()

    def _normalised(self, text: str) -> str:
        if text.isascii() or len(text) <= _SLICE:
            normal = normalise(text)
            self._charge(len(normal))
            return normal
        parts = []
        for start in range(0, len(text), _SLICE):
            part = normalise(text[start : start + _SLICE])
            self._charge(len(part))
            parts.append(part)
        return "".join(parts)

    def _charge(self, characters: int) -> None:
        self._left -= characters
        if self._left < 0:
            raise _Exhausted

    def scan(self, value: Any, path: str) -> None:
        """Add the findings in ``value`` (found at ``path``)."""
        if isinstance(value, str):
            if len(value) >= MIN_SCANNED:
                for category in self.categories(value, path):
                    self.add(category, path)
        elif isinstance(value, dict):
            self._object(value, path)
        elif isinstance(value, list | tuple):
            self._array(value, path)
        elif isinstance(value, int) and not isinstance(value, bool):
            card = _number_category(value)
            if card is not None:
                self.add(card, path)

    def scan_field_names(self, names: list[str], path: str) -> None:
        """Field names a data access reads: a name that means personal data is a finding at its index."""
        for index, name in enumerate(names):
            if self.exhausted:
                return
            named = self._key(name, f"{path}[{index}]")[2]
            if named is not None:
                self.add(named, f"{path}[{index}]")

    def _object(self, value: dict[Any, Any], path: str) -> None:
        keys = self._keys
        for key, item in value.items():
            if self.exhausted:
                return
            known = keys.get(key)
            if known is None:
                known = self._key(key if isinstance(key, str) else str(key), path)
            segment, in_key, named = known
            if in_key or named is not None:
                child = f"{path}.{segment}"
                for category in in_key:
                    self.add(category, child)
                if named is not None and _present(item):
                    self.add(named, child)
            kind = item.__class__
            # Inlined leaves: most values are short strings and numbers with nothing in them.
            if kind is str:
                if len(item) >= MIN_SCANNED:
                    found = self.categories(item, f"{path}.{segment}")
                    for category in found:
                        self.add(category, f"{path}.{segment}")
            elif kind is int:
                if item >= _CARD_NUMBER_MIN:
                    self.scan(item, f"{path}.{segment}")
            elif kind is not float and kind is not bool and item is not None:
                self.scan(item, f"{path}.{segment}")

    def _array(self, value: list[Any] | tuple[Any, ...], path: str) -> None:
        for index, item in enumerate(value):
            if self.exhausted:
                return
            kind = item.__class__
            if kind is str:
                if len(item) >= MIN_SCANNED:
                    found = self.categories(item, f"{path}[{index}]")
                    for category in found:
                        self.add(category, f"{path}[{index}]")
            elif kind is not float and kind is not bool and item is not None:
                self.scan(item, f"{path}[{index}]")

    def _key(self, name: str, path: str) -> tuple[str, tuple[str, ...], str | None]:
        in_key = self.categories(name, path) if len(name) >= MIN_SCANNED else ()
        if in_key:  # the key itself is personal data: it must not appear in any path
            segment = REDACTED_KEY
        elif len(name) > _MAX_KEY_IN_PATH:
            segment = name[:_MAX_KEY_IN_PATH] + "…"
        else:
            segment = name
        known = self._keys[name] = (segment, in_key, key_category(normalise(name)))
        return known


def detect_personal_data(value: Any, path: str = "context") -> list[PersonalDataFinding]:
    """The personal data in ``value`` (a JSON-like value found at ``path``): one finding per category and path."""
    scanner = Scanner()
    scanner.scan(value, path)
    return scanner.findings()
