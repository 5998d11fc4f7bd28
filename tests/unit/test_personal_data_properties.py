"""Property tests of personal-data detection (hypothesis): card numbers by Luhn, IBANs by their check digits, SSNs
by their issued ranges, emails, and numbers and dates that are not personal data."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings, strategies as st

from ingress.engine.personal_data import iban_valid, luhn_valid, text_categories
from tests.unit.test_personal_data_findings import found


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
