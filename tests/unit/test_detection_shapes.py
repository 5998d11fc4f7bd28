"""The shapes the detection review found missed or mistaken, and the context-only categories: found near a word
that names them, left alone without one."""

from __future__ import annotations

import pytest

from ingress.engine.personal_data import detect_personal_data, text_categories


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("SSN 219099999", "ssn"),
        ("219099999", "ssn"),
        ("078 05 1123", "ssn"),
        ("078.05.1123", "ssn"),
        ("078-051121", "ssn"),
        ("my social security number is 078051120", "ssn"),  # a published sample, but named as an SSN
        ("call 4155550132 asap", "phone"),
        ("SD 20241 440-600-5124", "phone"),
        ("My Israeli number is 09-7625400", "phone"),
        ("My CN number is 13812345678", "phone"),
        ("+33 1 42 68 53 00", "phone"),
        ("UATP 122000000000003", "payment_card"),
        ("AL47-2121-1009-0000-0002-3569-8741", "iban"),
        ("gb82west12345698765432", "iban"),
        ("connect to ::ffff:192.168.1.1 now", "ip_address"),
        ("(192.168.1.1)", "ip_address"),
        ("ITIN 911-70-1234", "tax_id"),
        ("911701234", "tax_id"),
        ("my travel passport is A12803456", "passport"),
        ("my passport number is 912803456", "passport"),
        ("bank account 954567876544?", "bank_account"),
        ("routing number is: 101205681", "bank_account"),
        ("my driver license is H12234567", "drivers_license"),
        ("Her driver license? it is 1234567A.", "drivers_license"),
    ],
)
def test_found(text: str, category: str) -> None:
    assert category in text_categories(text)


@pytest.mark.parametrize(
    "text",
    [
        "qty 4958 498685",
        "logo@2x.png",
        "id 123e4567-e89b-12d3-a456-426614174000",
        "sha 8f953371d3e85eddb89b05ed6b9e680791055315c73e1025ab5dba7bb2aee189",
        "4111 0123 4567 89",  # a Luhn-invalid card's groups hold no phone number
        "078-05-0000",
        "693-09.4444",
        "911-89-1234",  # ITIN group 89 is never issued
        "my tax id 911-89-1234",
        "LV80 bANK 0000 4351 9500 1",
        "MAC: 01-23-45-67-89-AB",
        "gggg:hhhh::1234",
        "::ffff:256.0.0.1",
        "1748503543012",  # 13 digits starting with 1: a count or a timestamp
        "routing number is: 101205682",  # ABA checksum fails
        "A12803456",  # a passport-shaped value with no word naming it
        "945456787654",
        "H12234567",
        "passport photo size 2x2",
        "driver license class B since 2019",
        "localhost 127.0.0.1 and ::1",
    ],
)
def test_not_found(text: str) -> None:
    assert text_categories(text) == ()


def test_new_categories_are_reported_by_category_and_path_never_the_value() -> None:
    found = detect_personal_data({"note": "my passport number is 912803456", "bank": "account no 12345678901"})
    assert {(f.category, f.path) for f in found} == {("passport", "context.note"), ("bank_account", "context.bank")}
    assert "912803456" not in repr(found)


def test_a_card_number_in_a_target_host_never_reaches_the_summary() -> None:
    from ingress.engine import analyze_request
    from schemas.check import CheckRequest

    request = CheckRequest.model_validate(
        {
            "operations": [
                {"type": "external_call", "target": "https://4111-1111-1111-1111.evil.example/x"},
                {"type": "external_call", "target": "https://203.0.113.7/api"},
                {"type": "file_upload", "destination": "4111111111111111.files.example", "bytes": 10},
            ]
        }
    )
    summaries, found = analyze_request(request)
    assert [summary.target for summary in summaries] == ["<redacted>", "203.0.113.7", "<redacted>"]
    assert {(f.category, f.path) for f in found} == {
        ("payment_card", "operations[0].target"),
        ("payment_card", "operations[2].destination"),
    }
    assert "4111" not in repr(summaries)
