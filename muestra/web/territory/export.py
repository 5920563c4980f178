"""The territory export: the columns, and writers for CSV (streamed) and XLSX (openpyxl, write-only mode).

An export holds exactly the samples the list's filters select within the caller's scope. It carries the patient's
identity and phone number because the people who use it (regional health authorities) trace contacts; address and
e-mail are left out (not needed for that). Every export is recorded in the audit trail.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from muestra.core.spreadsheets import may_run_as_formula
from muestra.samples.models import Sample

if TYPE_CHECKING:
    # openpyxl is imported when an XLSX export is written, so workers that never export stay smaller.
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet

Value = str | int | date | datetime | None


def _local(moment: datetime | None) -> datetime | None:
    return timezone.localtime(moment).replace(tzinfo=None, microsecond=0) if moment is not None else None


def _name(row: Any) -> str:
    """A reference row's name in the interface language (catalogue rows translate themselves through str())."""
    return str(row) if row is not None else ""


def _patient(attribute: str) -> Callable[[Sample], Value]:
    def get(sample: Sample) -> Value:
        patient = sample.patient
        return getattr(patient, attribute) if patient is not None else None

    return get


def _patient_ref(attribute: str) -> Callable[[Sample], Value]:
    def get(sample: Sample) -> Value:
        patient = sample.patient
        return _name(getattr(patient, attribute)) if patient is not None else ""

    return get


def _sex(sample: Sample) -> Value:
    return sample.patient.get_sex_display() if sample.patient is not None else ""


@dataclass(frozen=True)
class Column:
    header: str | Promise
    value: Callable[[Sample], Value]


COLUMNS: list[Column] = [
    Column(_("Sample number"), lambda s: s.number),
    Column(_("Collection time"), lambda s: _local(s.collected_at)),
    Column(_("Establishment code"), lambda s: s.establishment.code),
    Column(_("Establishment"), lambda s: s.establishment.name),
    Column(_("Laboratory"), lambda s: s.laboratory.name if s.laboratory else ""),
    Column(_("Disease"), lambda s: _name(s.disease)),
    Column(_("Test"), lambda s: _name(s.test)),
    Column(_("Sample type"), lambda s: _name(s.sample_type)),
    Column(_("State"), lambda s: s.get_state_display()),
    Column(_("Received at"), lambda s: _local(s.received_at)),
    Column(_("Result"), lambda s: _name(s.result_value)),
    Column(_("Result time"), lambda s: _local(s.result_at)),
    Column(_("Rejection reason"), lambda s: _name(s.rejection_reason)),
    Column(_("Identity document"), _patient_ref("document_type")),
    Column(_("Document number"), _patient("document_number")),
    Column(_("Given names"), _patient("given_names")),
    Column(_("First surname"), _patient("paternal_surname")),
    Column(_("Second surname"), _patient("maternal_surname")),
    Column(_("Date of birth"), _patient("birth_date")),
    Column(_("Sex"), _sex),
    Column(_("Territory of residence"), _patient_ref("residence")),
    Column(_("Phone"), _patient("phone")),
]


def headers() -> list[str]:
    return [str(column.header) for column in COLUMNS]


def row_values(sample: Sample) -> list[Value]:
    return [column.value(sample) for column in COLUMNS]


def _csv_text(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    if isinstance(value, str) and may_run_as_formula(text):
        return "'" + text
    return text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_stream(samples: Iterable[Sample]) -> Iterator[str]:
    """The CSV text, a line at a time. Starts with a byte-order mark so spreadsheet programs read UTF-8 accents."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(headers())
    for sample in samples:
        yield writer.writerow([_csv_text(v) for v in row_values(sample)])


def _xlsx_cell(sheet: WriteOnlyWorksheet, value: Value) -> WriteOnlyCell | Value:
    from openpyxl.cell import WriteOnlyCell

    if isinstance(value, datetime):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = "yyyy-mm-dd hh:mm"
        return cell
    if isinstance(value, date):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = "yyyy-mm-dd"
        return cell
    if isinstance(value, str) and value.startswith("="):
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"  # stored as text: openpyxl would otherwise write it as a formula
        return cell
    return value


def xlsx_file(samples: Iterable[Sample], *, sheet_title: str) -> io.BufferedRandom | Any:
    """The workbook written row by row (write-only mode keeps memory flat); returns a file positioned at 0."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=sheet_title[:31])
    sheet.append(headers())
    for sample in samples:
        sheet.append([_xlsx_cell(sheet, v) for v in row_values(sample)])
    output = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - handed to the response
    book.save(output)
    output.seek(0)
    return output
