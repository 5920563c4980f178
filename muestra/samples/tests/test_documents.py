"""Tube labels and shipment manifests as PDF: the symbols carry exactly the public number, the pages have the
printer's size, a sheet holds a grid of labels, and no personal data beyond initials reaches paper."""

from __future__ import annotations

import re
from typing import Any

import pytest
import segno
from barcode.charsets import code128 as code128_charset

from muestra.demo.builders import patient_input, sample_in_state, sample_input
from muestra.samples import documents, selectors
from muestra.samples.documents import LabelData
from muestra.samples.models import Sample, SampleState

MM = 72 / 25.4  # PDF points per millimetre

#: Code 128 patterns (bar/space widths) by symbol value, from the specification's table as python-barcode holds it.
PATTERNS = {pattern: value for value, pattern in enumerate(code128_charset.CODES)}
START_C = 105
STOP = "1100011101011"


def decode_code128_set_c(modules: str) -> str:
    """An independent decoder for what the labels draw: start C, pairs of digits, check symbol, stop."""
    assert modules.endswith(STOP), "the symbol must end with the stop pattern"
    body = modules[: -len(STOP)]
    assert len(body) % 11 == 0
    values = [PATTERNS[body[i : i + 11]] for i in range(0, len(body), 11)]
    start, *data, check = values
    assert start == START_C, "ten digits are encoded in code set C"
    assert check == (start + sum(i * v for i, v in enumerate(data, start=1))) % 103, "wrong check symbol"
    return "".join(f"{v:02d}" for v in data)


