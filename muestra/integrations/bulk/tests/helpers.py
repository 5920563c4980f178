"""Realistic files for the bulk upload tests: the national templates filled with the world's samples."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.utils import timezone

from muestra.demo.builders import fresh_run, sample_in_state, sample_input
from muestra.integrations.bulk.templates import KINDS, SAMPLES_NATIONAL
from muestra.integrations.pntm.parsing import SANTIAGO
from muestra.samples.models import SampleState

FILES = Path(__file__).parent / "files"


def received_sample(world: Any, *, lab: str = "lab_x") -> Any:
    if lab == "lab_x":
        return sample_in_state(SampleState.RECEIVED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    data = sample_input(establishment="105100", laboratory=1000000002)
    return sample_in_state(SampleState.RECEIVED, taker=world.actors["taker_b"], lab=world.actors["lab_y"], data=data)


def national_results_file(world: Any) -> tuple[bytes, dict[str, Any]]:
    """The national «Resultados» CSV (Latin-1, semicolons, CRLF) with bad rows mixed in."""
    samples = {
        "ok": received_sample(world),
        "negative": received_sample(world),
        "bad_run": received_sample(world),
        "unknown_result": received_sample(world),
        "other_lab": received_sample(world, lab="lab_y"),
        "mismatch": received_sample(world),
    }
    text = (FILES / "resultados_latin1.csv").read_text(encoding="latin-1")
    values = {name: str(s.number) for name, s in samples.items()}
    values["ok_run"] = samples["ok"].patient.document_number
    values["negative_run"] = samples["negative"].patient.document_number.replace("-", "")
    return text.format(**values).encode("latin-1"), samples


def local_text(moment: Any) -> str:
    return moment.astimezone(SANTIAGO).strftime("%Y-%m-%d %H:%M:%S")


def national_sample_row(**changes: str) -> dict[str, str]:
    run = fresh_run()
    body, dv = run.split("-")
    row = dict(KINDS[SAMPLES_NATIONAL].columns)
    row.update(
        {
            "codigo_muestra_cliente": f"LIS-{body}",
            "paciente_run": body,
            "paciente_dv": dv,
            "fecha_muestra": local_text(timezone.now() - timedelta(hours=3)),
        }
    )
    row.update(changes)
    return row


def rows_csv(rows: list[dict[str, str]], *, delimiter: str = ",", bom: bool = True) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), delimiter=delimiter)
    writer.writeheader()
    writer.writerows(rows)
    return (("\ufeff" if bom else "") + out.getvalue()).encode("utf-8")


def rows_xlsx(rows: list[list[Any]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
