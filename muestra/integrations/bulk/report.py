"""The outcome report of an upload: one line per row (row number, reference, outcome, field, reason, sample),
as CSV or XLSX, written while the items are read in chunks (bounded memory for 100,000 rows). Text that could
run as a formula in a spreadsheet is neutralised (`muestra.core.spreadsheets`)."""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from muestra.core.spreadsheets import neutralise
from muestra.integrations.models import IntakeItem
from muestra.samples.selectors import public_number

FORMATS = ("csv", "xlsx")


def headers() -> list[str]:
    return [_("Row"), _("Reference"), _("Outcome"), _("Field"), _("Reason"), _("Sample")]


def rows(items: QuerySet[IntakeItem]) -> Iterator[list[Any]]:
    labels = dict(IntakeItem.Outcome.choices)
    for position, reference, outcome, errors, sample_id in items.values_list(
        "position", "reference", "outcome", "errors", "sample_id"
    ).iterator(chunk_size=2000):
        errors = errors or []
        yield [
            position,
            neutralise(reference),
            str(labels.get(outcome, outcome)),
            neutralise(", ".join(dict.fromkeys(e.get("field", "") for e in errors if e.get("field")))),
            neutralise(" | ".join(str(e.get("message", "")) for e in errors)),
            public_number(sample_id) if sample_id else "",
        ]


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_stream(items: QuerySet[IntakeItem]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(headers())
    for row in rows(items):
        yield writer.writerow(row)


def xlsx_file(items: QuerySet[IntakeItem]) -> IO[bytes]:
    """Written row by row in write-only mode; a temporary file positioned at 0."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=_("Outcomes")[:31])
    sheet.append(headers())
    for row in rows(items):
        sheet.append(row)
    output = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - handed to the response
    book.save(output)
    output.seek(0)
    return output  # type: ignore[return-value]
