"""Personal-data detection: which categories appear where. Never the value.

Two signals, both cheap:

* **Values.** Every string is scanned once by one precompiled alternation (strings with ``::`` or seven colons
  also by a small IPv6 pattern); each candidate is then confirmed by a checksum or a range test (Luhn for
  cards, mod-97 for IBANs, the issued ranges for US SSNs, octet ranges for IPv4, ``ipaddress`` for IPv6, digit
  counts and shapes for phone numbers), which keeps false positives on ids, versions, dates and token counts
  low. A JSON number is checked as a card number only.
* **Keys.** A non-empty value under a key that names personal data (``email``, ``ssn``, ``date_of_birth``,
  ``billing_address``…) is a finding of that category even when the value matches no pattern.

A finding is ``PersonalDataFinding(category, path)`` with paths like ``context.user.email``,
``operations[0].prompt`` or ``context.items[2]``. A key that itself contains personal data appears in paths as
``<redacted>``, so that a path never carries a value.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Final

from schemas.decision_event import PersonalDataFinding

EMAIL: Final = "email"
PHONE: Final = "phone"
PAYMENT_CARD: Final = "payment_card"
IBAN: Final = "iban"
SSN: Final = "ssn"
IP_ADDRESS: Final = "ip_address"
DATE_OF_BIRTH: Final = "date_of_birth"
PASSPORT: Final = "passport"
NATIONAL_ID: Final = "national_id"
TAX_ID: Final = "tax_id"
DRIVERS_LICENSE: Final = "drivers_license"
BANK_ACCOUNT: Final = "bank_account"
ADDRESS: Final = "address"
PERSON_NAME: Final = "person_name"

CATEGORIES: Final = (
    EMAIL,
    PHONE,
    PAYMENT_CARD,
    IBAN,
    SSN,
    IP_ADDRESS,
    DATE_OF_BIRTH,
    PASSPORT,
    NATIONAL_ID,
    TAX_ID,
    DRIVERS_LICENSE,
    BANK_ACCOUNT,
    ADDRESS,
    PERSON_NAME,
)

REDACTED_KEY: Final = "<redacted>"
_MAX_KEY_IN_PATH = 64
# The shortest value any pattern can match ("a@b.co", "1.2.3.4" is 7): shorter strings are not scanned.
_MIN_SCANNED = 6

# --- value patterns ---------------------------------------------------------------------------------------------
# One pattern finds every candidate except IPv6 in a single pass. It starts with one character class (the first
# character of every kind of candidate) so that the regex engine skips everything else (most of any text) in C;
# each alternative then checks that first character with a lookbehind, and all but e-mail share one check that
# the character before it does not continue a token (a word, a number, a signed or dotted value). Every
# repetition is bounded and separators are required between digit groups, so no alternative backtracks over a
# long run: the scan is linear (about 15 ms for 64 KiB of adversarial input, well under 1 ms for 1 KiB of text).
# The named group of an alternative holds the candidate without its first character.

_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\.?"
_ORDINAL = r"(?:st|nd|rd|th)?"
_DATE = (
    r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"  # 1990-01-15
    r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"  # 15/01/1990, 01.15.90
    rf"|\d{{1,2}}{_ORDINAL}\s+(?:of\s+)?{_MONTH}\s+\d{{4}}"  # 15 March 1990
    rf"|{_MONTH}\s+\d{{1,2}}{_ORDINAL},?\s+\d{{4}})"  # March 15, 1990
)
_DOB_TEXT = (
    # "born on <date>", "birth date: <date>", "birthday <date>", "date of birth <date>", "DOB <date>"
    r"(?P<dob>(?i:(?<=b)(?:orn(?:\s+on)?|irth\s*(?:date|day))|(?<=d)(?:ate\s+of\s+birth|\.?o\.?b\.?))"
    rf"\s*[:\-]?\s*(?i:{_DATE}))"
)
_LOCAL_CHARS = r"\w.!#$%&'*+/=?^`{|}~\-"
_EMAIL = (
    # Anchored at "@": a local-part character before it, then a domain.
    rf"(?P<email>(?<=[{_LOCAL_CHARS}]@)"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){1,127}(?:[A-Za-z]{2,24}|(?i:xn--)[A-Za-z0-9\-]{1,59})"
    r"(?![A-Za-z0-9\-]))"
)
_IBAN = r"(?P<iban>(?<=[A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]){11,30})"
_CARD = r"(?P<card>(?<=[2-6])\d{3}(?:[ \-]?\d){9,15}(?!\w))"
_SSN = r"(?P<ssn>(?<=\d)\d{2}-\d{2}-\d{4}(?![\w\-]))"
_IPV4 = r"(?P<ipv4>(?<=\d)\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?!\w|\.\d))"
# Phone numbers, by first character. Separators are required between groups (except in compact E.164), which
# keeps the pattern linear and plain numbers (ids, counts, timestamps) out.
_PHONE_AFTER_PLUS = (
    r"(?:[1-9]\d{6,14}"  # +14155550100
    r"|\d{1,3}[ .\-]?(?:\(\d{1,5}\)[ .\-]?)?\d{1,5}(?:[ .\-]\d{1,8}){1,6}"  # +44 20 7946 0958, +1 (555) 123-4567
    r"|\d{1,3}[ .\-]?\(\d{1,5}\)[ .\-]?\d{1,8}(?:[ .\-]\d{1,5}){0,5})"  # +49 (30) 12345678
)
_PHONE_AFTER_PAREN = r"\d{1,5}\)[ .\-]?\d{1,8}(?:[ .\-]\d{1,5}){0,5}"  # (555) 123-4567
_PHONE_AFTER_DIGIT = r"\d{0,4}(?:[ .\-]\d{1,8}){1,6}"  # 555-123-4567, 020 7946 0958, 01 23 45 67 89
_PHONE = (
    r"(?P<phone>"
    rf"(?:(?<=\+){_PHONE_AFTER_PLUS}|(?<=\(){_PHONE_AFTER_PAREN}|(?<=\d){_PHONE_AFTER_DIGIT})(?!\w))"
)

_VALUE_PATTERN: Final = re.compile(
    r"[0-9A-Z+(@bd](?:"
    + _EMAIL
    + r"|(?<![\w+\-.].)(?:"
    + "|".join((_DOB_TEXT, _IBAN, _CARD, _SSN, _IPV4, _PHONE))
    + "))"
)
_PHONE_SHAPE: Final = re.compile(rf"\+{_PHONE_AFTER_PLUS}|\({_PHONE_AFTER_PAREN}|\d{_PHONE_AFTER_DIGIT}")
_PHONE_SEPARATORS: Final = re.compile(r"[ .\-()]+")
# IPv6 needs "::" or seven colons; only strings that have them are scanned for it.
_IPV6: Final = re.compile(
    r"[0-9A-Fa-f:](?<![\w:.].)(?=[0-9A-Fa-f:]{0,38}:[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:]{1,38}(?![\w:])"
)

# Length of the IBAN of each country (SWIFT IBAN registry).
_IBAN_LENGTHS: Final = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
    "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
    "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check used by payment card numbers."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position & 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    """A compact IBAN of its country's length whose ISO 13616 mod-97 check holds."""
    if _IBAN_LENGTHS.get(text[:2]) != len(text) or not text.isalnum() or not text.isascii():
        return False
    rearranged = text[4:] + text[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _digits(text: str) -> str:
    # ASCII only: the pattern's \d also matches other scripts' digits, which no card number is written in.
    return "".join(char for char in text if "0" <= char <= "9")


def _card(text: str) -> str | None:
    digits = _digits(text)
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return PAYMENT_CARD
    # A Luhn-invalid number may still be a phone number written in groups.
    return _phone(text) if _PHONE_SHAPE.fullmatch(text) else None


def _iban(text: str) -> str | None:
    compact = text.replace(" ", "")
    expected = _IBAN_LENGTHS.get(compact[:2])
    # The candidate may run into following words ("… 3000 EUR"): check the country's length only.
    if expected is not None and len(compact) >= expected and iban_valid(compact[:expected]):
        return IBAN
    return None


def _ssn(text: str) -> str | None:
    area, group, serial = text[0:3], text[4:6], text[7:11]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return None
    return SSN


def _ipv4(text: str) -> str | None:
    octets = text.split(".")
    for octet in octets:
        if len(octet) > 1 and octet[0] == "0":  # leading zeros: a version or a code, not an address
            return None
        if int(octet) > 255:
            return None
    first = int(octets[0])
    # 0.x, loopback and broadcast cannot identify anyone.
    if first in (0, 127) or text == "255.255.255.255":
        return None
    return IP_ADDRESS


def _ipv6(text: str) -> str | None:
    if "::" not in text and text.count(":") != 7:
        return None
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return None
    if address.is_unspecified or address.is_loopback:
        return None
    return IP_ADDRESS


def _phone(text: str) -> str | None:
    count = sum(1 for char in text if char.isdigit())
    if text.startswith("+"):
        return PHONE if 8 <= count <= 15 else None
    # National formats: 10 or 11 digits written in groups ("(555) 123-4567", "020 7946 0958", "07700 900123").
    # Eight-digit dates, nine-digit SSN shapes and short counts never reach 10.
    if not 10 <= count <= 11:
        return None
    if "." in text and len(_PHONE_SEPARATORS.split(text.strip("()"))) <= 2:  # a decimal number
        return None
    return PHONE


def _email(_: str) -> str | None:
    return EMAIL


def _dob(_: str) -> str | None:
    return DATE_OF_BIRTH


_CONFIRM: Final = {
    "dob": _dob,
    "email": _email,
    "iban": _iban,
    "card": _card,
    "ssn": _ssn,
    "ipv4": _ipv4,
    "phone": _phone,
}


_NONE: Final[tuple[str, ...]] = ()


def text_categories(text: str) -> tuple[str, ...]:
    """The categories of personal data in one string, in order of first appearance, each once."""
    if len(text) < _MIN_SCANNED:
        return _NONE
    match = _VALUE_PATTERN.search(text)
    if match is None and ":" not in text:  # the common case: nothing that could be personal data
        return _NONE
    found: list[str] = []
    while match is not None:
        kind = match.lastgroup
        if kind is not None:
            category = _CONFIRM[kind](text[match.start() : match.end()])
            if category is not None and category not in found:
                found.append(category)
        match = _VALUE_PATTERN.search(text, match.end())
    if IP_ADDRESS not in found and ("::" in text or text.count(":") >= 7):
        for candidate in _IPV6.finditer(text):
            if _ipv6(candidate.group()) is not None:
                found.append(IP_ADDRESS)
                break
    return tuple(found)


_CARD_NUMBER_MIN = 10**12
_CARD_NUMBER_LIMIT = 10**19


def _number_category(value: int) -> str | None:
    # A card number sent as a JSON number; only in the issuers' first-digit range, so that epoch milliseconds
    # and other long counters are not mistaken for one.
    if _CARD_NUMBER_MIN <= value < _CARD_NUMBER_LIMIT:
        digits = str(value)
        if digits[0] in "23456" and luhn_valid(digits):
            return PAYMENT_CARD
    return None


# --- key names --------------------------------------------------------------------------------------------------
# Keys are split into lower-case words (snake, kebab and camel case alike) and joined: "dateOfBirth" and
# "date_of_birth" both become "dateofbirth". _KEY_NAMES must be the whole key; _KEY_SUFFIXES may also end a longer
# key on a word boundary ("billing_email", "customer_ssn"), which is how an unambiguous name is used in practice.

_KEY_SUFFIXES: Final = {
    **dict.fromkeys(("email", "emails", "emailaddress", "emailaddresses", "emailaddr"), EMAIL),
    **dict.fromkeys(
        (
            "phone",
            "phones",
            "phonenumber",
            "phonenumbers",
            "phoneno",
            "telephone",
            "telephonenumber",
            "mobilenumber",
            "mobilephone",
            "cellphone",
            "cellnumber",
            "msisdn",
        ),
        PHONE,
    ),
    **dict.fromkeys(("ssn", "socialsecuritynumber", "socialsecurityno", "socialsecurity"), SSN),
    **dict.fromkeys(
        (
            "creditcard",
            "creditcardnumber",
            "cardnumber",
            "cardno",
            "ccnumber",
            "debitcard",
            "debitcardnumber",
            "cvv",
            "cvc",
        ),
        PAYMENT_CARD,
    ),
    "iban": IBAN,
    **dict.fromkeys(("bankaccount", "bankaccountnumber", "bankaccountno"), BANK_ACCOUNT),
    **dict.fromkeys(("ip", "ipaddress", "ipaddr", "ipv4", "ipv6"), IP_ADDRESS),
    **dict.fromkeys(("dob", "dateofbirth", "birthdate", "birthday", "birthdt"), DATE_OF_BIRTH),
    **dict.fromkeys(("passport", "passportnumber", "passportno", "passportid"), PASSPORT),
    **dict.fromkeys(
        (
            "nationalid",
            "nationalidnumber",
            "nationalidentifier",
            "nationalidentitynumber",
            "nationalinsurancenumber",
            "idcardnumber",
            "identitycardnumber",
            "personalidnumber",
            "aadhaar",
            "nric",
        ),
        NATIONAL_ID,
    ),
    **dict.fromkeys(("taxid", "taxidentificationnumber", "taxpayerid", "tin", "itin"), TAX_ID),
    **dict.fromkeys(
        (
            "driverslicense",
            "driverlicense",
            "driverslicence",
            "driverlicence",
            "drivinglicense",
            "drivinglicence",
            "driverslicensenumber",
            "driverlicensenumber",
        ),
        DRIVERS_LICENSE,
    ),
    **dict.fromkeys(
        (
            "homeaddress",
            "streetaddress",
            "postaladdress",
            "mailingaddress",
            "billingaddress",
            "shippingaddress",
            "residentialaddress",
        ),
        ADDRESS,
    ),
    **dict.fromkeys(
        ("firstname", "lastname", "fullname", "surname", "givenname", "familyname", "middlename", "maidenname"),
        PERSON_NAME,
    ),
}
# Ambiguous alone at the end of a longer key ("server_address", "mac_address"), so only as the whole key.
_KEY_NAMES: Final = {
    **_KEY_SUFFIXES,
    **dict.fromkeys(("address", "addressline1", "addressline2", "street", "streetline1"), ADDRESS),
}
_KEY_WORD: Final = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def key_category(key: str) -> str | None:
    """The personal-data category a key name stands for, or None (``user_id``, ``department``…)."""
    words = _KEY_WORD.findall(key)
    if not words:
        return None
    whole = "".join(words).lower()
    category = _KEY_NAMES.get(whole)
    if category is not None or len(words) == 1:
        return category
    for start in range(1, len(words)):
        category = _KEY_SUFFIXES.get("".join(words[start:]).lower())
        if category is not None:
            return category
    return None


def _present(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, dict | list | tuple):
        return bool(value)
    return isinstance(value, int | float)


# --- the walk ---------------------------------------------------------------------------------------------------

MAX_PATHS_PER_CATEGORY: Final = 50
"""Findings kept per category: every category is reported, the event stays small whatever the request holds."""


class Scanner:
    """One walk over a request's values, collecting findings. Each string is scanned once.

    Keys repeat (every item of a list of objects has the same ones), so what a key means is worked out once per
    scanner: a local memo, not a global cache. Paths are only built where something is found or to descend.
    """

    __slots__ = ("_counts", "_found", "_keys")

    def __init__(self) -> None:
        self._found: dict[tuple[str, str], None] = {}  # an insertion-ordered set of (category, path)
        self._counts: dict[str, int] = {}
        # key -> (path segment, categories found in the key itself, category the key name stands for)
        self._keys: dict[str, tuple[str, tuple[str, ...], str | None]] = {}

    def add(self, category: str, path: str) -> None:
        """Record one finding (once per category and path, at most MAX_PATHS_PER_CATEGORY per category)."""
        finding = (category, path)
        if finding in self._found:
            return
        count = self._counts.get(category, 0)
        if count < MAX_PATHS_PER_CATEGORY:
            self._counts[category] = count + 1
            self._found[finding] = None

    def _add_all(self, categories: tuple[str, ...], path: str) -> None:
        for category in categories:
            self.add(category, path)

    def findings(self) -> list[PersonalDataFinding]:
        return [PersonalDataFinding(category=category, path=path) for category, path in self._found]

    def scan(self, value: Any, path: str) -> None:
        """Add the findings in ``value`` (found at ``path``)."""
        if isinstance(value, str):
            self._add_all(text_categories(value), path)
        elif isinstance(value, dict):
            self._object(value, path)
        elif isinstance(value, list | tuple):
            self._array(value, path)
        elif isinstance(value, int) and not isinstance(value, bool):
            category = _number_category(value)
            if category is not None:
                self.add(category, path)

    def scan_field_names(self, names: list[str], path: str) -> None:
        """Field names a data access reads: a name that means personal data is a finding at its index."""
        for index, name in enumerate(names):
            category = key_category(name)
            if category is not None:
                self.add(category, f"{path}[{index}]")

    def _object(self, value: dict[Any, Any], path: str) -> None:
        keys = self._keys
        for key, item in value.items():
            known = keys.get(key)
            if known is None:
                known = self._key(key if isinstance(key, str) else str(key))
            segment, in_key, named = known
            if in_key or named is not None:
                child = f"{path}.{segment}"
                self._add_all(in_key, child)
                if named is not None and _present(item):
                    self.add(named, child)
            kind = item.__class__
            # Inlined leaves: most values are short strings and numbers with nothing in them.
            if kind is str:
                if len(item) >= _MIN_SCANNED:
                    found = text_categories(item)
                    if found:
                        self._add_all(found, f"{path}.{segment}")
            elif kind is int:
                if item >= _CARD_NUMBER_MIN:
                    self.scan(item, f"{path}.{segment}")
            elif kind is not float and kind is not bool and item is not None:
                self.scan(item, f"{path}.{segment}")

    def _array(self, value: list[Any] | tuple[Any, ...], path: str) -> None:
        for index, item in enumerate(value):
            kind = item.__class__
            if kind is str:
                if len(item) >= _MIN_SCANNED:
                    found = text_categories(item)
                    if found:
                        self._add_all(found, f"{path}[{index}]")
            elif kind is not float and kind is not bool and item is not None:
                self.scan(item, f"{path}[{index}]")

    def _key(self, name: str) -> tuple[str, tuple[str, ...], str | None]:
        in_key = text_categories(name)
        if in_key:  # the key itself is personal data: it must not appear in any path
            segment = REDACTED_KEY
        elif len(name) > _MAX_KEY_IN_PATH:
            segment = name[:_MAX_KEY_IN_PATH] + "…"
        else:
            segment = name
        known = self._keys[name] = (segment, in_key, key_category(name))
        return known


def detect_personal_data(value: Any, path: str = "context") -> list[PersonalDataFinding]:
    """The personal data in ``value`` (a JSON-like value found at ``path``): one finding per category and path."""
    scanner = Scanner()
    scanner.scan(value, path)
    return scanner.findings()
