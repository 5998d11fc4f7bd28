"""Personal-data findings in structured values: each a category and a path, never the value; keys that name
personal data (with a value) are findings, a key that is personal data is redacted in paths, and findings per
category are bounded."""

from __future__ import annotations

from typing import Any

import pytest

from ingress.engine import detect_personal_data
from ingress.engine.personal_data import REDACTED_KEY, key_category


def found(value: Any, path: str = "context") -> set[tuple[str, str]]:
    return {(finding.category, finding.path) for finding in detect_personal_data(value, path)}


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


def test_findings_per_category_are_bounded() -> None:
    many = {"emails": [f"user{i}@example.com" for i in range(500)], "phone": "+44 20 7946 0958"}
    findings = detect_personal_data(many)
    assert sum(1 for f in findings if f.category == "email") == 50
    assert ("phone", "context.phone") in {(f.category, f.path) for f in findings}
