"""Personal data in free text: candidates found by patterns that cannot backtrack far, confirmed by validators.

One compiled alternation finds every candidate but IPv6 in one pass. It starts with one character class (the
first character of every kind of candidate), so the regex engine skips most of any text in C. Each alternative
then checks that the character before it does not continue a token (a word, a number, a signed or dotted value),
so inside a long run only the run's first character can start a candidate; and every repetition in every
alternative is bounded or possessive. A start therefore costs a bounded number of steps whatever follows it, and
the search resumes after each candidate: the scan is linear in the text. ``tests/unit/test_detection_cost.py``
holds the worst shapes we know for each alternative and checks that the cost grows linearly.

Numbers are one alternative: up to twelve digit groups joined by single spaces, dots or dashes (parentheses
around a group allowed). Which kind of number a candidate is (card, SSN, ITIN, phone, bank account, routing
number, passport) is decided in Python from its groups, a validator, and the words just before it
(``context.py``): "account number 945456787654" is a bank account, "945456787654" alone is nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from ingress.engine.personal_data import context
from ingress.engine.personal_data.categories import (
    BANK_ACCOUNT,
    DATE_OF_BIRTH,
    DRIVERS_LICENSE,
    EMAIL,
    IBAN,
    IP_ADDRESS,
    PASSPORT,
    PAYMENT_CARD,
    PHONE,
    SSN,
    TAX_ID,
)
from ingress.engine.personal_data.validators import (
    IBAN_LENGTHS,
    aba_valid,
    card_valid,
    iban_valid,
    ipv4_identifies,
    ipv6_identifies,
    itin_valid,
    ssn_valid,
)

# The shortest value any pattern can match ("a@b.co", "1.2.3.4" is 7): shorter strings are not scanned.
MIN_SCANNED: Final = 6

_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\.?"
_ORDINAL = r"(?:st|nd|rd|th)?"
_DATE = (
    r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"  # 1990-01-15
    r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"  # 15/01/1990, 01.15.90
    rf"|\d{{1,2}}{_ORDINAL} {{1,3}}(?:of {{1,3}})?{_MONTH} {{1,3}}\d{{4}}"  # 15 March 1990
    rf"|{_MONTH} {{1,3}}\d{{1,2}}{_ORDINAL},? {{1,3}}\d{{4}})"  # March 15, 1990
)
_DOB_TEXT = (
    # "born on <date>", "birth date: <date>", "birthday <date>", "date of birth <date>", "DOB <date>". The gaps
    # are bounded: an unbounded gap before an optional colon is what let "born" + 4000 spaces take seconds.
    r"(?P<dob>(?i:(?<=b)(?:orn(?: {1,3}on)?|irth {0,3}(?:date|day))|(?<=d)(?:ate {1,3}of {1,3}birth|\.?o\.?b\.?))"
    rf" {{0,3}}[:\-]? {{0,3}}(?i:{_DATE}))"
)
_LOCAL_CHARS = r"\w.!#$%&'*+/=?^`{|}~\-"
_EMAIL = (
    # Anchored at "@": a local-part character before it, then a domain of at most 32 labels.
    rf"(?P<email>(?<=[{_LOCAL_CHARS}]@)"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){1,32}(?:[A-Za-z]{2,24}|(?i:xn--)[A-Za-z0-9\-]{1,59})"
    r"(?![A-Za-z0-9\-]))"
)
# An IBAN in capitals or not, compact or in groups of spaces or dashes.
_IBAN = r"(?P<iban>(?<=[A-Z])[A-Za-z]\d{2}(?:[ \-]?[A-Za-z0-9]){11,30})"
# A lower-case IBAN is found from its first digit (the class of first characters has no lower-case letters but
# b and d, which keeps prose fast): two lower-case letters at the start of a word, then the digits.
_IBAN_LOWER = r"(?P<iban_lower>(?<=(?<![A-Za-z0-9])[a-z]{2}\d)\d(?:[ \-]?[a-z0-9]){11,30})"
_IPV4 = r"(?P<ipv4>(?<=\d)\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?!\d|\.\d{1,3}\.))"
# Up to twelve groups of digits, each possessive; single separators between them, or none after a ")". A digit
# must follow the first character (two in a row, or one after "(" or "+"), then six more of a number's alphabet:
# every number we report has eight digits or more, and lists of single digits are passed over in C.
_NUMBER = (
    r"(?P<number>(?=\d[\d() .\-]{6})(?:(?<=\d)\d*+|(?<=\+)\(?+\d++|(?<=\()\d{1,5}(?=\)))\)?+"
    r"(?:(?:[ .\-]|(?<=\)))\(?+\d++\)?+){0,11}+(?![\-:][A-Za-z]|[A-Za-z]))"
)

_VALUE_PATTERN: Final = re.compile(
    r"[0-9A-Z+(@bd](?:"
    + _EMAIL
    + "|"
    + _IBAN_LOWER
    + r"|(?<![\w+\-.].)(?:"
    + "|".join((_DOB_TEXT, _IBAN, _IPV4, _NUMBER))
    + "))"
)
# IPv6 needs "::" or seven colons; only strings that have them are scanned for it. The run is bounded (45 is
# the longest address with an embedded IPv4) and starts where a run of its characters starts.
_IPV6: Final = re.compile(r"(?<![0-9A-Fa-f:.])(?=[0-9A-Fa-f.]{0,40}:[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:.]{2,45}(?![\w:])")
# Hex identifiers (UUIDs, hashes) are blanked before numbers are looked for: their digit runs are not numbers.
_HEX_ID: Final = re.compile(
    r"(?<![0-9A-Za-z\-])(?:[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"
    r"|(?=[0-9a-fA-F]{16})(?=\d{0,15}[a-f])[0-9a-f]{16,64}+)(?![0-9A-Za-z])"
)
_GROUP: Final = re.compile(r"([ .\-]?)(\()?(\d+)\)?")
# Image and document names look like addresses ("logo@2x.png"); a one-label domain with such a "TLD" is a file.
_FILE_SUFFIXES: Final = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "pdf", "ico", "bmp", "tif", "tiff"})


def _email(candidate: str, _: str, __: str, ___: int) -> str | None:
    domain, _dot, suffix = candidate[1:].rpartition(".")  # the candidate starts at "@"
    if "." not in domain and suffix.lower() in _FILE_SUFFIXES:
        return None
    return EMAIL


def _dob(_: str, __: str, ___: str, ____: int) -> str | None:
    return DATE_OF_BIRTH


def _iban(candidate: str, _: str, __: str, ___: int) -> str | None:
    compact = candidate.replace(" ", "").replace("-", "")
    expected = IBAN_LENGTHS.get(compact[:2].upper())
    # The candidate may run into following words ("… 3000 EUR"): only the country's length is the IBAN.
    if expected is None or len(compact) < expected:
        return None
    iban = compact[:expected]
    if not (iban.isupper() or iban.islower()):
        return None  # "LV80 bANK 0000 4351 9500 1": IBANs are written in one case
    return IBAN if iban_valid(iban.upper()) else None


def _iban_lower(candidate: str, text: str, lower: str, start: int) -> str | None:
    return _iban(text[start - 2 : start] + candidate, text, lower, start - 2)


def _ipv4(candidate: str, _: str, __: str, ___: int) -> str | None:
    return IP_ADDRESS if ipv4_identifies(candidate) else None


def _number(candidate: str, _: str, lower: str, start: int) -> str | None:
    groups = _GROUP.findall(candidate)  # (separator before, "(" or "", digits) per group
    count = sum(len(digits) for _sep, _paren, digits in groups)
    if count < 8 or (candidate[0] != "+" and count == len(groups)):
        return None  # nothing we report is shorter, or all single digits (counts, years, versions, dates, lists)
    if candidate[0] == "+":
        return PHONE if count <= 15 else None
    named = context.named_before(lower, start)
    if named is not None:
        found = _named_number(named, groups, count)
        if found is not None or named in context.CLAIMING:
            return found  # "passport no. 912803456" is a passport number or nothing: never an ITIN as well
    if len(groups) == 1:
        return _compact_number(groups[0][2])
    return _grouped_number(groups)


Groups = list[tuple[str, str, str]]


def _named_number(named: str, groups: Groups, count: int) -> str | None:
    """A number the words before it name: accepted in shapes that alone would be too common to report."""
    accepts = _NAMED_SHAPES.get(named)
    if accepts is None:
        return None
    category, accepted = accepts
    return category if accepted(groups, count) else None


def _nine_is(valid: Callable[[str], bool]) -> Callable[[Groups, int], bool]:
    def accepted(groups: Groups, _count: int) -> bool:
        nine = _nine(groups, 0)
        return nine is not None and valid(nine)

    return accepted


_NAMED_SHAPES: Final[dict[str, tuple[str, Callable[[Groups, int], bool]]]] = {
    PASSPORT: (PASSPORT, lambda groups, count: count <= 9 and len(groups) == 1),
    DRIVERS_LICENSE: (DRIVERS_LICENSE, lambda groups, count: count <= 15 and len(groups) <= 2),
    BANK_ACCOUNT: (BANK_ACCOUNT, lambda groups, count: count <= 17 and len(groups) <= 4),
    context.ROUTING: (BANK_ACCOUNT, lambda groups, _count: len(groups) == 1 and aba_valid(groups[0][2])),
    # "SSN 912-70-1234" is no SSN, whatever else it may be; a named SSN may be a published sample.
    SSN: (SSN, _nine_is(lambda nine: ssn_valid(nine, named=True))),
    TAX_ID: (TAX_ID, _nine_is(itin_valid)),
    PHONE: (PHONE, lambda groups, count: 9 <= count <= 12 and len(groups) <= 4),
}


def _compact_number(digits: str) -> str | None:
    """A number written without separators: a card, an SSN or ITIN, or a Chinese mobile number."""
    count = len(digits)
    if count == 9:
        if ssn_valid(digits):
            return SSN
        return TAX_ID if itin_valid(digits) else None
    if count == 11 and digits[0] == "1" and digits[1] in "3456789":
        return PHONE  # 1, a network digit, nine more
    return PAYMENT_CARD if card_valid(digits) else None


def _grouped_number(groups: Groups) -> str | None:
    """The first card, SSN, ITIN or phone number among the groups (a run may hold several numbers, or one after
    a postcode: "SD 20241 440-600-5124"). Each start is tested by the lengths of the groups after it: constant
    work per group."""
    lengths = [len(digits) for _sep, _paren, digits in groups]
    last = len(groups)
    for first in range(last):
        length = lengths[first]
        if length == 1 or (first and not _starts_apart(groups, lengths, first)):
            continue
        if length == 4 and first + 2 < last:
            found = _card(groups, lengths, first)
            if found is not None:
                return found
        nine = _nine(groups, first)
        if nine is not None:
            if ssn_valid(nine):
                return SSN
            if itin_valid(nine):
                return TAX_ID
        if _phone(groups, lengths, first):
            return PHONE
    return None


def _starts_apart(groups: Groups, lengths: list[int], first: int) -> bool:
    """Whether a number may start at group ``first`` of a run: after a different separator than its own
    ("SD 20241 440-600-5124"), or after a country code or trunk of up to three digits ("91-415-555-0132").
    Otherwise the group is the middle of a longer number ("4111 0123 4567 89" holds no phone number)."""
    if lengths[first - 1] <= 3:
        return True
    return first + 1 < len(groups) and groups[first][0] != groups[first + 1][0]


def _card(groups: Groups, lengths: list[int], first: int) -> str | None:
    # 4111 1111 1111 1111, 3782 822463 10005, 4111-1111-1111-1111-110: four digits, then every following group
    # joined by the same separator (a card written in groups ends where its groups end; a Luhn-valid prefix of a
    # longer number is no card), 13-19 digits in all.
    separator = groups[first + 1][0]
    if separator not in (" ", "-"):
        return None
    total = 4
    end = first + 1
    while end < len(groups) and groups[end][0] == separator:
        if lengths[end] > 6:
            return None
        total += lengths[end]
        if total > 19:
            return None
        end += 1
    if total < 13:
        return None
    return PAYMENT_CARD if card_valid("".join(digits for _sep, _paren, digits in groups[first:end])) else None


def _nine(groups: Groups, first: int) -> str | None:
    """The nine digits of an SSN or ITIN written 123456789, 123-45-6789 (one separator), 123-456789 or
    12345-6789, starting at group ``first``."""
    head = groups[first][2]
    if len(head) == 9:
        return head
    if first + 1 >= len(groups):
        return None
    _sep, _paren, second = groups[first + 1]
    if len(head) == 3 and len(second) == 2 and first + 2 < len(groups):
        separator, _paren, third = groups[first + 2]
        if len(third) == 4 and separator == groups[first + 1][0]:
            return head + second + third
        return None
    if (len(head), len(second)) in ((3, 6), (5, 4)) and groups[first + 1][0] == "-":
        return head + second
    return None


def _phone(groups: Groups, lengths: list[int], first: int) -> bool:
    digits = groups[first][2]
    # North American: (415) 555-0132, 415-555-0132, 415 555 0132; the area code starts with 2-9.
    if lengths[first : first + 3] == [3, 3, 4]:
        return digits[0] in "23456789"
    # With a trunk prefix 0: 020 7946 0958, 07700 900123, 01 23 45 67 89, 09-7625400, 090-1234-5678; 9-11 digits
    # in groups of two or more, not the SSN shape.
    if digits[0] != "0" or digits[1] == "0" or lengths[first : first + 3] == [3, 2, 4]:
        return False
    total = 0
    for end in range(first, min(first + 6, len(groups))):
        if lengths[end] < 2:
            return False
        total += lengths[end]
        if total > 11:
            return False
        if end > first and total >= 9 and (end + 1 == len(groups) or total + lengths[end + 1] > 11):
            return True
    return False


_CONFIRM: Final[dict[str, Callable[[str, str, str, int], str | None]]] = {
    "dob": _dob,
    "email": _email,
    "iban": _iban,
    "iban_lower": _iban_lower,
    "ipv4": _ipv4,
    "number": _number,
}
_NONE: Final[tuple[str, ...]] = ()


def text_categories(text: str) -> tuple[str, ...]:
    """The categories of personal data in one (normalised) string, in order of first appearance, each once."""
    if len(text) < MIN_SCANNED:
        return _NONE
    match = _VALUE_PATTERN.search(text)
    colons = ":" in text
    lower = context.lowered(text)
    if match is None and not colons and not context.may_name(lower):
        return _NONE  # the common case: nothing that could be personal data
    found: list[str] = []
    if match is not None and _HEX_ID.search(text) is not None:
        text = _HEX_ID.sub(_blank, text)
        match = _VALUE_PATTERN.search(text)
    while match is not None:
        kind = match.lastgroup
        if kind is not None:
            category = _CONFIRM[kind](match.group(), text, lower, match.start())
            if category is not None and category not in found:
                found.append(category)
        match = _VALUE_PATTERN.search(text, match.end())
    if IP_ADDRESS not in found and colons and ("::" in text or text.count(":") >= 7):
        for candidate in _IPV6.finditer(text):
            if _ipv6_starts_clean(text, candidate.start()) and ipv6_identifies(candidate.group().rstrip(".")):
                found.append(IP_ADDRESS)
                break
    for category in context.named_tokens(text, lower):
        if category not in found:
            found.append(category)
    return tuple(found)


def _ipv6_starts_clean(text: str, start: int) -> bool:
    """An address run right after a word ("text::ffff:192.0.2.1") counts only if it starts with "::" and the
    word is not itself a colon-separated group ("gggg:hhhh::1234" is no address)."""
    if start == 0 or not (text[start - 1].isalnum() or text[start - 1] == "_"):
        return True
    if not text.startswith("::", start):
        return False
    word = start - 1
    while word > 0 and start - word < 45 and (text[word - 1].isalnum() or text[word - 1] == "_"):
        word -= 1
    return word == 0 or text[word - 1] != ":"


def _blank(match: re.Match[str]) -> str:
    return "x" * (match.end() - match.start())
