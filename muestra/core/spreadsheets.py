"""Cells written to spreadsheets people open (CSV and XLSX exports, outcome reports): text that a spreadsheet
program could run as a formula is neutralised (CSV injection), plain numbers and phone numbers are left alone."""

from __future__ import annotations

from typing import Any

#: A cell starting with one of these is run as a formula by spreadsheet programs (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_HARMLESS = frozenset("0123456789 ")


def may_run_as_formula(text: str) -> bool:
    """True for text a spreadsheet could run; a phone number like +56912345678 is left as it is."""
    if not text.startswith(FORMULA_STARTS):
        return False
    return not (text[0] in "+-" and len(text) > 1 and set(text[1:]) <= _HARMLESS)


def neutralise(value: Any) -> Any:
    """The value with a leading apostrophe when it is text that could run as a formula; anything else unchanged."""
    if isinstance(value, str) and may_run_as_formula(value):
        return "'" + value
    return value
