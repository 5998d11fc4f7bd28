"""Detection quality against Microsoft Presidio's own recognizer test cases, scored per (text, category).

The corpus (``presidio_cases.json``: Presidio's parametrised recognizer tests, its labelled context sentences and
its demo text) is not part of this project; it is read from a folder given by ``PII_CORPUS_DIR`` or from
``../shared/pii-corpus`` beside the checkout when present. Nothing of it is copied here.

Each text is labelled with the categories it holds. A recognizer test of entity E whose ``expected_len`` is 0 is a
negative for E's category; any other case labels the text positive for its entities. A detector's answer for a
text is the set of categories it reports. Scoring per category C:

* a true positive is a text positive for C in which C is reported, a false negative one in which it is not;
* a false positive is a text *not* positive for C in which C is reported (a negative case of C, or any text
  about another entity: a phone number reported in an IBAN test case is a false positive for phone).

Loopback, unspecified and broadcast addresses (``127.0.0.1``, ``::1``, ``0.0.0.0``, ``255.255.255.255``) identify
no one and are not reported on purpose: a text whose only addresses are of that kind is left out of the IP
address figures (for every detector alike) and counted apart as ``ip_excluded``.

Texts about entities we do not report (URLs, crypto wallets, MAC addresses, other countries' ids) are negatives
for every category, except that a text about a foreign tax id, passport or national id is not counted against
ours of the same kind. Bare numbers with no context word (``912803456`` as a passport) are positives in
Presidio's tests but scored by Presidio itself at 0.01-0.05: they are reported apart as ``bare`` and left out of
the context categories' recall, since we leave them undetected on purpose.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORPUS_FILE = "presidio_cases.json"

ENTITY_CATEGORY = {
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone",
    "CREDIT_CARD": "payment_card",
    "IBAN_CODE": "iban",
    "US_SSN": "ssn",
    "IP_ADDRESS": "ip_address",
    "US_PASSPORT": "passport",
    "US_BANK_NUMBER": "bank_account",
    "ABA_ROUTING_NUMBER": "bank_account",
    "US_DRIVER_LICENSE": "drivers_license",
    "US_ITIN": "tax_id",
}
SHARED = ("email", "phone", "payment_card", "iban", "ssn", "ip_address")
"""The categories both detectors find in free text without a context word."""
CONTEXT = ("passport", "bank_account", "drivers_license", "tax_id")
"""The categories found only near a word that names them (and ITIN by its own format)."""
# Foreign identifiers of a kind we report: not held against the category of the same kind.
_KIN = {"IN_PAN": "tax_id", "PH_TIN": "tax_id", "IN_PASSPORT": "passport", "FIN": "national_id"}
# A text with no word of three letters is a bare value: no context word can name what it is.
_WORD = re.compile(r"[^\W\d_]{3}")

Detector = Callable[[str], Iterable[str]]


@dataclass(frozen=True)
class Case:
    text: str
    positive: frozenset[str]
    negative: frozenset[str]
    kin: frozenset[str]
    bare: bool
    unidentifying_ip: bool = False


@dataclass
class Score:
    true_positive: int = 0
    false_negative: int = 0
    false_positive: int = 0
    misses: list[str] = field(default_factory=list)
    false_alarms: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        found = self.true_positive + self.false_negative
        return self.true_positive / found if found else 1.0

    @property
    def precision(self) -> float:
        reported = self.true_positive + self.false_positive
        return self.true_positive / reported if reported else 1.0


def corpus_dir() -> Path | None:
    """Where the corpus is, or None: ``PII_CORPUS_DIR``, else ``../shared/pii-corpus`` beside the checkout."""
    configured = os.environ.get("PII_CORPUS_DIR")
    candidates = [Path(configured)] if configured else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "pii-corpus")
    for candidate in candidates:
        if (candidate / CORPUS_FILE).is_file():
            return candidate
    return None


def load_cases(folder: Path) -> list[Case]:
    """The corpus's cases, merged per text (a text may be the subject of several tests)."""
    raw = json.loads((folder / CORPUS_FILE).read_text(encoding="utf-8"))["cases"]
    merged: dict[str, dict[str, set[str] | bool]] = {}
    for item in raw:
        text = item["text"]
        if not text:
            continue
        entry = merged.setdefault(text, {"positive": set(), "negative": set(), "kin": set(), "bare": False})
        entities = [item["entity"]] if item.get("entity") else list(item.get("entities") or [])
        for entity in entities:
            category = ENTITY_CATEGORY.get(entity)
            target = _bucket(entry, category, entity, item.get("expected_len"))
            if target is not None:
                target.add(category or _KIN[entity])
        if _WORD.search(text) is None and item.get("entity") != "US_ITIN":
            entry["bare"] = True
    return [
        Case(
            text=text,
            positive=frozenset(entry["positive"]),  # type: ignore[arg-type]
            negative=frozenset(entry["negative"]),  # type: ignore[arg-type]
            kin=frozenset(entry["kin"]),  # type: ignore[arg-type]
            bare=bool(entry["bare"]),
            unidentifying_ip=_only_unidentifying_addresses(text),
        )
        for text, entry in merged.items()
    ]


