"""Reading uploaded CSV and XLSX files as streams of rows, with tolerant headers.

Nothing here holds a whole file in memory: `open_table` returns the header and an iterator of rows read lazily
from the stored file (CSV through an incremental text decoder, XLSX through openpyxl's read-only mode), plus a
row count made by a first streaming pass (for the progress bar). Values come out as trimmed text; XLSX dates
become ISO text (`2024-05-17 10:30:00`), which the national date parser accepts.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import IO, Any

from django.utils.translation import gettext as _

#: CSV delimiters accepted, the most frequent one in the header line wins.
DELIMITERS = (";", ",", "\t")
_XLSX_MAGIC = b"PK\x03\x04"
_SNIFF_BYTES = 64 * 1024


class FileUnreadable(Exception):
    """The file as a whole cannot be read (not CSV/XLSX, no header, a required column missing)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def fold_header(name: Any) -> str:
    """'ID Muestra' -> 'id_muestra', 'Fecha recepción' -> 'fecha_recepcion': case, accents and spacing ignored."""
    text = unicodedata.normalize("NFKD", str(name or ""))
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return re.sub(r"[^0-9a-z]+", "_", text).strip("_")


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


@dataclass
class Table:
    """A file's header (folded names) and a factory of row iterators: (row number, {column: text})."""

    header: list[str]
    total: int
    _rows: Callable[[], Iterator[list[str]]]
    #: The number of the last row that is not wholly blank (0 for none): row numbers run from 1 to it.
    last: int = 0

    def rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        """Data rows numbered from 1 (the first row under the header); wholly blank rows are skipped."""
        for number, values in enumerate(self._rows(), start=1):
            if not any(values):
                continue
            row: dict[str, str] = {}
            for i, name in enumerate(self.header):
                if name and ((i < len(values) and values[i]) or name not in row):
                    row[name] = values[i] if i < len(values) else ""
            yield number, row


def _count(filled: Iterable[bool]) -> tuple[int, int]:
    """(rows that are not wholly blank, number of the last of them) of a file's data rows, numbered from 1."""
    total = last = 0
    for number, any_value in enumerate(filled, start=1):
        if any_value:
            total, last = total + 1, number
    return total, last


def _encoding(handle: IO[bytes]) -> str:
    """UTF-8 (with or without BOM) when every byte decodes, else Windows-1252 (Latin-1 for its 5 holes)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    handle.seek(0)
    try:
        while chunk := handle.read(1024 * 1024):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
        encoding = "utf-8-sig"
    except UnicodeDecodeError:
        handle.seek(0)
        try:
            cp1252 = codecs.getincrementaldecoder("cp1252")()
            while chunk := handle.read(1024 * 1024):
                cp1252.decode(chunk)
            encoding = "cp1252"
        except UnicodeDecodeError:
            encoding = "latin-1"
    handle.seek(0)
    return encoding


def _csv_table(handle: IO[bytes]) -> Table:
    encoding = _encoding(handle)
    first = handle.read(_SNIFF_BYTES).decode(encoding, errors="replace").lstrip("\ufeff")
    header_line = first.splitlines()[0] if first.strip() else ""
    if not header_line.strip():
        raise FileUnreadable(_("The file is empty: it needs a header row and at least one row."))
    delimiter = max(DELIMITERS, key=header_line.count)

    def lines() -> Iterator[list[str]]:
        handle.seek(0)
        text = io.TextIOWrapper(handle, encoding=encoding, newline="", errors="replace")
        try:
            reader = csv.reader(text, delimiter=delimiter)
            next(reader, None)
            for row in reader:
                yield [v.strip() for v in row]
        finally:
            text.detach()

    handle.seek(0)
    text = io.TextIOWrapper(handle, encoding=encoding, newline="", errors="replace")
    try:
        reader = csv.reader(text, delimiter=delimiter)
        header = [fold_header(v) for v in next(reader, [])]
        total, last = _count(any(v.strip() for v in row) for row in reader)
    finally:
        text.detach()
    return Table(header=header, total=total, _rows=lines, last=last)


def _xlsx_table(handle: IO[bytes]) -> Table:
    from openpyxl import load_workbook

    try:
        book = load_workbook(handle, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise FileUnreadable(_("The file is not a valid Excel (XLSX) workbook.")) from exc
    sheet = book.worksheets[0]

    def values() -> Iterator[list[str]]:
        for row in sheet.iter_rows(values_only=True):
            yield [cell_text(v) for v in row]

    first = next(values(), None)
    if first is None or not any(first):
        raise FileUnreadable(_("The file is empty: it needs a header row and at least one row."))
    header = [fold_header(v) for v in first]

    def data() -> Iterator[list[str]]:
        rows = values()
        next(rows, None)
        yield from rows

    total, last = _count(any(row) for row in data())
    return Table(header=header, total=total, _rows=data, last=last)


def open_table(handle: IO[bytes], filename: str = "") -> Table:
    """The table in an uploaded file (XLSX recognised by its content, anything else read as CSV)."""
    handle.seek(0)
    magic = handle.read(4)
    handle.seek(0)
    if magic == _XLSX_MAGIC or filename.lower().endswith((".xlsx", ".xlsm")):
        return _xlsx_table(handle)
    if b"\x00" in handle.read(_SNIFF_BYTES):
        raise FileUnreadable(_("The file is neither CSV nor XLSX."))
    handle.seek(0)
    return _csv_table(handle)
