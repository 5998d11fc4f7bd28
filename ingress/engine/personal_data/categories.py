"""The personal-data categories the detector reports, by name."""

from __future__ import annotations

from typing import Final

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