def pages(pdf: bytes) -> list[tuple[float, float]]:
    """(width, height) in mm of each page of a PDF written by fpdf2 (uncompressed page dictionaries)."""
    assert pdf.startswith(b"%PDF-1.") and pdf.rstrip().endswith(b"%%EOF")
    count = len(re.findall(rb"/Type /Page\n", pdf))
    boxes = [tuple(float(x) for x in m.groups()) for m in re.finditer(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", pdf)]
    if len(boxes) == 1 and count > 1:  # one shared MediaBox on the page tree
        boxes = boxes * count
    assert len(boxes) == count, (count, boxes)
    return [(round(w / MM, 1), round(h / MM, 1)) for w, h in boxes]


@pytest.mark.parametrize("number", ["1000000001", "1000000123", "1099999999", "1234567890"])
def test_the_barcode_decodes_to_the_public_number(number):
    assert decode_code128_set_c(documents.code128_modules(number)) == number
    assert documents.code128_symbols(number)[0] == START_C


@pytest.mark.parametrize("number", ["1000000001", "1234567890"])
def test_the_qr_code_is_the_number_in_numeric_mode(number):
    qr = segno.make(number, error="m", micro=False)
    assert qr.mode == "numeric" and qr.version == 1
    assert documents.qr_matrix(number) == [[bool(c) for c in row] for row in qr.matrix_iter(border=0)]


def test_barcode_bars_fit_the_label_with_quiet_zones():
    modules = documents.code128_modules("1000000123")
    width = documents.LABEL_SIZE[0] - 3
    module = width / (len(modules) + 2 * documents.QUIET_MODULES)
    assert documents.MIN_MODULE_MM <= module <= documents.MAX_MODULE_MM


class Recorder:
    def __init__(self) -> None:
        self.barcodes: list[str] = []
        self.qrs: list[str] = []


@pytest.fixture
def drawn(monkeypatch) -> Recorder:
    """Records the text every barcode and QR code of a document is drawn from (then draws it as usual)."""
    seen = Recorder()
    draw_code128, draw_qr = documents.draw_code128, documents.draw_qr

    def code128(pdf: Any, text: str, *args: Any) -> float:
        seen.barcodes.append(text)
        return draw_code128(pdf, text, *args)

    def qr(pdf: Any, text: str, *args: Any) -> None:
        seen.qrs.append(text)
        draw_qr(pdf, text, *args)

    monkeypatch.setattr(documents, "draw_code128", code128)
    monkeypatch.setattr(documents, "draw_qr", qr)
    return seen


LABEL = LabelData(number="1000000123", collected="2026-11-21 10:30", patient="APS *4567", test="covid19-pcr")


def test_one_label_is_one_50_by_25_mm_page_carrying_the_number(drawn):
    pdf = documents.labels_pdf([LABEL])
    assert pages(pdf) == [(50.0, 25.0)]
    assert drawn.barcodes == ["1000000123"] and drawn.qrs == ["1000000123"]


def test_a_roll_prints_one_label_per_page(drawn):
    other = LabelData("1000000124", "", "", "")
    assert pages(documents.labels_pdf([LABEL, other])) == [(50.0, 25.0)] * 2
    assert drawn.barcodes == drawn.qrs == ["1000000123", "1000000124"]


def test_a_sheet_is_a4_with_a_grid_and_a_new_page_when_full(drawn):
    labels = [LabelData(str(1000000100 + i), "", "", "") for i in range(documents.LABELS_PER_SHEET + 1)]
    pdf = documents.labels_pdf(labels, sheet=True)
    assert pages(pdf) == [(210.0, 297.0)] * 2
    assert drawn.barcodes == [label.number for label in labels] == drawn.qrs


def test_label_requests_are_bounded():
    with pytest.raises(ValueError):
        documents.labels_pdf([])
    with pytest.raises(ValueError):
        documents.labels_pdf([LABEL] * (documents.MAX_LABELS + 1), sheet=True)


@pytest.mark.parametrize(
    "names,expected",
    [
        (("Ana María", "Pérez", "Soto"), "APS"),
        (("Thị Lan", "Nguyễn", ""), "TN"),
        (("Đức", "Đỗ", ""), "DD"),
        (("", "", ""), ""),
    ],
)
def test_initials_are_ascii_capitals(names, expected):
    assert documents.initials(*names) == expected


def test_document_tail_keeps_the_last_characters_only():
    assert documents.document_tail("12.345.678-5") == "6785"
    assert documents.document_tail("079188000101") == "0101"
    assert documents.document_tail("") == ""


def test_label_data_of_a_sample_has_initials_not_the_name(world):
    taker, lab = world.actors["taker_a"], world.actors["lab_x"]
    data = sample_input(patient=patient_input(run="12345678-5", given_names="Ana María", surname="Pérez"))
    registered = sample_in_state(SampleState.REGISTERED, taker=taker, lab=lab, data=data)
    sample = selectors.sample_get(taker, registered.pk)
    assert sample is not None
    label = documents.label_data(sample)
    assert label.number == str(sample.number) and len(label.number) == 10
    assert label.patient == "APP *6785"  # Ana María Pérez Prueba, RUN 12.345.678-5
    assert "Ana" not in repr(label) and "Pérez" not in repr(label) and "12345678" not in repr(label)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", label.collected)
    assert label.test == "covid19-pcr"


def test_the_manifest_lists_the_tubes_without_patients(world, drawn):
    taker, lab = world.actors["taker_a"], world.actors["lab_x"]
    samples = [sample_in_state(SampleState.DISPATCHED, taker=taker, lab=lab) for _ in range(2)]
    shipment = selectors.shipment_header(taker, Sample.objects.get(pk=samples[0].pk).shipment_id)
    assert shipment is not None
    items = selectors.shipment_items(taker, shipment.pk)
    data = documents.manifest_data(shipment, [i.sample for i in items])
    assert data.number == str(shipment.number)
    assert data.origin.startswith(world.est_a.name) and data.destination.startswith(world.lab_x.name)
    assert data.dispatched and [line.number for line in data.lines] == [str(s.number) for s in samples[:1]]
    assert not any(field in ManifestFields for field in ("patient", "name", "document"))
    pdf = documents.manifest_pdf(data)
    assert pages(pdf) == [(210.0, 297.0)]
    assert drawn.barcodes == [str(shipment.number)] and drawn.qrs == []


ManifestFields = set(documents.ManifestData.__dataclass_fields__) | set(documents.ManifestLine.__dataclass_fields__)


def test_a_long_manifest_runs_over_pages_with_a_vietnamese_origin():
    lines = [documents.ManifestLine(str(1000000100 + i), f"TB-{i}", "SARS-CoV-2 RT-PCR", "") for i in range(80)]
    data = documents.ManifestData(
        number="1000000005",
        state="Dispatched",
        origin="Trạm Y tế Muestra (TP. Hồ Chí Minh)",
        destination="Phòng xét nghiệm Muestra Z",
        created="2026-11-21 10:00",
        dispatched="",
        lines=lines,
    )
    assert len(pages(documents.manifest_pdf(data))) >= 3
