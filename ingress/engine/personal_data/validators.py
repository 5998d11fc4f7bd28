"""Checksums and issued ranges that confirm a candidate: what keeps ids, versions, dates and counts out.

Each takes the candidate's characters (digits only where the name says so) and answers yes or no; none looks at
the text around it.
"""

from __future__ import annotations

import ipaddress
from typing import Final

# Length of the IBAN of each country (SWIFT IBAN registry).
IBAN_LENGTHS: Final = {
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

# ISO 13616: A is 10, B is 11, ... Z is 35.
_LETTER_DIGITS: Final = {ord(letter): str(10 + index) for index, letter in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")}
# Numbers published as examples (advertising, documentation) that many people wrote down as their own.
_SAMPLE_SSNS: Final = frozenset({"078051120", "123456789"})
# ITIN group numbers (the fourth and fifth digits) the IRS issues.
_ITIN_GROUPS: Final = frozenset((*range(50, 66), *range(70, 89), *range(90, 93), *range(94, 100)))


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


def card_valid(digits: str) -> bool:
    """A payment card number: 13-19 digits, an issuer's first digit (1 for UATP, 2-6), and the Luhn check."""
    if not 13 <= len(digits) <= 19 or digits[0] not in "123456" or not luhn_valid(digits):
        return False
    # UATP numbers are 15 digits; a 13-digit number starting with 1 is a count or a timestamp.
    return digits[0] != "1" or len(digits) == 15


def iban_valid(text: str) -> bool:
    """A compact upper-case IBAN of its country's length whose ISO 13616 mod-97 check holds."""
    if IBAN_LENGTHS.get(text[:2]) != len(text) or not text.isalnum() or not text.isascii():
        return False
    return int((text[4:] + text[:4]).translate(_LETTER_DIGITS)) % 97 == 1


def ssn_valid(digits: str, *, named: bool = False) -> bool:
    """A US Social Security number in the issued ranges: nine digits, no 000, 666 or 9xx area, no 00 group,
    no 0000 serial, not one digit repeated. Well-known sample numbers are refused unless the text names an SSN."""
    if len(digits) != 9 or not digits.isdigit():
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    if digits == digits[0] * 9:
        return False
    return named or digits not in _SAMPLE_SSNS


def itin_valid(digits: str) -> bool:
    """A US Individual Taxpayer Identification Number: nine digits, 9 first, a group the IRS issues."""
    return len(digits) == 9 and digits.isdigit() and digits[0] == "9" and int(digits[3:5]) in _ITIN_GROUPS


def aba_valid(digits: str) -> bool:
    """A US bank routing (ABA) number: nine digits, a Federal Reserve prefix, and the 3-7-1 checksum."""
    if len(digits) != 9 or not digits.isdigit():
        return False
    prefix = int(digits[:2])
    if not (prefix <= 12 or 21 <= prefix <= 32 or 61 <= prefix <= 72 or prefix == 80):
        return False
    weights = (3, 7, 1) * 3
    return sum(int(digit) * weight for digit, weight in zip(digits, weights, strict=True)) % 10 == 0


def ipv4_identifies(text: str) -> bool:
    """A dotted IPv4 address that can point at someone: octets in range, no leading zeros (a version or a code),
    and not 0.x, loopback or the broadcast address, which identify no one."""
    octets = text.split(".")
    if len(octets) != 4:
        return False
    for octet in octets:
        if not octet.isdigit() or len(octet) > 3 or (len(octet) > 1 and octet[0] == "0") or int(octet) > 255:
            return False
    first = int(octets[0])
    return first not in (0, 127) and text != "255.255.255.255"


def ipv6_identifies(text: str) -> bool:
    """An IPv6 address (``::`` or eight groups, an embedded IPv4 allowed) that is not unspecified or loopback."""
    if "::" not in text and text.count(":") != 7:
        return False
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return not (address.is_unspecified or address.is_loopback)
