"""Tolerant parsing of the national platform's wire format. Pure functions: no database, no settings.

Lab systems written for the national platform between 2020 and 2023 sent the same field in many shapes: numbers
as strings, booleans as 0/1 or "si", dates in four formats, RUNs with dots, bodies wrapped as `{"raw": ...}`.
Every function here accepts each shape seen in accepted requests (and a few obvious relatives) and raises
`ParseError` with a Spanish message for anything else. Messages never name the field: the caller knows which
national field it was reading and puts its name in front.

Accepted dates (`parse_datetime`, `parse_date`); the day always comes before the month unless the year leads:
  dd-mm-aaaa · dd/mm/aaaa · dd.mm.aaaa                  (a date: midnight when a time is needed)
  any of those + "T" or spaces + HH:MM[:SS[.ffffff]]     (e.g. 17-05-2024T10:30:00, 17/05/2024 10:30)
  aaaa-mm-dd · aaaa/mm/dd                               (ISO date)
  aaaa-mm-dd + "T" or spaces + HH:MM[:SS[.ffffff]]       (e.g. 2024-05-17 10:30:00, 2024-05-17T10:30:00.123)
  any form with a time may end in "Z" or an offset (+HH:MM, +HHMM, +HH), which is then honoured.
Without an offset a time is Chilean local time (America/Santiago, with its daylight-saving changes); a local time
that occurs twice (the autumn change) is read as the first occurrence, one that does not exist (the spring gap)
is shifted forward by the gap, as Python's zoneinfo does for `fold=0`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from muestra.patients.documents import run_check_digit

#: The national platform is Chilean: naive times are Chilean wall-clock times whatever this server's zone is.
SANTIAGO = ZoneInfo("America/Santiago")


class ParseError(ValueError):
    """A value that no accepted shape matches. `message` is Spanish and does not name the field."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- scalars ------------------------------------------------------------------------------------------------


def is_blank(value: Any) -> bool:
    """Absent, null, empty or only spaces. The string "null" counts: some LIS serialised missing values so."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().casefold() in {"", "null"}
    return False


def clean_text(value: Any) -> str:
    """Any scalar as trimmed text ("" for null). 13101 and 13101.0 both become "13101"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        raise ParseError("se esperaba un valor simple, no un objeto ni una lista")
    return str(value).strip()


def loose_text(value: Any) -> str:
    """Like `clean_text`, but an object or list (never a valid scalar) reads as "" instead of failing: for
    echoing back what a client sent, where a parse error would only hide the real problem."""
    return "" if isinstance(value, dict | list) else clean_text(value)


_INT_PATTERN = re.compile(r"^[+]?(\d+)(?:\.0+)?$")


def parse_int(value: Any) -> int | None:
    """123, "123", " 123 ", 123.0, "123.0" -> 123; None for blank. Booleans are refused (True is not 1 here)."""
    if is_blank(value):
        return None
    if isinstance(value, bool):
        raise ParseError("se esperaba un número, no un valor verdadero/falso")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ParseError(f"se esperaba un número entero, no {value!r}")
    text = clean_text(value)
    match = _INT_PATTERN.match(text)
    if match is None:
        raise ParseError(f"se esperaba un número entero, no «{text}»")
    return int(match.group(1))


_TRUE = frozenset({"true", "1", "si", "sí", "s", "yes", "y", "t", "verdadero"})
_FALSE = frozenset({"false", "0", "no", "n", "f", "falso"})


def parse_bool(value: Any) -> bool | None:
    """true/false, "true"/"false", 0/1, "0"/"1", "si"/"no" (any case, accents optional); None for blank."""
    if is_blank(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = clean_text(value).casefold()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ParseError(f"se esperaba verdadero o falso (true/false, 1/0, si/no), no «{clean_text(value)}»")


# --- dates --------------------------------------------------------------------------------------------------

_TIME = (
    r"(?:(?:\s*T\s*|\s+)(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<f>\d{1,9}))?)?"
    r"\s*(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?)?"
)
_DMY = re.compile(rf"^(?P<d>\d{{1,2}})(?P<sep>[-/.])(?P<m>\d{{1,2}})(?P=sep)(?P<y>\d{{4}}){_TIME}$", re.IGNORECASE)
_YMD = re.compile(rf"^(?P<y>\d{{4}})(?P<sep>[-/])(?P<m>\d{{1,2}})(?P=sep)(?P<d>\d{{1,2}}){_TIME}$", re.IGNORECASE)

_DATE_HELP = "use dd-mm-aaaa, dd/mm/aaaa, dd-mm-aaaaTHH:MM:SS o aaaa-mm-dd HH:MM:SS"


def _match_date(value: Any) -> re.Match[str]:
    text = clean_text(value)
    match = _DMY.match(text) or _YMD.match(text)
    if match is None:
        raise ParseError(f"fecha no reconocida «{text}» ({_DATE_HELP})")
    return match


def _date_of(match: re.Match[str]) -> date:
    try:
        return date(int(match["y"]), int(match["m"]), int(match["d"]))
    except ValueError as exc:
        raise ParseError(f"la fecha «{match.string}» no existe") from exc


def _offset(tz_text: str) -> timezone:
    if tz_text.upper() == "Z":
        return UTC
    sign = -1 if tz_text[0] == "-" else 1
    digits = tz_text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise ParseError(f"zona horaria no válida «{tz_text}»")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def parse_datetime(value: Any) -> datetime | None:
    """An aware datetime (see the module docstring for the accepted shapes); None for blank."""
    if is_blank(value):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=SANTIAGO)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=SANTIAGO)
    match = _match_date(value)
    day = _date_of(match)
    if match["H"] is None:
        return datetime.combine(day, time(), tzinfo=SANTIAGO)
    fraction = (match["f"] or "")[:6].ljust(6, "0")
    try:
        clock = time(int(match["H"]), int(match["M"]), int(match["S"] or 0), int(fraction))
    except ValueError as exc:
        raise ParseError(f"la hora de «{match.string}» no existe") from exc
    zone = _offset(match["tz"]) if match["tz"] else SANTIAGO
    return datetime.combine(day, clock, tzinfo=zone)


