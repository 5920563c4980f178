"""Printed documents of the life of a sample: tube labels and the shipment manifest, as PDF (fpdf2).

Labels carry the sample's 10-digit public number three ways: a Code 128 barcode (read by every handheld lab scanner
in its factory configuration; for ten digits code set C packs two digits per symbol, so the symbol is short enough
for a 50 mm tube label with wide bars), a QR code (for phone and tablet cameras) and the digits themselves. A tube
travels through many hands: it carries no personal data beyond the patient's initials and the last digits of their
document, enough to match tube and person at the bench.

The manifest travels in the box: it names origin, destination and the tubes (number, tube code, test), never a
patient. Both are drawn as vectors (bars and modules are rectangles), so they print sharply at any resolution.

Everything here is pure: it takes plain data (`LabelData`, `ManifestData`) built by `label_data()` and
`manifest_data()` from rows the caller has already read through the selectors, and returns the PDF bytes.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import segno
from barcode.codex import Code128
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

if TYPE_CHECKING:
    # fpdf2 (with fontTools) adds about 25 MB to a process: it is imported when a document is first drawn, so
    # workers that never print stay small.
    from fpdf import FPDF

from muestra.catalog.models import Test
from muestra.samples import lookups
from muestra.samples.models import Sample, Shipment

#: Unicode fonts for names of places in any language (Vietnamese included). Debian's fonts-dejavu-core installs
#: them; without them the documents fall back to the PDF core font and write names in Latin-1 (accents dropped).
DEJAVU_DIR = Path("/usr/share/fonts/truetype/dejavu")

# fontTools logs every font subset it embeds at INFO level.
logging.getLogger("fontTools").setLevel(logging.WARNING)

#: One label for a tube label printer (width, height in mm).
LABEL_SIZE = (50.0, 25.0)
#: A4 sheet of labels: columns, rows and the size of each cell (mm), centred on the page with cutting guides.
SHEET_COLUMNS = 3
SHEET_ROWS = 10
SHEET_CELL = (64.0, 27.0)
LABELS_PER_SHEET = SHEET_COLUMNS * SHEET_ROWS
#: At most this many labels in one request (a day's tubes of a busy site fit in a few sheets).
MAX_LABELS = 300

#: Code 128 quiet zone on each side, in modules (the standard asks for at least 10).
QUIET_MODULES = 10
#: Narrowest bar, in mm: wider bars read better; never narrower than this on a label.
MIN_MODULE_MM = 0.25
MAX_MODULE_MM = 0.5


# --- the symbols ------------------------------------------------------------------------------------------------


def code128_modules(text: str) -> str:
    """The Code 128 symbol of `text` as a string of modules, "1" a bar and "0" a space (start to stop, no quiet
    zones). Digits-only text of even length is encoded in code set C."""
    modules: str = Code128(text).build()[0]
    return modules


def code128_symbols(text: str) -> list[int]:
    """The symbol values (start code and data, without check symbol) encoded for `text`."""
    return list(Code128(text).encoded)


def qr_matrix(text: str) -> list[list[bool]]:
    """The QR code of `text` (error correction M, no quiet zone) as rows of dark (True) and light modules."""
    qr = segno.make(text, error="m", micro=False)
    return [[bool(cell) for cell in row] for row in qr.matrix_iter(border=0)]


def _runs(bits: Sequence[bool] | str) -> list[tuple[int, int]]:
    """(start, length) of every run of dark modules."""
    runs = []
    start = None
    for i, bit in enumerate([*bits, False]):
        dark = bit == "1" if isinstance(bit, str) else bool(bit)
        if dark and start is None:
            start = i
        elif not dark and start is not None:
            runs.append((start, i - start))
            start = None
    return runs


def draw_code128(pdf: FPDF, text: str, x: float, y: float, width: float, height: float) -> float:
    """Draws the barcode of `text` centred in the box (quiet zones inside it); returns the module width used."""
    modules = code128_modules(text)
    total = len(modules) + 2 * QUIET_MODULES
    module = min(MAX_MODULE_MM, width / total)
    left = x + (width - module * len(modules)) / 2
    pdf.set_fill_color(0, 0, 0)
    for start, length in _runs(modules):
        pdf.rect(left + start * module, y, length * module, height, style="F")
    return module


def draw_qr(pdf: FPDF, text: str, x: float, y: float, size: float) -> None:
    """Draws the QR code of `text` as a `size` mm square at (x, y), one rectangle per run of dark modules."""
    matrix = qr_matrix(text)
    module = size / len(matrix)
    pdf.set_fill_color(0, 0, 0)
    for row_index, row in enumerate(matrix):
        for start, length in _runs(row):
            # A hair of overlap between rows keeps viewers from showing white seams between modules.
            pdf.rect(x + start * module, y + row_index * module, length * module, module * 1.02, style="F")


# --- text -----------------------------------------------------------------------------------------------------


def ascii_text(text: str) -> str:
    """Text without diacritics for the labels' core font (Đ/đ have no decomposition and are mapped by hand)."""
    text = text.replace("Đ", "D").replace("đ", "d").replace("Ø", "O").replace("ø", "o")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).encode("ascii", "ignore").decode()


