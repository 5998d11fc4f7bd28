"""Personal-data detection: which categories appear where. Never the value.

Two signals, both cheap and both linear in their input:

* **Values** (``values.py``): every string, normalised first (``normalise.py``: NFKC, format characters removed,
  dashes and spaces folded), is scanned by patterns that cannot backtrack far; each candidate is confirmed by a
  checksum or an issued range (``validators.py``: Luhn, mod-97, SSN and ITIN ranges, ABA, octets), and numbers
  too common to report alone are accepted after a word that names them (``context.py``: "passport", "routing").
* **Keys** (``keys.py``): a non-empty value under a key that names personal data (``email``, ``ssn``,
  ``date_of_birth``…) is a finding of that category even when the value matches no pattern.

``scanner.py`` walks a request under a budget of characters and fails closed past it.
"""

from ingress.engine.personal_data.categories import (
    ADDRESS,
    BANK_ACCOUNT,
    CATEGORIES,
    DATE_OF_BIRTH,
    DRIVERS_LICENSE,
    EMAIL,
    IBAN,
    IP_ADDRESS,
    NATIONAL_ID,
    PASSPORT,
    PAYMENT_CARD,
    PERSON_NAME,
    PHONE,
    SSN,
    TAX_ID,
)
from ingress.engine.personal_data.keys import key_category
from ingress.engine.personal_data.normalise import normalise
from ingress.engine.personal_data.scanner import (
    MAX_PATHS_PER_CATEGORY,
    REDACTED_KEY,
    SCAN_BUDGET_CHARS,
    SCAN_LIMIT,
    Scanner,
    detect_personal_data,
)
from ingress.engine.personal_data.validators import iban_valid, luhn_valid
from ingress.engine.personal_data.values import text_categories as _raw_text_categories


def text_categories(text: str) -> tuple[str, ...]:
    """The categories of personal data in one string (normalised first), in order of first appearance, each once."""
    return _raw_text_categories(normalise(text))


__all__ = [
    "ADDRESS",
    "BANK_ACCOUNT",
    "CATEGORIES",
    "DATE_OF_BIRTH",
    "DRIVERS_LICENSE",
    "EMAIL",
    "IBAN",
    "IP_ADDRESS",
    "MAX_PATHS_PER_CATEGORY",
    "NATIONAL_ID",
    "PASSPORT",
    "PAYMENT_CARD",
    "PERSON_NAME",
    "PHONE",
    "REDACTED_KEY",
    "SCAN_BUDGET_CHARS",
    "SCAN_LIMIT",
    "SSN",
    "TAX_ID",
    "Scanner",
    "detect_personal_data",
    "iban_valid",
    "key_category",
    "luhn_valid",
    "normalise",
    "text_categories",
]
