"""The words that name a number: "passport", "account number", "routing", "SSN", "driver's license", "tax id".

A bare nine-digit number is too common to call a passport or a bank account; the same number right after "my
passport number is" is one. Two uses, both bounded:

* ``named_before(text, start)``: the category named by the last such word in the 48 characters before a number
  (the number's own words, not a sentence further back). A named number is accepted in shapes a bare one is not.
* ``named_tokens(text)``: passports and driver's licences are often letters and digits ("A12803456",
  "H12234567"), which the number pattern does not see: after each naming word, the next 32 characters are searched
  for one such identifier.

Each naming word costs one bounded look around it, and the words are found by one pass over the text: linear.
"""

from __future__ import annotations

import re
from typing import Final

from ingress.engine.personal_data.categories import BANK_ACCOUNT, DRIVERS_LICENSE, PASSPORT, PHONE, SSN, TAX_ID

ROUTING: Final = "routing"
"""Not a category: a routing number is reported as a bank account, once its ABA checksum holds."""

# Matched in a lower-cased copy, each at the start of a word (a case-insensitive pattern is several times slower).
_WORDS: Final = (
    (PASSPORT, r"passport|travel {0,2}document"),
    (DRIVERS_LICENSE, r"driv(?:er'?s?|ing)[ \-]{0,2}licen[cs]e|dln?\b"),
    (BANK_ACCOUNT, r"bank(?:ing)? {0,2}account|account {0,2}(?:number|no\b|num\b|#)|acct\b"),
    (ROUTING, r"routing|aba\b|rtn\b"),
    (SSN, r"ssns?\b|social {0,2}security|ssid\b"),
    (TAX_ID, r"itins?\b|tax {0,2}payer|tax {0,2}(?:id|identification)|tin\b"),
    (PHONE, r"phone|call\b|tel\b|mobile\b|cell\b|whats ?app|fax\b|sms\b"),
)
_NAMING: Final = re.compile(
    "(?<![a-z0-9_])(?:" + "|".join(f"(?P<{category}>{words})" for category, words in _WORDS) + ")"
)
"""Which category a match names is its group's name."""
CLAIMING: Final = frozenset({PASSPORT, DRIVERS_LICENSE, BANK_ACCOUNT, ROUTING, SSN})
"""Names that claim the number after them: it is that or nothing (never an ITIN as well)."""

_BEFORE: Final = 48
_AFTER: Final = 32
# An identifier of letters and digits: 5-20 characters with at least three digits and one letter ("A12803456",
# "1234567A", "AA1B2**9ABA7"); digit-only numbers are the number pattern's.
_TOKEN: Final = re.compile(r"(?<![\w*])(?=[A-Za-z*]{0,19}\d)[A-Za-z0-9*]{5,20}(?![\w*])")
_TOKEN_CATEGORIES: Final = frozenset({PASSPORT, DRIVERS_LICENSE})
# A passport number: one or two letters and six to nine digits, or digits then a letter.
_PASSPORT: Final = re.compile(r"[A-Za-z]{1,2}\d{6,9}|\d{6,9}[A-Za-z]")


def _category(match: re.Match[str]) -> str:
    group = match.lastgroup
    assert group is not None  # noqa: S101 - every alternative is a named group
    return group


def lowered(text: str) -> str:
    """``text`` in lower case, character for character (anything not ASCII becomes "?", so offsets hold)."""
    if not text.isascii():
        text = text.encode("ascii", "replace").decode("ascii")
    return text.lower()


def may_name(lower: str) -> bool:
    """Whether any naming word is in the lowered text (then identifiers of letters and digits are looked for)."""
    return _NAMING.search(lower) is not None


def named_before(lower: str, start: int) -> str | None:
    """The category the last naming word in the 48 characters before ``start`` names, or None."""
    named = None
    for match in _NAMING.finditer(lower, max(0, start - _BEFORE), start):
        named = _category(match)
    return named


def named_tokens(text: str, lower: str) -> list[str]:
    """Passports and driver's licences written with letters, each right after a word that names it."""
    found: list[str] = []
    for match in _NAMING.finditer(lower):
        category = _category(match)
        if category not in _TOKEN_CATEGORIES or category in found:
            continue
        token = _TOKEN.search(text, match.end(), match.end() + _AFTER)
        while token is not None:
            value = token.group()
            digits = sum(char.isdigit() for char in value)
            if digits >= 3 and digits < len(value) and _plausible(category, value):
                found.append(category)
                break
            token = _TOKEN.search(text, token.end(), match.end() + _AFTER)
    return found


def _plausible(category: str, value: str) -> bool:
    return category != PASSPORT or _PASSPORT.fullmatch(value) is not None