def initials(*names: str) -> str:
    """The initials of a person: first given name, first and second surname ("Ana María Pérez Soto" -> "APS")."""
    letters = []
    for name in names:
        words = ascii_text(name or "").split()
        if words:
            letters.append(words[0][0].upper())
    return "".join(letters)


def document_tail(document_number: str, digits: int = 4) -> str:
    """The last characters of an identity document (its check digit included), enough to tell two people apart."""
    alnum = "".join(c for c in ascii_text(document_number or "") if c.isalnum()).upper()
    return alnum[-digits:] if alnum else ""


def local_datetime(value: datetime | None) -> str:
    """A date and time on paper: ISO order in local time, unambiguous in every language."""
    if value is None:
        return ""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")


class _Fonts:
    """The document's fonts: DejaVu when installed (any script), else Helvetica with text reduced to Latin-1."""

    def __init__(self, pdf: FPDF) -> None:
        self.pdf = pdf
        regular, bold = DEJAVU_DIR / "DejaVuSans.ttf", DEJAVU_DIR / "DejaVuSans-Bold.ttf"
        self.unicode = regular.is_file() and bold.is_file()
        if self.unicode:
            pdf.add_font("dejavu", "", str(regular))
            pdf.add_font("dejavu", "B", str(bold))
            self.family = "dejavu"
        else:
            self.family = "helvetica"

    def use(self, size: float, bold: bool = False) -> None:
        self.pdf.set_font(self.family, "B" if bold else "", size)

    def text(self, value: Any) -> str:
        text = str(value)
        if self.unicode:
            return text
        return unicodedata.normalize("NFKC", text).encode("latin-1", "replace").decode("latin-1")


def _new_pdf(title: str, page_format: str | tuple[float, float]) -> FPDF:
    from fpdf import FPDF

    pdf = FPDF(unit="mm", format=page_format)
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.set_creator("Muestra")
    pdf.set_title(title)
    return pdf


def _pdf_bytes(pdf: FPDF) -> bytes:
    return bytes(pdf.output())


# --- tube labels ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelData:
    """What one tube label shows. `number` is what the barcode and the QR code carry."""

    number: str
    collected: str
    patient: str  # initials and last digits of the document, never a name
    test: str


def label_data(sample: Sample) -> LabelData:
    """The label of a sample read through the selectors (patient joined, reference rows attached)."""
    patient = sample.patient
    if patient is not None:
        who = initials(patient.given_names, patient.paternal_surname, patient.maternal_surname)
        tail = document_tail(patient.document_number)
        person = f"{who} *{tail}" if tail else who
    elif sample.is_pool:
        person = "POOL"
    else:
        person = ""
    test = lookups.by_pk(Test, sample.test_id)
    return LabelData(
        number=str(sample.number),
        collected=local_datetime(sample.collected_at),
        patient=person,
        test=ascii_text(test.code) if test is not None else "",
    )


