"""Identity documents: Chile's RUN (modulo 11 check digit, checked against an independent implementation with
Hypothesis), Vietnam's CCCD and CMND structure, passports and free-text documents."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from muestra.catalog.models import DocumentValidator
from muestra.patients.documents import (
    DocumentInvalid,
    normalise_document,
    normalise_run,
    run_check_digit,
    validate_cccd,
    validate_cmnd,
)

DIGITS = "0123456789K"


def mod11(body: int) -> str:
    """The RUN check digit as the Registro Civil defines it: weights 2..7 from the right, 11 - sum mod 11."""
    total = 0
    for i, ch in enumerate(reversed(str(body))):
        total += int(ch) * (2 + i % 6)
    value = 11 - total % 11
    return {11: "0", 10: "K"}.get(value, str(value))


def formats(body: int, dv: str) -> list[str]:
    dotted = f"{body:,}".replace(",", ".")
    return [
        f"{body}-{dv}",
        f"{body}{dv}",
        f"{dotted}-{dv}",
        f"{dotted}-{dv.lower()}",
        f" {body} - {dv.lower()} ",
        f"{body}-{dv.lower()}",
    ]


@pytest.mark.parametrize(
    ("body", "dv"),
    [
        (12345678, "5"),
        (11111111, "1"),
        (6, "K"),
        (1, "9"),
        (10, "8"),
        (76086428, "5"),
        (99999999, "9"),
        (30686957, "4"),
    ],
)
def test_known_runs(body, dv):
    assert mod11(body) == dv
    assert run_check_digit(body) == dv
    assert normalise_run(f"{body}-{dv}") == f"{body}-{dv}"


@given(st.integers(min_value=1, max_value=99_999_999))
@example(6)  # check digit K
@example(99_999_999)
def test_check_digit_matches_an_independent_modulo_11(body):
    assert run_check_digit(body) == mod11(body)


@given(st.integers(min_value=1, max_value=99_999_999), st.data())
def test_the_right_digit_validates_in_every_format_any_other_fails(body, data):
    right = mod11(body)
    for text in formats(body, right):
        assert normalise_run(text) == f"{body}-{right}"
    wrong = data.draw(st.sampled_from([d for d in DIGITS if d != right]))
    for text in formats(body, wrong):
        with pytest.raises(DocumentInvalid):
            normalise_run(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-",
        "K",
        "5",
        "123456789-0",
        "abc-5",
        "0-0",
        "00000000-0",
        "12.345.678",
        "12345678-X",
        "1234567890-K",
        "+12345678-5",
        None,
    ],
)
def test_malformed_runs_are_refused(text):
    with pytest.raises(DocumentInvalid):
        normalise_run(text)


def test_leading_zeros_are_dropped():
    body = 1234567
    assert normalise_run(f"0{body}-{mod11(body)}") == f"{body}-{mod11(body)}"
    assert normalise_run(f"0{body:,}-{mod11(body)}".replace(",", ".")) == f"{body}-{mod11(body)}"


# --- Vietnam ------------------------------------------------------------------------------------------------------


@given(
    province=st.integers(1, 96), century_sex=st.integers(0, 9), year=st.integers(0, 99), serial=st.integers(0, 999_999)
)
def test_any_well_formed_cccd_is_accepted(province, century_sex, year, serial):
    number = f"{province:03d}{century_sex}{year:02d}{serial:06d}"
    assert validate_cccd(number) == number
    assert normalise_document(DocumentValidator.VN_CCCD, f" {number[:4]} {number[4:]} ") == number


@pytest.mark.parametrize(
    "number",
    [
        "000123456789",
        "097123456789",
        "999123456789",
        "00112345678",
        "0011234567890",
        "00112345678A",
        "",
        "abcdefghijkl",
    ],
)
def test_malformed_cccd_is_refused(number):
    with pytest.raises(DocumentInvalid):
        validate_cccd(number)


def test_cmnd_has_nine_digits():
    assert validate_cmnd("123 456 789") == "123456789"
    for bad in ("12345678", "1234567890", "12345678X"):
        with pytest.raises(DocumentInvalid):
            validate_cmnd(bad)


# --- other documents ------------------------------------------------------------------------------------------------


def test_passport_is_compacted_and_upper_cased():
    assert normalise_document(DocumentValidator.PASSPORT, " ab-123 456 ") == "AB123456"
    for bad in ("AB1", "AB#12345", "", "X" * 21):
        with pytest.raises(DocumentInvalid):
            normalise_document(DocumentValidator.PASSPORT, bad)


def test_free_text_needs_a_value():
    assert normalise_document(DocumentValidator.FREE_TEXT, " dni 123 ") == "DNI 123"
    for bad in ("", ".", None):
        with pytest.raises(DocumentInvalid):
            normalise_document(DocumentValidator.FREE_TEXT, bad)


@pytest.mark.parametrize("rule", [DocumentValidator.NONE, DocumentValidator.NEWBORN])
def test_documentless_rules_store_no_number(rule):
    assert normalise_document(rule, "whatever") == ""
