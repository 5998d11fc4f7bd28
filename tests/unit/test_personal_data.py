"""Personal-data detection: examples, false positives we must not raise, and property tests of the validators."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from ingress.engine import detect_personal_data
from ingress.engine.personal_data import (
    REDACTED_KEY,
    iban_valid,
    key_category,
    luhn_valid,
    text_categories,
)


def found(value: Any, path: str = "context") -> set[tuple[str, str]]:
    return {(finding.category, finding.path) for finding in detect_personal_data(value, path)}


# --- examples ---------------------------------------------------------------------------------------------------


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


def test_the_guides_context_has_no_personal_data() -> None:
    assert detect_personal_data({"user_id": "user_123", "session_id": "session_abc", "department": "engineering"}) == []
    assert detect_personal_data({"user_id": "user_123", "session_id": "session_456"}) == []


def test_findings_carry_category_and_path_never_the_value() -> None:
    context = {
        "user": {"email": "jane@example.com", "phone": "+44 20 7946 0958"},
        "items": ["ok", "fine", "ssn 123-45-6789"],
        "note": "call 555-123-4567 or mail bob@example.org",
    }
    findings = detect_personal_data(context)
    assert {(f.category, f.path) for f in findings} == {
        ("email", "context.user.email"),
        ("phone", "context.user.phone"),
        ("ssn", "context.items[2]"),
        ("phone", "context.note"),
        ("email", "context.note"),
    }
    text = repr(findings)
    for value in ("jane@example.com", "7946", "123-45-6789", "555-123", "bob@"):
        assert value not in text


def test_one_finding_per_category_and_path() -> None:
    assert found({"emails": "a@example.com, b@example.com"}) == {("email", "context.emails")}


def test_a_key_that_is_personal_data_is_redacted_in_paths() -> None:
    assert found({"jane@example.com": {"visits": 3, "dob": "1990-01-01"}}) == {
        ("email", f"context.{REDACTED_KEY}"),
        ("date_of_birth", f"context.{REDACTED_KEY}.dob"),
    }


@pytest.mark.parametrize(
    ("key", "category"),
    [
        ("email", "email"),
        ("Email", "email"),
        ("user_email", "email"),
        ("billingEmail", "email"),
        ("email_address", "email"),
        ("phone", "phone"),
        ("phoneNumber", "phone"),
        ("mobile_number", "phone"),
        ("ssn", "ssn"),
        ("SSN", "ssn"),
        ("social_security_number", "ssn"),
        ("customer_ssn", "ssn"),
        ("passport", "passport"),
        ("passport_number", "passport"),
        ("credit_card", "payment_card"),
        ("card_number", "payment_card"),
        ("cvv", "payment_card"),
        ("iban", "iban"),
        ("bank_account", "bank_account"),
        ("date_of_birth", "date_of_birth"),
        ("dateOfBirth", "date_of_birth"),
        ("dob", "date_of_birth"),
        ("birthdate", "date_of_birth"),
        ("address", "address"),
        ("home_address", "address"),
        ("billing_address", "address"),
        ("national_id", "national_id"),
        ("tax_id", "tax_id"),
        ("drivers_license", "drivers_license"),
        ("ip_address", "ip_address"),
        ("client_ip", "ip_address"),
        ("first_name", "person_name"),
        ("lastName", "person_name"),
        ("full_name", "person_name"),
    ],
)
def test_keys_that_name_personal_data(key: str, category: str) -> None:
    assert key_category(key) == category


@pytest.mark.parametrize(
    "key",
    [
        "user_id",
        "session_id",
        "department",
        "name",
        "username",
        "filename",
        "model_name",
        "email_verified",
        "phone_type",
        "server_address",
        "mac_address",
        "zip",
        "ship",
        "tip",
        "description",
        "headphone",
        "tokens",
        "id",
    ],
)
def test_keys_that_do_not_name_personal_data(key: str) -> None:
    assert key_category(key) is None


def test_a_sensitive_key_with_a_value_is_a_finding_even_without_a_pattern() -> None:
    assert found({"ssn": "redacted-by-client", "passport": "X1234567", "address": {"city": "Oslo"}}) == {
        ("ssn", "context.ssn"),
        ("passport", "context.passport"),
        ("address", "context.address"),
    }


@pytest.mark.parametrize("value", ["", "   ", None, True, False, [], {}])
def test_a_sensitive_key_without_a_value_is_not_a_finding(value: Any) -> None:
    assert found({"email": value}) == set()


def test_a_date_under_a_birth_key_is_a_date_of_birth() -> None:
    assert found({"patient": {"birth_date": "1990-01-15"}}) == {("date_of_birth", "context.patient.birth_date")}


def test_a_card_number_sent_as_a_number() -> None:
    assert found({"n": 4111111111111111}) == {("payment_card", "context.n")}
    assert found({"n": 4111111111111112, "ts": 1700000000000, "count": 500}) == set()


def test_path_prefix_is_the_callers() -> None:
    assert found({"to": "jane@example.com"}, "operations[3].payload") == {("email", "operations[3].payload.to")}
    assert found(["x", "jane@example.com"], "operations[0].input") == {("email", "operations[0].input[1]")}


# --- property tests ---------------------------------------------------------------------------------------------


def luhn_check_digit(body: str) -> str:
    for digit in "0123456789":
        if luhn_valid(body + digit):
            return digit
    raise AssertionError("unreachable")  # pragma: no cover


card_bodies = st.tuples(
    st.sampled_from("23456"), st.integers(min_value=12, max_value=18), st.randoms(use_true_random=False)
).map(lambda t: t[0] + "".join(t[2].choice("0123456789") for _ in range(t[1] - 1)))


def card_text(number: str, style: int) -> str:
    if style == 0:
        shown = number
    else:
        separator = " " if style == 1 else "-"
        shown = separator.join(number[i : i + 4] for i in range(0, len(number), 4))
    return f"paid with {shown}, thanks"


@settings(max_examples=200)
@given(card_bodies, st.integers(min_value=0, max_value=2))
def test_luhn_valid_card_numbers_are_detected(body: str, style: int) -> None:
    number = body + luhn_check_digit(body)
    assert 13 <= len(number) <= 19
    assert "payment_card" in text_categories(card_text(number, style))


@settings(max_examples=200)
@given(card_bodies, st.integers(min_value=0, max_value=2), st.integers(min_value=1, max_value=9))
def test_luhn_invalid_card_numbers_are_not(body: str, style: int, shift: int) -> None:
    valid = luhn_check_digit(body)
    number = body + str((int(valid) + shift) % 10)
    assert not luhn_valid(number)
    assert text_categories(card_text(number, style)) == ()


IBAN_LENGTHS = {"DE": 22, "GB": 22, "FR": 27, "NL": 18, "ES": 24, "IT": 27, "NO": 15, "CH": 21, "PL": 28, "MT": 31}
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def iban_with_check_digits(country: str, bban: str) -> str:
    numeric = int("".join(str(int(char, 36)) for char in bban + country + "00"))
    return f"{country}{98 - numeric % 97:02d}{bban}"


ibans = st.sampled_from(sorted(IBAN_LENGTHS)).flatmap(
    lambda country: st.tuples(
        st.just(country),
        st.text(alphabet=ALNUM, min_size=IBAN_LENGTHS[country] - 4, max_size=IBAN_LENGTHS[country] - 4),
    )
)


def iban_text(iban: str, grouped: bool) -> str:
    shown = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4)) if grouped else iban
    return f"please pay to {shown} by Friday"


@settings(max_examples=200)
@given(ibans, st.booleans())
def test_ibans_with_correct_check_digits_are_detected(country_bban: tuple[str, str], grouped: bool) -> None:
    iban = iban_with_check_digits(*country_bban)
    assert iban_valid(iban)
    assert "iban" in text_categories(iban_text(iban, grouped))


@settings(max_examples=200)
@given(ibans, st.booleans(), st.data())
def test_corrupted_ibans_are_not(country_bban: tuple[str, str], grouped: bool, data: st.DataObject) -> None:
    iban = iban_with_check_digits(*country_bban)
    position = data.draw(st.integers(min_value=2, max_value=len(iban) - 1))
    # A digit for another digit, or a letter for another letter: ISO 7064 MOD 97-10 detects every such single
    # substitution (a letter for a digit changes the length of the expansion, which it need not detect).
    same_kind = "0123456789" if iban[position].isdigit() else ALNUM[:26]
    replacement = data.draw(st.sampled_from(same_kind).filter(lambda char: char != iban[position]))
    corrupted = iban[:position] + replacement + iban[position + 1 :]
    assert not iban_valid(corrupted)
    assert "iban" not in text_categories(iban_text(corrupted, grouped))


valid_areas = st.integers(min_value=1, max_value=899).filter(lambda area: area != 666)


@given(valid_areas, st.integers(min_value=1, max_value=99), st.integers(min_value=1, max_value=9999))
def test_ssns_in_issued_ranges_are_detected(area: int, group: int, serial: int) -> None:
    assert "ssn" in text_categories(f"SSN {area:03d}-{group:02d}-{serial:04d} on file")


invalid_ssns = st.one_of(
    st.tuples(st.sampled_from([0, 666]), st.integers(1, 99), st.integers(1, 9999)),
    st.tuples(st.integers(900, 999), st.integers(0, 99), st.integers(0, 9999)),
    st.tuples(st.integers(0, 999), st.just(0), st.integers(0, 9999)),
    st.tuples(st.integers(0, 999), st.integers(0, 99), st.just(0)),
)


@given(invalid_ssns)
def test_ssns_in_invalid_ranges_are_not(parts: tuple[int, int, int]) -> None:
    area, group, serial = parts
    assert text_categories(f"SSN {area:03d}-{group:02d}-{serial:04d} on file") == ()


@settings(max_examples=200)
@given(st.emails())
def test_emails_are_detected(email: str) -> None:
    assert "email" in text_categories(f"write to {email} today")
    assert ("email", "context.contact") in found({"contact": email})


@given(st.integers(min_value=-(10**6), max_value=10**6))
def test_small_numbers_and_token_counts_are_never_personal_data(number: int) -> None:
    assert text_categories(f"tokens {number} rows {abs(number)} id-{number}") == ()
    assert found({"tokens": number, "n": str(number)}) == set()


@given(st.dates())
def test_plain_dates_are_not_personal_data(date: Any) -> None:
    for text in (date.isoformat(), date.strftime("%d.%m.%Y"), date.strftime("%m/%d/%Y"), f"due {date:%d %B %Y}"):
        assert text_categories(text) == ()


@given(st.dates())
def test_birth_dates_in_text_are_found(date: Any) -> None:
    assert "date_of_birth" in text_categories(f"patient born on {date.isoformat()}")


# --- cost -------------------------------------------------------------------------------------------------------

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


def test_findings_per_category_are_bounded() -> None:
    many = {"emails": [f"user{i}@example.com" for i in range(500)], "phone": "+44 20 7946 0958"}
    findings = detect_personal_data(many)
    assert sum(1 for f in findings if f.category == "email") == 50
    assert ("phone", "context.phone") in {(f.category, f.path) for f in findings}
