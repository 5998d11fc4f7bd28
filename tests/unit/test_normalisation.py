"""Obfuscation does not hide personal data: zero-width characters, soft hyphens, BOMs, full-width forms and
Unicode dashes and spaces inside a value are normalised away before detection, for every category."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ingress.engine.personal_data import detect_personal_data, normalise, text_categories

SAMPLES = {
    "email": "write to jane.doe@example.com today",
    "phone": "call +44 20 7946 0958 now",
    "payment_card": "card 4111-1111-1111-1111 exp 12/27",
    "iban": "IBAN DE89 3704 0044 0532 0130 00 please",
    "ssn": "ssn 123-45-6789 on file",
    "ip_address": "from 203.0.113.7 at noon",
    "date_of_birth": "she was born on 1990-01-15",
    "tax_id": "ITIN 911-70-1234 on file",
    "passport": "my travel passport is A12803456",
    "bank_account": "bank account 945456787654 please",
    "drivers_license": "my driver license is H12234567",
}

ZERO_WIDTH = "\u200b"
SOFT_HYPHEN = "\u00ad"
BOM = "\ufeff"
WORD_JOINER = "\u2060"
FULL_WIDTH = {chr(code): chr(code + 0xFEE0) for code in range(0x21, 0x7F)}  # "1" to U+FF11, "@" to U+FF20


def _inside_values(text: str, mark: str) -> str:
    """``mark`` after every digit, letter of a value, "@" and "." (between the characters a pattern reads)."""
    return "".join(char + mark if char.isdigit() or char in "@." else char for char in text)


OBFUSCATIONS = {
    "zero-width space": lambda text: _inside_values(text, ZERO_WIDTH),
    "soft hyphen": lambda text: _inside_values(text, SOFT_HYPHEN),
    "byte order mark": lambda text: _inside_values(text, BOM),
    "word joiner": lambda text: _inside_values(text, WORD_JOINER),
    "full-width forms": lambda text: "".join(FULL_WIDTH.get(char, char) if char != " " else char for char in text),
    "non-breaking hyphen": lambda text: text.replace("-", "\u2011"),
    "en dash": lambda text: text.replace("-", "\u2013"),
    "minus sign": lambda text: text.replace("-", "\u2212"),
    "no-break space": lambda text: text.replace(" ", "\u00a0"),
    "ideographic space": lambda text: text.replace(" ", "\u3000"),
}


def test_every_sample_is_found_as_written() -> None:
    for category, text in SAMPLES.items():
        assert category in text_categories(text), category


@pytest.mark.parametrize("obfuscation", sorted(OBFUSCATIONS))
@pytest.mark.parametrize("category", sorted(SAMPLES))
def test_obfuscated_values_are_still_found(category: str, obfuscation: str) -> None:
    hidden = OBFUSCATIONS[obfuscation](SAMPLES[category])
    assert hidden != SAMPLES[category] or obfuscation in ("non-breaking hyphen", "en dash", "minus sign")
    assert category in text_categories(hidden)


def test_paths_and_categories_are_those_of_the_original() -> None:
    plain = detect_personal_data({"note": SAMPLES["email"], "items": ["ok", SAMPLES["ssn"]]})
    email = OBFUSCATIONS["zero-width space"](SAMPLES["email"])
    hidden = detect_personal_data({"note": email, "items": ["ok", SAMPLES["ssn"].replace("-", "\u2011")]})
    assert hidden == plain


def test_normalisation_changes_only_what_it_must() -> None:
    assert normalise("plain ASCII stays as it is") == "plain ASCII stays as it is"
    assert normalise("caf\u00e9") == "caf\u00e9"
    assert normalise("".join(FULL_WIDTH.get(char, char) for char in "123-45-6789")) == "123-45-6789"
    assert normalise("a\u200b\u00ad\ufeffb") == "ab"
    assert normalise("x\u2014y\u00a0z") == "x-y z"


@given(st.text())
def test_normalisation_is_idempotent(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once


@given(st.sampled_from(sorted(SAMPLES)), st.lists(st.sampled_from([ZERO_WIDTH, SOFT_HYPHEN, BOM, WORD_JOINER])))
def test_format_characters_anywhere_hide_nothing(category: str, marks: list[str]) -> None:
    text = SAMPLES[category]
    hidden = "".join(char + "".join(marks) for char in text)
    assert category in text_categories(hidden)
