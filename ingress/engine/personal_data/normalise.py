"""Text as the detectors read it: one spelling for what a reader sees as the same characters.

An end user can hide a value from a pattern without hiding it from a person or a model: a zero-width space or a
soft hyphen inside an e-mail address, full-width digits in a card number, a non-breaking hyphen in an SSN. Before
detection every string is put through NFKC (full-width and other compatibility forms become ASCII), format
characters (Unicode category Cf: zero-width spaces and joiners, soft hyphen, BOM, bidi controls) are removed, and
every dash and space is folded to ``-`` and `` ``. Detection then runs on the normalised text; findings keep the
original paths and categories, and no offset into the text is ever reported, so nothing maps back.

Pure ASCII text (almost every request) is returned as it is, without a copy. Every step is one pass: linear.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final


# Dashes (Pd, and the minus sign) become "-"; spaces (Zs, and the line and paragraph separators) become " ";
# format characters (Cf) are removed.
def _replacement(codepoint: int) -> str | None:
    category = unicodedata.category(chr(codepoint))
    if category == "Cf":
        return ""
    if category == "Pd" or codepoint == 0x2212:
        return "-"
    if category in ("Zs", "Zl", "Zp"):
        return " "
    return None


_TABLE: Final = {
    codepoint: replacement
    for codepoint in range(0x80, 0x110000)
    if (replacement := _replacement(codepoint)) is not None
}


def _character_class(codepoints: list[int]) -> str:
    """A regex character class of ranges: a class of single characters this size is slow to match."""
    ranges: list[list[int]] = []
    for codepoint in codepoints:
        if ranges and ranges[-1][1] == codepoint - 1:
            ranges[-1][1] = codepoint
        else:
            ranges.append([codepoint, codepoint])
    parts = (re.escape(chr(low)) + (f"-{re.escape(chr(high))}" if high > low else "") for low, high in ranges)
    return "[" + "".join(parts) + "]+"


_SPECIAL: Final = re.compile(_character_class(sorted(_TABLE)))


def _fold(match: re.Match[str]) -> str:
    return match.group().translate(_TABLE)


def normalise(text: str) -> str:
    """``text`` with compatibility forms, format characters, dashes and spaces brought to one spelling."""
    if text.isascii():
        return text
    # NFKC first: it maps some characters to dashes and spaces (U+FF0D, U+2011 to U+2010), which are then folded.
    return _SPECIAL.sub(_fold, unicodedata.normalize("NFKC", text))
