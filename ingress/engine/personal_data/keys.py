"""Key names that mean personal data: ``email``, ``ssn``, ``dateOfBirth``, ``billing_address``…

A non-empty value under such a key is a finding of that category even when the value matches no pattern. Keys are
split into lower-case words (snake, kebab and camel case alike) and joined: "dateOfBirth" and "date_of_birth" both
become "dateofbirth". ``_KEY_NAMES`` must be the whole key; ``_KEY_SUFFIXES`` may also end a longer key on a word
boundary ("billing_email", "customer_ssn"), which is how an unambiguous name is used in practice.

The check is linear in the key: the words are found in one pass, and only the last words that together are no
longer than the longest known name are tried as suffixes (a 16 KB key of 8 000 words once took seconds).
"""

from __future__ import annotations

import re
from typing import Final

from ingress.engine.personal_data.categories import (
    ADDRESS,
    BANK_ACCOUNT,
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
_LONGEST: Final = max(len(name) for name in _KEY_NAMES)
# A key longer than this cannot be a known name but may end in one: only its tail is split into words.
_TAIL: Final = 4 * _LONGEST


def key_category(key: str) -> str | None:
    """The personal-data category a key name stands for, or None (``user_id``, ``department``…)."""
    tail = key[-_TAIL:]
    words = _KEY_WORD.findall(tail)
    if not words:
        return None
    if len(tail) == len(key):
        whole = "".join(words).lower()
        category = _KEY_NAMES.get(whole)
        if category is not None or len(words) == 1:
            return category
        first = 1
    else:
        first = 0
    suffix = ""
    for index in range(len(words) - 1, first - 1, -1):
        suffix = words[index].lower() + suffix
        if len(suffix) > _LONGEST:
            return None
        category = _KEY_SUFFIXES.get(suffix)
        if category is not None:
            return category
    return None