def _draw_label(pdf: FPDF, label: LabelData, x: float, y: float, width: float, height: float) -> None:
    """One label in the box (x, y, width, height): barcode across the top, digits and facts bottom left, QR right."""
    pad = 1.5
    inner_w = width - 2 * pad
    bar_h = height * 0.32
    draw_code128(pdf, label.number, x + pad, y + pad, inner_w, bar_h)
    top = y + pad + bar_h + 1.0
    # The QR code sits bottom right with a margin of about four modules from the bars and the label's edge.
    qr_size = min(height * 0.44, inner_w * 0.3)
    quiet = qr_size / 21 * 3
    qr_x, qr_y = x + width - pad - quiet / 2 - qr_size, y + height - pad - qr_size
    draw_qr(pdf, label.number, qr_x, qr_y, qr_size)
    text_w = qr_x - quiet - (x + pad)
    pdf.set_text_color(0, 0, 0)
    # The human-readable number, sized to fill the text column (monospaced digits are easy to read aloud).
    size = min(11.0, max(6.0, text_w / (len(label.number) * 0.6 * 0.3528)))
    pdf.set_font("courier", "B", size)
    line = size * 0.3528 * 1.05
    pdf.set_xy(x + pad, top)
    pdf.cell(text_w, line, label.number)
    small = max(5.0, min(7.0, size * 0.62))
    small_line = small * 0.3528 * 1.2
    pdf.set_font("helvetica", "", small)
    cursor = top + line + 0.3
    for text in (label.collected, label.patient, label.test):
        if not text:
            continue
        pdf.set_xy(x + pad, cursor)
        pdf.cell(text_w, small_line, ascii_text(text)[:40])
        cursor += small_line


def labels_pdf(labels: Sequence[LabelData], *, sheet: bool = False) -> bytes:
    """One label per page sized for a tube label printer, or (`sheet`) A4 pages of labels in a grid."""
    if not labels:
        raise ValueError("no labels to print")
    if len(labels) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels at once")
    if not sheet:
        pdf = _new_pdf("Muestra labels", LABEL_SIZE)
        for label in labels:
            pdf.add_page()
            _draw_label(pdf, label, 0, 0, *LABEL_SIZE)
        return _pdf_bytes(pdf)
    pdf = _new_pdf("Muestra labels", "A4")
    cell_w, cell_h = SHEET_CELL
    left = (pdf.w - SHEET_COLUMNS * cell_w) / 2
    top = (pdf.h - SHEET_ROWS * cell_h) / 2
    for index, label in enumerate(labels):
        slot = index % LABELS_PER_SHEET
        if slot == 0:
            pdf.add_page()
        column, row = slot % SHEET_COLUMNS, slot // SHEET_COLUMNS
        x, y = left + column * cell_w, top + row * cell_h
        _draw_cut_guide(pdf, x, y, cell_w, cell_h)
        _draw_label(pdf, label, x, y, cell_w, cell_h)
    return _pdf_bytes(pdf)


def _draw_cut_guide(pdf: FPDF, x: float, y: float, width: float, height: float) -> None:
    """A light dashed frame around a label of the sheet, to cut along."""
    pdf.set_draw_color(190, 190, 190)
    pdf.set_line_width(0.1)
    with pdf.local_context(dash_pattern={"dash": 1, "gap": 1}):
        pdf.rect(x, y, width, height)


# --- shipment manifest ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManifestLine:
    number: str
    tube_code: str
    test: str
    collected: str


@dataclass(frozen=True)
class ManifestData:
    number: str
    state: str
    origin: str
    destination: str
    created: str
    dispatched: str
    note: str = ""
    lines: list[ManifestLine] = field(default_factory=list)
    generated: str = ""


def manifest_data(shipment: Shipment, samples: Sequence[Sample]) -> ManifestData:
    """The manifest of a shipment read through the selectors, with the samples in it."""
    lines = []
    for sample in samples:
        test = lookups.by_pk(Test, sample.test_id)
        lines.append(
            ManifestLine(
                number=str(sample.number),
                tube_code=sample.tube_code or "",
                test=test.display_name if test is not None else "",
                collected=local_datetime(sample.collected_at),
            )
        )
    est, lab = shipment.establishment, shipment.laboratory
    return ManifestData(
        number=str(shipment.number),
        state=str(Shipment.State(shipment.state).label),
        origin=f"{est.name} ({est.code})",
        destination=f"{lab.name} ({lab.platform_id})",
        created=local_datetime(shipment.created_at),
        dispatched=local_datetime(shipment.dispatched_at),
        note=shipment.note,
        lines=lines,
        generated=local_datetime(timezone.now()),
    )