def parse_date(value: Any) -> date | None:
    """A calendar date; None for blank. A time part is accepted and ignored, and so is an offset: a birth date
    sent as "1985-05-17T00:00:00Z" is the 17th, not the 16th in Chile."""
    if is_blank(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return _date_of(_match_date(value))


def format_datetime(value: datetime | None) -> str:
    """Our answer format for times: Chilean local time as "dd-mm-aaaa HH:MM:SS" ("" for none)."""
    if value is None:
        return ""
    return value.astimezone(SANTIAGO).strftime("%d-%m-%Y %H:%M:%S")


def format_date(value: date | None) -> str:
    return value.strftime("%d-%m-%Y") if value is not None else ""


def local_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a Chilean calendar day as aware datetimes, for range filters that can use an index."""
    start = datetime.combine(day, time(), tzinfo=SANTIAGO)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=SANTIAGO)
    return start, end


# --- RUN ------------------------------------------------------------------------------------------------------


def parse_run(value: Any, check_digit: Any = None, *, min_digits: int = 1, allow_compact: bool = False) -> str:
    """A Chilean RUN as "12345678-5" / "12345678-K", check digit verified (modulo 11).

    `value` may carry dots and spaces ("12.345.678"), and may carry its own check digit after a hyphen; the
    separate `check_digit` (paciente_dv) may be a digit, "k" or "K", or a number. With `allow_compact` a value
    without hyphen or separate digit ("123456785") is read as body + check digit.
    """
    text = re.sub(r"[\s.]", "", clean_text(value)).upper()
    digit = clean_text(check_digit).upper()
    if not text:
        raise ParseError("falta el número de RUN")
    if "-" in text:
        body, _, embedded = text.partition("-")
        if digit and digit != embedded:
            raise ParseError("el dígito verificador enviado aparte no coincide con el del RUN")
        digit = embedded
    elif digit:
        body = text
    elif allow_compact and len(text) >= 2:
        body, digit = text[:-1], text[-1]
    else:
        raise ParseError("falta el dígito verificador del RUN")
    body = body.lstrip("0")
    if not body.isdigit() or not min_digits <= len(body) <= 8:
        raise ParseError(f"un RUN tiene de {min_digits} a 8 dígitos, sin puntos, y un dígito verificador")
    if len(digit) != 1 or digit not in "0123456789K":
        raise ParseError("el dígito verificador del RUN es un número de 0 a 9 o la letra K")
    if run_check_digit(body) != digit:
        raise ParseError("el dígito verificador no corresponde al RUN")
    return f"{body}-{digit}"


# --- bodies ---------------------------------------------------------------------------------------------------

#: Wrappers clients put around the real payload, unwrapped when they are the object's only key.
_WRAPPERS = frozenset({"raw", "parametros"})
_MAX_UNWRAP = 5


def decode_body(raw: bytes) -> str:
    """Request bytes as text: UTF-8 (a BOM is dropped), else Windows-1252, which older LIS used."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def load_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"el cuerpo no es JSON válido (línea {exc.lineno}, columna {exc.colno})") from exc


def looks_like_json(text: str) -> bool:
    stripped = text.lstrip()
    return stripped.startswith(("[", "{"))


def _normalise_keys(obj: Mapping[Any, Any]) -> dict[str, Any]:
    # Field names are all lower case in the national documentation; some LIS upper-cased or padded them.
    return {str(k).strip().casefold(): v for k, v in obj.items()}


def payload_items(payload: Any) -> list[dict[str, Any]]:
    """The list of item objects in any accepted body shape: an array of objects, one bare object, or either of
    them wrapped as `{"raw": ...}` / `{"parametros": ...}`, where the wrapped value may itself be a JSON string.
    Keys are trimmed and lower-cased."""
    for _depth in range(_MAX_UNWRAP):
        if isinstance(payload, str | bytes):
            payload = load_json(payload.decode() if isinstance(payload, bytes) else payload)
            continue
        if isinstance(payload, Mapping):
            keys = _normalise_keys(payload)
            if len(keys) == 1 and next(iter(keys)) in _WRAPPERS:
                payload = next(iter(keys.values()))
                continue
            return [keys]
        if isinstance(payload, list):
            items = []
            for position, element in enumerate(payload, start=1):
                if isinstance(element, str):
                    element = load_json(element)
                if isinstance(element, Mapping):
                    keys = _normalise_keys(element)
                    if (
                        len(keys) == 1
                        and next(iter(keys)) in _WRAPPERS
                        and isinstance(next(iter(keys.values())), Mapping)
                    ):
                        keys = _normalise_keys(next(iter(keys.values())))
                    items.append(keys)
                else:
                    raise ParseError(f"el elemento {position} del arreglo no es un objeto JSON")
            return items
        raise ParseError("se esperaba un arreglo de objetos JSON o un objeto")
    raise ParseError("demasiados envoltorios anidados en el cuerpo")