_ADDRESS_LIKE = re.compile(r"[0-9A-Fa-f:.]*[:.][0-9A-Fa-f:.]*")


def _only_unidentifying_addresses(text: str) -> bool:
    """Whether the text holds IP addresses and every one is loopback, unspecified, 0.x or broadcast."""
    seen = False
    for token in _ADDRESS_LIKE.findall(text):
        try:
            address = ipaddress.ip_address(token.strip(".:") if "::" not in token else token)
        except ValueError:
            continue
        seen = True
        first_octet_zero = address.version == 4 and str(address).startswith("0.")
        broadcast = address.version == 4 and str(address) == "255.255.255.255"
        if not (address.is_loopback or address.is_unspecified or first_octet_zero or broadcast):
            return False
    return seen


def _bucket(entry: dict[str, Any], category: str | None, entity: str, expected: int | None) -> set[str] | None:
    bucket: set[str]
    if category is None:
        if entity not in _KIN:
            return None
        bucket = entry["kin"]
    else:
        bucket = entry["negative"] if expected == 0 else entry["positive"]
    return bucket


def score(cases: list[Case], detect: Detector, categories: Iterable[str]) -> dict[str, Score]:
    """Per category, the detector's confusion counts over the cases."""
    scores = {category: Score() for category in categories}
    for case in cases:
        reported = set(detect(case.text))
        for category, result in scores.items():
            if category == "ip_address" and case.unidentifying_ip:
                continue  # loopback and the like: not reported on purpose, scored apart
            positive = category in case.positive
            if positive and category in CONTEXT and case.bare:
                continue  # a bare value with no context word: undetected on purpose, scored apart
            if positive:
                if category in reported:
                    result.true_positive += 1
                else:
                    result.false_negative += 1
                    result.misses.append(case.text)
            elif category in reported and category not in case.kin:
                result.false_positive += 1
                result.false_alarms.append(case.text)
    return scores


def excluded_addresses(cases: list[Case]) -> int:
    """How many texts were left out of the IP address figures (their addresses identify no one)."""
    return sum(1 for case in cases if case.unidentifying_ip)


def totals(scores: dict[str, Score], categories: Iterable[str]) -> Score:
    """The counts of several categories added up (micro-averaged)."""
    total = Score()
    for category in categories:
        total.true_positive += scores[category].true_positive
        total.false_negative += scores[category].false_negative
        total.false_positive += scores[category].false_positive
    return total


def seconds_per_pass(cases: list[Case], detect: Detector, minimum_s: float = 0.5) -> float:
    """CPU seconds for one pass of the detector over every text (best of repeated passes for at least minimum_s)."""
    best = float("inf")
    spent = 0.0
    while spent < minimum_s or best == float("inf"):
        start = time.process_time()
        for case in cases:
            detect(case.text)
        elapsed = time.process_time() - start
        best = min(best, elapsed)
        spent += elapsed
    return best


def large_text(cases: list[Case], size: int = 1024 * 1024) -> str:
    """About ``size`` characters of the corpus's texts, one after another: the same large input for both sides."""
    unit = ". ".join(case.text for case in cases) + ". "
    return (unit * (size // len(unit) + 1))[:size]


def report(scores: dict[str, Score]) -> dict[str, dict[str, float | int]]:
    """The figures as plain data: recall, precision and counts per category, and the six shared ones together."""
    figures: dict[str, dict[str, float | int]] = {}
    for category, result in scores.items():
        figures[category] = {
            "recall": round(result.recall, 3),
            "precision": round(result.precision, 3),
            "tp": result.true_positive,
            "fn": result.false_negative,
            "fp": result.false_positive,
        }
    shared = [category for category in SHARED if category in scores]
    if shared:
        total = totals(scores, shared)
        figures["all_shared"] = {
            "recall": round(total.recall, 3),
            "precision": round(total.precision, 3),
            "tp": total.true_positive,
            "fn": total.false_negative,
            "fp": total.false_positive,
        }
    return figures


def ours(text: str) -> tuple[str, ...]:
    """Our detector on one text, as the check path runs it."""
    from ingress.engine.personal_data import text_categories

    return text_categories(text)