def manifest_pdf(data: ManifestData) -> bytes:
    """The manifest on A4: the shipment's barcode, origin, destination, dispatch time, the tubes, signatures."""
    pdf = _new_pdf(_("Shipment manifest %(number)s") % {"number": data.number}, "A4")
    fonts = _Fonts(pdf)
    margin = 15.0
    pdf.set_margins(margin, margin, margin)
    pdf.set_auto_page_break(True, margin=18)
    footer_text = fonts.text(
        _("Shipment %(number)s · printed %(when)s") % {"number": data.number, "when": data.generated}
    )

    def footer() -> None:
        pdf.set_y(-12)
        fonts.use(8)
        pdf.set_text_color(80, 80, 80)
        pdf.cell(0, 4, footer_text)
        pdf.cell(0, 4, fonts.text(_("Page %(page)s") % {"page": pdf.page_no()}), align="R")
        pdf.set_text_color(0, 0, 0)

    pdf.footer = footer  # type: ignore[method-assign]
    pdf.add_page()
    width = pdf.w - 2 * margin

    # Title and the shipment's barcode (the lab scans it to open the box's manifest).
    fonts.use(16, bold=True)
    pdf.set_xy(margin, margin)
    pdf.cell(width * 0.5, 8, fonts.text(_("Shipment manifest")))
    draw_code128(pdf, data.number, margin + width * 0.5, margin, width * 0.5, 14)
    pdf.set_font("courier", "B", 12)
    pdf.set_xy(margin + width * 0.5, margin + 14.5)
    pdf.cell(width * 0.5, 5, data.number, align="C")
    fonts.use(11)
    pdf.set_xy(margin, margin + 9)
    pdf.cell(width * 0.5, 6, fonts.text(_("No. %(number)s") % {"number": data.number}))

    # Facts of the shipment, two columns of label and value.
    pdf.set_xy(margin, margin + 24)
    facts = [
        (_("Origin"), data.origin),
        (_("Destination"), data.destination),
        (_("State"), data.state),
        (_("Prepared"), data.created),
        (pgettext("shipment", "Dispatched"), data.dispatched or _("not dispatched yet")),
        (_("Tubes"), str(len(data.lines))),
    ]
    if data.note:
        facts.append((_("Note"), data.note))
    for label, value in facts:
        fonts.use(10, bold=True)
        pdf.cell(32, 6, fonts.text(label))
        fonts.use(10)
        pdf.multi_cell(width - 32, 6, fonts.text(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

    # The tubes; headings repeat on every page. The last column is ticked by the lab on arrival.
    from fpdf import fonts as fpdf_fonts

    fonts.use(9)
    headings = [_("#"), _("Sample number"), _("Tube code"), _("Test"), _("Collected"), pgettext("tube", "Received")]
    with pdf.table(
        col_widths=(8, 27, 35, 48, 34, 24),
        headings_style=fpdf_fonts.FontFace(emphasis="BOLD", fill_color=(230, 233, 237)),
        line_height=6,
        text_align=("RIGHT", "LEFT", "LEFT", "LEFT", "LEFT", "CENTER"),
        borders_layout="HORIZONTAL_LINES",
    ) as table:
        row = table.row()
        for heading in headings:
            row.cell(fonts.text(heading))
        for index, line in enumerate(data.lines, start=1):
            row = table.row()
            row.cell(str(index))
            row.cell(line.number)
            row.cell(fonts.text(line.tube_code or "—"))
            row.cell(fonts.text(line.test))
            row.cell(line.collected)
            row.cell("[   ]")
    if not data.lines:
        fonts.use(10)
        pdf.cell(0, 8, fonts.text(_("No tubes in this shipment.")), new_x="LMARGIN", new_y="NEXT")

    # Signatures: who handed the box over, who received it.
    if pdf.get_y() > pdf.h - 60:
        pdf.add_page()
    pdf.ln(12)
    column = (width - 10) / 2
    y = pdf.get_y()
    for i, (title, hint) in enumerate(
        [
            (_("Sent by"), _("Name, signature, date and time")),
            (_("Received by"), _("Name, signature, date and time")),
        ]
    ):
        x = margin + i * (column + 10)
        pdf.set_draw_color(0, 0, 0)
        pdf.set_line_width(0.3)
        pdf.line(x, y + 14, x + column, y + 14)
        fonts.use(10, bold=True)
        pdf.set_xy(x, y + 15)
        pdf.cell(column, 5, fonts.text(title))
        fonts.use(8)
        pdf.set_xy(x, y + 20)
        pdf.cell(column, 4, fonts.text(hint))
    return _pdf_bytes(pdf)
