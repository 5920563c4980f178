"""The kinds of bulk file Muestra reads, their columns (with the header spellings accepted) and the downloadable
templates (a header row and an example row, as CSV or XLSX). Documented in docs/uploads.md."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from muestra.core.spreadsheets import neutralise
from muestra.integrations.bulk.parsing import fold_header
from muestra.integrations.pntm.mapping import WIRE_FIELDS

RESULTS_NATIONAL = "results-national"
SAMPLES_NATIONAL = "samples-national"
RESULTS = "results"
SAMPLES = "samples"


@dataclass(frozen=True)
class Kind:
    code: str
    label: str | Promise
    #: Results kinds deliver results to existing samples; samples kinds register samples (optionally with result).
    results: bool
    #: Template columns (header as written) and an example value each.
    columns: tuple[tuple[str, str], ...]
    #: Columns a file must have.
    required: tuple[str, ...]

    def canonical(self, header: list[str]) -> list[str]:
        """Folded file headers -> this kind's field names ("" for a column it does not read)."""
        aliases = RESULT_ALIASES if self.results else SAMPLE_ALIASES
        return [aliases.get(name, "") for name in header]


#: Folded header -> field, for the results kinds.
RESULT_ALIASES: dict[str, str] = {}
for _field, _names in {
    "sample": ("id_muestra", "idmuestra", "muestra", "sample", "sample_number", "numero_muestra", "n_muestra"),
    "patient": ("id_paciente", "paciente", "patient", "patient_document", "run_paciente", "rut_paciente"),
    "result": ("resultado", "result", "result_value"),
    "reported_at": (
        "fecha_resultado",
        "fecha_resultado_muestra",
        "fecha_hora_resultado_laboratorio",
        "reported_at",
        "result_at",
    ),
    "received_at": ("fecha_recepcion", "fecha_recepcion_muestra", "fecha_recepcion_laboratorio", "received_at"),
}.items():
    for _name in _names:
        RESULT_ALIASES[_name] = _field

#: Folded header -> national wire field (as `pntm.mapping.sample_from_wire` reads it), for the samples kinds.
SAMPLE_ALIASES: dict[str, str] = {name: name for name in WIRE_FIELDS}
SAMPLE_ALIASES.update(
    {
        "rut_tomador_muestra": "rut_responsable",
        "rut_profesional_responsable": "rut_profesional_responsable",
        "rut_medico_solicitante": "rut_medico",
        "fecha_resultado_muestra": "fecha_hora_resultado_laboratorio",
        "fecha_resultado": "fecha_hora_resultado_laboratorio",
        "fecha_recepcion_muestra": "fecha_recepcion",
        "fecha_recepcion_laboratorio": "fecha_recepcion",
        "fecha_recepcion": "fecha_recepcion",
        "modulo": "modulo",
    }
)

_SAMPLE_EXAMPLE: tuple[tuple[str, str], ...] = (
    ("codigo_muestra_cliente", "LIS-2024-000123"),
    ("id_laboratorio", "1000000001"),
    ("cod_deis", "113100"),
    ("rut_responsable", "12345678-5"),
    ("sin_orden_medica", "true"),
    ("rut_medico", ""),
    ("epivigila", ""),
    ("paciente_tipodoc", "RUN"),
    ("paciente_run", "11111111"),
    ("paciente_dv", "1"),
    ("paciente_pasaporte", ""),
    ("paciente_ext_paisorigen", ""),
    ("paciente_nombres", "María José"),
    ("paciente_ap_pat", "González"),
    ("paciente_ap_mat", "Pérez"),
    ("paciente_fecha_nac", "17-05-1985"),
    ("paciente_sexo", "F"),
    ("paciente_comuna", "13101"),
    ("paciente_direccion", "Av. Libertador 1234"),
    ("paciente_telefono", "+56912345678"),
    ("paciente_email", ""),
    ("paciente_prevision", "FONASA"),
    ("fecha_muestra", "2024-05-17 10:30:00"),
    ("tecnica_muestra", "RT-PCR"),
    ("tipo_muestra", "Tórulas Nasofaríngeas"),
    ("busqueda_activa", "false"),
    ("estrategia", "Sintomáticos"),
    ("subestrategia", ""),
)

KINDS: dict[str, Kind] = {
    k.code: k
    for k in (
        Kind(
            RESULTS_NATIONAL,
            _("Results (national template «Resultados»)"),
            True,
            (("ID Muestra", "1000000042"), ("ID Paciente", "11111111-1"), ("Resultado", "Muestra no apta")),
            ("sample", "result"),
        ),
        Kind(
            SAMPLES_NATIONAL,
            _("Samples and results (national template «Muestras y resultados»)"),
            False,
            (
                *[(name, value) for name, value in _SAMPLE_EXAMPLE if name != "rut_responsable"],
                ("rut_tomador_muestra", "12345678-5"),
                ("rut_profesional_responsable", ""),
                ("rut_medico_solicitante", ""),
                ("resultado", ""),
                ("fecha_recepcion_muestra", ""),
                ("fecha_resultado_muestra", ""),
            ),
            ("codigo_muestra_cliente", "fecha_muestra"),
        ),
        Kind(
            RESULTS,
            _("Results (Muestra template)"),
            True,
            (
                ("sample", "1000000042"),
                ("patient_document", "11111111-1"),
                ("result", "unsatisfactory"),
                ("reported_at", "2024-05-18 09:00:00"),
                ("received_at", "2024-05-17 18:00:00"),
            ),
            ("sample", "result"),
        ),
        Kind(
            SAMPLES,
            _("Samples, optionally with result (Muestra template)"),
            False,
            (*_SAMPLE_EXAMPLE, ("resultado", ""), ("fecha_recepcion", ""), ("fecha_hora_resultado_laboratorio", "")),
            ("codigo_muestra_cliente", "fecha_muestra"),
        ),
    )
}

assert all(fold_header(name) in (RESULT_ALIASES | SAMPLE_ALIASES) for k in KINDS.values() for name, _v in k.columns)


def template_csv(kind: Kind) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow([name for name, _v in kind.columns])
    writer.writerow([neutralise(value) for _n, value in kind.columns])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def template_xlsx(kind: Kind) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet: Any = book.create_sheet(title="Muestra")
    sheet.append([name for name, _v in kind.columns])
    sheet.append([_text_cell(sheet, value) for _n, value in kind.columns])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _text_cell(sheet: Any, value: str) -> Any:
    """Example values stay text (a RUN or a phone number must not become a number or a formula)."""
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=neutralise(value))
    cell.data_type = "s"
    cell.number_format = "@"
    return cell
