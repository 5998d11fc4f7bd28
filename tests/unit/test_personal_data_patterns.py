"""Personal-data detection in text: the patterns each category is found by, the ordinary values (identifiers,
versions, timestamps, numbers failing their check digits) it must not raise, and a linear scan on adversarial
input."""

from __future__ import annotations

import time

import pytest

from ingress.engine.personal_data import text_categories


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("jane@example.com", "email"),
        ("Contact: jane.doe+billing@mail.example.co.uk.", "email"),
        ("call +1 555 123 4567 today", "phone"),
        ("+14155550100", "phone"),
        ("+44 20 7946 0958", "phone"),
        ("+49 (30) 12345678", "phone"),
        ("(555) 123-4567", "phone"),
        ("555-123-4567", "phone"),
        ("555.123.4567", "phone"),
        ("020 7946 0958", "phone"),
        ("07700 900123", "phone"),
        ("01 23 45 67 89", "phone"),
        ("card 4111 1111 1111 1111 exp 12/27", "payment_card"),
        ("4111-1111-1111-1111", "payment_card"),
        ("5500005555555559", "payment_card"),
        ("amex 378282246310005", "payment_card"),
        ("IBAN DE89 3704 0044 0532 0130 00", "iban"),
        ("GB82WEST12345698765432", "iban"),
        ("FR1420041010050500013M02606", "iban"),
        ("ssn 123-45-6789", "ssn"),
        ("from 203.0.113.7 at noon", "ip_address"),
        ("10.1.2.3", "ip_address"),
        ("client 2001:db8::8a2e:370:7334", "ip_address"),
        ("fe80:0:0:0:202:b3ff:fe1e:8329", "ip_address"),
        ("she was born on 1990-01-15", "date_of_birth"),
        ("Born on March 3, 1985 in Oslo", "date_of_birth"),
        ("born 3 March 1985", "date_of_birth"),
        ("DOB: 01/02/1990", "date_of_birth"),
        ("date of birth 15.01.1990", "date_of_birth"),
        ("Birthday: 1990-1-5", "date_of_birth"),
    ],
)
def test_personal_data_in_text_is_found(text: str, category: str) -> None:
    assert category in text_categories(text)


@pytest.mark.parametrize(
    "text",
    [
        "user_123",
        "session_abc",
        "session_456",
        "engineering",
        "Summarise the quarterly report for Q3 2024 in 500 words.",
        "tokens: 500",
        "2024-01-15",
        "2024-01-15T10:30:00Z",
        "15.01.2024",
        "12:30:45",
        "version 1.2.3",
        "v1.2.3.4-beta",
        "127.0.0.1",
        "0.0.0.0",  # noqa: S104 - a value scanned, not an address bound
        "::1",
        "std::vector<int>",
        "order 1234567890",
        "epoch 1700000000000",
        "price 12345.67890",
        "gpt-4-0613",
        "claude-3-5-sonnet-20241022",
        "4111 1111 1111 1112",  # Luhn-invalid
        "DE89 3704 0044 0532 0130 01",  # mod-97 invalid
        "000-12-3456",
        "666-12-3456",
        "900-12-3456",
        "123-00-4567",
        "123-45-0000",
        "256.1.1.1",
        "SKU-00042",
        "trace 4bf92f3577b34da6a3ce929d0e0e4736",
        "born to run",
        "@mention and user@localhost",
    ],
)
def test_ordinary_values_are_not_personal_data(text: str) -> None:
    assert text_categories(text) == ()


ADVERSARIAL = {
    "digits": "1" * 65_536,
    "spaced digits": "12 " * 21_845,
    "at signs": "a@" * 32_768,
    "labels": "a@" + "a." * 32_766,
    "plus": "+1 " * 21_845,
    "parens": "(1) " * 16_384,
    "upper": "AB12 C" * 10_922,
    "colons": "ab::" * 16_384,
    "born": "born on " * 8_192,
    "dob": "dob 12/12/" * 6_553,
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_scanning_is_linear_on_adversarial_input(name: str) -> None:
    text = ADVERSARIAL[name]
    assert len(text) <= 65_536
    started = time.perf_counter()
    text_categories(text)
    # Linear patterns take ~20 ms here on 64 KiB; a backtracking one would take minutes.
    assert time.perf_counter() - started < 1.0
