"""The tolerant parsers, on their own: every accepted shape, round trips over generated values, and the RUN
check digit against an independent modulo-11 implementation."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from muestra.integrations.pntm.parsing import (
    SANTIAGO,
    ParseError,
    clean_text,
    decode_body,
    format_date,
    format_datetime,
    local_day_bounds,
    parse_bool,
    parse_date,
    parse_datetime,
    parse_int,
    parse_run,
    payload_items,
)

# --- dates ----------------------------------------------------------------------------------------------------

#: Every accepted naive shape, as a strftime pattern, with whether it keeps the time of day and the seconds.
NAIVE_FORMATS = [
    ("%d-%m-%Y", False, False),
    ("%d/%m/%Y", False, False),
    ("%d.%m.%Y", False, False),
    ("%Y-%m-%d", False, False),
    ("%Y/%m/%d", False, False),
    ("%d-%m-%YT%H:%M:%S", True, True),
    ("%d/%m/%YT%H:%M:%S", True, True),
    ("%d-%m-%Y %H:%M:%S", True, True),
    ("%d/%m/%Y %H:%M:%S", True, True),
    ("%d-%m-%Y %H:%M", True, False),
    ("%Y-%m-%d %H:%M:%S", True, True),
    ("%Y-%m-%dT%H:%M:%S", True, True),
    ("%Y-%m-%dT%H:%M", True, False),
]

naive_datetimes = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)


@pytest.mark.parametrize(("pattern", "with_time", "with_seconds"), NAIVE_FORMATS)
@given(moment=naive_datetimes)
def test_every_naive_format_round_trips_in_chilean_time(
    pattern: str, with_time: bool, with_seconds: bool, moment: datetime
) -> None:
    expected = moment
    if not with_time:
        expected = moment.replace(hour=0, minute=0, second=0)
    elif not with_seconds:
        expected = moment.replace(second=0)
    parsed = parse_datetime(moment.strftime(pattern))
    assert parsed is not None
    assert parsed.tzinfo is SANTIAGO
    assert parsed.replace(tzinfo=None) == expected
    assert parsed == expected.replace(tzinfo=SANTIAGO)
    assert parse_date(moment.strftime(pattern)) == moment.date()


@given(
    moment=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 12, 31)),
    offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
    separator=st.sampled_from(["T", " "]),
)
def test_iso_with_fraction_and_offset_round_trips(moment: datetime, offset_minutes: int, separator: str) -> None:
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    text = aware.isoformat(sep=separator, timespec="microseconds")
    assert parse_datetime(text) == aware
    assert parse_datetime(text.replace("+00:00", "Z")) == aware


@given(moment=st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2100, 12, 30), timezones=st.just(UTC)))
def test_our_answer_format_is_accepted_back(moment: datetime) -> None:
    moment = moment.replace(microsecond=0)
    local = moment.astimezone(SANTIAGO)
    # The national format has no offset, so the hour repeated at the autumn change is ambiguous by design (read
    # as its first occurrence, tested elsewhere): the round trip holds for every other moment.
    assume(local.replace(fold=1 - local.fold).utcoffset() == local.utcoffset())
    assert parse_datetime(format_datetime(moment)) == moment
    assert parse_date(format_date(moment.date())) == moment.date()


@given(text=st.text(max_size=40))
def test_the_date_parser_only_ever_raises_parse_error(text: str) -> None:
    try:
        parse_datetime(text)
        parse_date(text)
    except ParseError:
        pass


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("17-05-2024", datetime(2024, 5, 17, tzinfo=SANTIAGO)),
        ("17/05/2024", datetime(2024, 5, 17, tzinfo=SANTIAGO)),
        ("17-05-2024T10:30:00", datetime(2024, 5, 17, 10, 30, tzinfo=SANTIAGO)),
        ("2024-05-17 10:30:00", datetime(2024, 5, 17, 10, 30, tzinfo=SANTIAGO)),
        ("  2024-05-17 10:30:00  ", datetime(2024, 5, 17, 10, 30, tzinfo=SANTIAGO)),
        ("2024-05-17T10:30:00.5", datetime(2024, 5, 17, 10, 30, 0, 500000, tzinfo=SANTIAGO)),
        ("2024-05-17t10:30:00z", datetime(2024, 5, 17, 10, 30, tzinfo=UTC)),
        ("2024-05-17T10:30:00-0400", datetime(2024, 5, 17, 14, 30, tzinfo=UTC)),
        ("7-5-2024", datetime(2024, 5, 7, tzinfo=SANTIAGO)),
    ],
)
def test_documented_examples(text: str, expected: datetime) -> None:
    assert parse_datetime(text) == expected


def test_naive_times_follow_chilean_daylight_saving() -> None:
    # Chile is UTC-3 in (southern) summer and UTC-4 in winter.
    assert parse_datetime("15-01-2024T12:00:00") == datetime(2024, 1, 15, 15, 0, tzinfo=UTC)
    assert parse_datetime("15-07-2024T12:00:00") == datetime(2024, 7, 15, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    ["31-02-2024", "2024-13-01", "17-05-24", "17-05/2024", "17-05-2024T25:00:00", "hoy", "2024-05-17T10", "1715900000"],
)
def test_impossible_or_unknown_dates_are_refused(text: str) -> None:
    with pytest.raises(ParseError):
        parse_datetime(text)


def test_blank_dates_are_none_and_date_ignores_the_offset() -> None:
    assert parse_datetime(None) is None
    assert parse_datetime("  ") is None
    assert parse_date("null") is None
    assert parse_date("1985-05-17T00:00:00Z") == date(1985, 5, 17)


def test_local_day_bounds_cover_one_chilean_day() -> None:
    start, end = local_day_bounds(date(2024, 5, 17))
    assert start == datetime(2024, 5, 17, 4, 0, tzinfo=UTC)
    assert end - start == timedelta(days=1)


# --- scalars ----------------------------------------------------------------------------------------------------

TRUE_SHAPES: list[Any] = [True, "true", "TRUE", " True ", 1, "1", 1.0, "si", "SI", "Sí", "s", "yes"]
FALSE_SHAPES: list[Any] = [False, "false", "False", 0, "0", 0.0, "no", "NO", "n", " false "]


@pytest.mark.parametrize("value", TRUE_SHAPES)
def test_true_shapes(value: Any) -> None:
    assert parse_bool(value) is True


@pytest.mark.parametrize("value", FALSE_SHAPES)
def test_false_shapes(value: Any) -> None:
    assert parse_bool(value) is False


@pytest.mark.parametrize("value", ["quizas", 2, "2", "verdad", [True]])
def test_other_booleans_are_refused(value: Any) -> None:
    with pytest.raises(ParseError):
        parse_bool(value)


def test_blank_boolean_is_none() -> None:
    assert parse_bool(None) is None
    assert parse_bool("") is None


@given(number=st.integers(min_value=0, max_value=10**12))
def test_numbers_as_numbers_or_strings(number: int) -> None:
    for shape in (number, str(number), f"  {number} ", float(number) if number < 2**53 else number, f"{number}.0"):
        assert parse_int(shape) == number


@pytest.mark.parametrize("value", ["12a", "1.5", 1.5, True, "uno", "1,000"])
def test_non_integers_are_refused(value: Any) -> None:
    with pytest.raises(ParseError):
        parse_int(value)


def test_clean_text() -> None:
    assert clean_text(None) == ""
    assert clean_text("  Ana María ") == "Ana María"
    assert clean_text(13101) == "13101"
    assert clean_text(13101.0) == "13101"
    with pytest.raises(ParseError):
        clean_text({"a": 1})


# --- RUN ----------------------------------------------------------------------------------------------------


def modulo_11(body: int) -> str:
    """Independent reference: weights 2..7 from the right, 11 - sum % 11, with 11 -> 0 and 10 -> K."""
    total, weight = 0, 2
    for digit in reversed(str(body)):
        total += int(digit) * weight
        weight = 2 if weight == 7 else weight + 1
    check = 11 - total % 11
    return {11: "0", 10: "K"}.get(check, str(check))


def with_dots(body: int) -> str:
    return f"{body:,}".replace(",", ".")


run_bodies = st.integers(min_value=1, max_value=99_999_999)


@given(body=run_bodies)
def test_run_check_digit_matches_modulo_11(body: int) -> None:
    dv = modulo_11(body)
    expected = f"{body}-{dv}"
    assert parse_run(str(body), dv) == expected
    assert parse_run(body, dv.lower()) == expected
    assert parse_run(with_dots(body), dv) == expected
    assert parse_run(f"{with_dots(body)}-{dv.lower()}") == expected
    assert parse_run(f" {body}-{dv} ", "") == expected
    assert parse_run(f"{body}{dv}", allow_compact=True) == expected
    if dv.isdigit():
        assert parse_run(body, int(dv)) == expected


@given(body=run_bodies, wrong=st.sampled_from("0123456789K"))
def test_any_other_check_digit_is_refused(body: int, wrong: str) -> None:
    assume(wrong != modulo_11(body))
    with pytest.raises(ParseError):
        parse_run(body, wrong)


def test_run_shapes_refused() -> None:
    with pytest.raises(ParseError):
        parse_run("12345678")  # no check digit and no compact reading allowed
    with pytest.raises(ParseError):
        parse_run("12345678-5", "4")  # two different check digits
    with pytest.raises(ParseError):
        parse_run("123-4", min_digits=4)  # rut_responsable: 4 to 8 digits
    with pytest.raises(ParseError):
        parse_run("123456789", "0")


# --- bodies -----------------------------------------------------------------------------------------------------

items = st.dictionaries(
    st.sampled_from(["id_muestra", "codigo_muestra_cliente", "resultado"]),
    st.one_of(st.integers(), st.text(max_size=10)),
    min_size=1,
)


@given(item=items)
def test_every_envelope_gives_the_same_items(item: dict[str, Any]) -> None:
    expected = [item]
    assert payload_items([item]) == expected
    assert payload_items(item) == expected
    assert payload_items({"raw": item}) == expected
    assert payload_items({"raw": [item]}) == expected
    assert payload_items({"raw": json.dumps(item)}) == expected
    assert payload_items({"parametros": json.dumps([item])}) == expected
    assert payload_items(json.dumps(item)) == expected
    assert payload_items([{"raw": item}]) == expected


def test_keys_are_trimmed_and_lower_cased() -> None:
    assert payload_items({" ID_MUESTRA ": 1}) == [{"id_muestra": 1}]


@pytest.mark.parametrize("payload", [[1, 2], "no es json", 5, [["a"]]])
def test_bodies_that_are_not_objects_are_refused(payload: Any) -> None:
    with pytest.raises(ParseError):
        payload_items(payload)


def test_decode_body_accepts_bom_and_latin1() -> None:
    assert decode_body('\ufeff{"a": "ñ"}'.encode()) == '{"a": "ñ"}'
    assert decode_body('{"a": "Tórula"}'.encode("cp1252")) == '{"a": "Tórula"}'
