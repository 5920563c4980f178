"""datosMuestraID, datosMuestraRUT, datosMuestraFECHA: exact fields, state codes, scope, audit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from muestra.audit.models import AuditEntry
from muestra.demo.builders import patient_input, sample_in_state, sample_input
from muestra.integrations.pntm.mapping import STATE_CODE
from muestra.integrations.pntm.parsing import SANTIAGO
from muestra.integrations.pntm.tests.conftest import PROFESSIONAL_RUN, Pntm, create_row, wire_time
from muestra.samples.models import Sample, SampleState

READ_FIELDS = [
    "id_muestra",
    "estado_muestra",
    "resultado",
    "nombre_profesional",
    "rut_profesional",
    "establecimiento_toma_muestra",
    "rut_medico_toma_muestra",
    "fecha_muestra",
    "tecnica_muestra",
    "tipo_muestra",
    "laboratorio",
    "id_paciente",
    "paciente_tipodoc",
    "nombre_paciente",
    "apellido_paterno_paciente",
    "apellido_materno_paciente",
    "fecha_nacimiento",
    "comuna",
    "paciente_direccion",
    "paciente_telefono",
    "pais",
    "paciente_sexo",
    "paciente_prevision",
]


def test_read_by_id_has_exactly_the_national_fields(pntm: Pntm) -> None:
    collected = (timezone.now() - timedelta(hours=3)).astimezone(SANTIAGO).replace(microsecond=0)
    row = create_row(fecha_muestra=wire_time(collected), rut_medico="9876543-3", sin_orden_medica=False)
    sample = pntm.created_sample(**{k: v for k, v in row.items() if k != "codigo_muestra_cliente"})
    response = pntm.form("datosMuestraID", {"id_muestra": sample.number})
    assert response.status_code == 200
    [read] = response.json()
    assert list(read) == READ_FIELDS
    assert read == {
        "id_muestra": sample.number,
        "estado_muestra": "2",
        "resultado": "",
        "nombre_profesional": "",
        "rut_profesional": PROFESSIONAL_RUN,
        "establecimiento_toma_muestra": "CESFAM Muestra A (Santiago)",
        "rut_medico_toma_muestra": "9876543-3",
        "fecha_muestra": collected.strftime("%d-%m-%Y %H:%M:%S"),
        "tecnica_muestra": "RT-PCR",
        "tipo_muestra": "Tórulas Nasofaríngeas",
        "laboratorio": "Laboratorio X (Santiago)",
        "id_paciente": f"{row['paciente_run']}-{row['paciente_dv']}",
        "paciente_tipodoc": "RUN",
        "nombre_paciente": "Paciente",
        "apellido_paterno_paciente": "Prueba",
        "apellido_materno_paciente": "Demo",
        "fecha_nacimiento": "17-05-1985",
        "comuna": "Santiago",
        "paciente_direccion": "Av. Siempre Viva 742",
        "paciente_telefono": "+56912345678",
        "pais": "",
        "paciente_sexo": "F",
        "paciente_prevision": "FONASA",
    }


def test_professional_name_when_known_as_a_user(pntm: Pntm, world: Any) -> None:
    taker = world.users["taker_a"]
    sample = sample_in_state(
        SampleState.DISPATCHED,
        taker=world.actors["taker_a"],
        lab=world.actors["lab_x"],
        data=sample_input(responsible_run=taker.national_id),
    )
    [read] = pntm.form("datosMuestraID", {"id_muestra": sample.number}).json()
    assert read["nombre_profesional"] == taker.get_full_name()
    assert read["rut_profesional"] == taker.national_id


@pytest.mark.parametrize("shape", ["urlencoded", "multipart", "json", "json-raw", "json-string-id"])
def test_read_request_shapes(pntm: Pntm, shape: str) -> None:
    sample = pntm.created_sample()
    params = {"id_muestra": sample.number}
    if shape == "urlencoded":
        response = pntm.form("datosMuestraID", params)
    elif shape == "multipart":
        response = pntm.form("datosMuestraID", params, multipart=True)
    elif shape == "json":
        response = pntm.json("datosMuestraID", params)
    elif shape == "json-raw":
        response = pntm.json("datosMuestraID", {"raw": params})
    else:
        response = pntm.form("datosMuestraID", {"id_muestra": str(sample.number)})
    assert response.status_code == 200
    assert [r["id_muestra"] for r in response.json()] == [sample.number]


def test_other_lab_reads_nothing(pntm: Pntm) -> None:
    sample = pntm.created_sample()
    response = pntm.form("datosMuestraID", {"id_muestra": sample.number}, key="lab_y")
    assert response.status_code == 200
    assert response.json() == []


def test_unknown_id_reads_nothing(pntm: Pntm) -> None:
    assert pntm.form("datosMuestraID", {"id_muestra": 1999999999}).json() == []
    assert pntm.form("datosMuestraID", {"id_muestra": 5}).json() == []


def test_read_by_id_needs_a_number(pntm: Pntm) -> None:
    response = pntm.form("datosMuestraID", {"id_muestra": "abc"})
    assert response.status_code == 422
    assert response.json()["error"].startswith("id_muestra:")
    assert pntm.form("datosMuestraID", {}).status_code == 422


@pytest.mark.parametrize(
    ("state", "code"),
    [
        (SampleState.REGISTERED, "2"),
        (SampleState.DISPATCHED, "2"),
        (SampleState.RECEIVED, "3"),
        (SampleState.RESULT, "4"),
        (SampleState.REJECTED, "6"),
        (SampleState.RETURNED, "1"),
        (SampleState.CANCELLED, None),
    ],
)
def test_state_codes(pntm: Pntm, world: Any, state: str, code: str | None) -> None:
    sample = sample_in_state(state, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    read = pntm.form("datosMuestraID", {"id_muestra": sample.number}).json()
    assert [r["estado_muestra"] for r in read] == ([code] if code else [])
    if state == SampleState.RESULT:
        assert read[0]["resultado"] == "Negativo"


def test_every_state_has_a_decision() -> None:
    assert set(STATE_CODE) | {SampleState.CANCELLED} == set(SampleState.values)


def test_read_by_run(pntm: Pntm, world: Any) -> None:
    row = create_row()
    first = pntm.created_sample(**{k: v for k, v in row.items() if k != "codigo_muestra_cliente"})
    second = pntm.created_sample(**{k: v for k, v in row.items() if k != "codigo_muestra_cliente"})
    pntm.created_sample()  # another patient
    run = f"{row['paciente_run']}-{row['paciente_dv']}"
    body = int(row["paciente_run"])
    dotted = f"{body:,}".replace(",", ".") + "-" + row["paciente_dv"]
    for value in (run, dotted, run.replace("-", "")):
        response = pntm.form("datosMuestraRUT", {"rut_paciente": value})
        assert response.status_code == 200
        assert [r["id_muestra"] for r in response.json()] == [first.number, second.number]
    assert pntm.form("datosMuestraRUT", {"rut_paciente": run}, key="lab_y").json() == []


def test_read_by_run_refuses_a_bad_run(pntm: Pntm) -> None:
    response = pntm.form("datosMuestraRUT", {"rut_paciente": "12345678-0"})
    assert response.status_code == 422
    assert response.json()["error"].startswith("rut_paciente: RUT inválido")


def test_read_by_date_and_state(pntm: Pntm, world: Any) -> None:
    # Times at the start of a day that has surely begun, so the test holds at any hour (even just after midnight).
    day = (timezone.now() - timedelta(hours=2)).astimezone(SANTIAGO).replace(hour=0, minute=0, second=0, microsecond=0)
    waiting = pntm.created_sample(fecha_muestra=wire_time(day + timedelta(minutes=20)))
    received = pntm.created_sample(fecha_muestra=wire_time(day + timedelta(minutes=10)))
    pntm.json("recepcionarMuestra", [{"id_muestra": received.number}])
    old = pntm.created_sample(fecha_muestra=wire_time(day - timedelta(hours=12)))
    text = day.strftime("%d-%m-%Y")

    def ids(params: dict[str, Any], key: str = "lab_x") -> list[int]:
        response = pntm.form("datosMuestraFECHA", params, key=key)
        assert response.status_code == 200, response.json()
        return [r["id_muestra"] for r in response.json()]

    assert ids({"estado_muestra": 2, "fecha_muestra": text}) == [waiting.number]
    assert ids({"estado_muestra": "3", "fecha_muestra": text}) == [received.number]
    assert ids({"fecha_muestra": text}) == [received.number, waiting.number]
    assert ids({"estado_muestra": 2, "fecha_muestra": (day - timedelta(days=1)).strftime("%Y-%m-%d")}) == [old.number]
    assert ids({"estado_muestra": 5, "fecha_muestra": text}) == []
    assert ids({"estado_muestra": 2, "fecha_muestra": text}, key="lab_y") == []


def test_read_by_date_errors(pntm: Pntm) -> None:
    assert pntm.form("datosMuestraFECHA", {"estado_muestra": 2}).status_code == 422
    response = pntm.form("datosMuestraFECHA", {"estado_muestra": 12, "fecha_muestra": "01-01-2024"})
    assert response.status_code == 422
    assert response.json()["error"].startswith("estado_muestra: estado desconocido")


def test_reads_are_audited_without_personal_data(pntm: Pntm) -> None:
    row = create_row()
    sample = pntm.created_sample(**{k: v for k, v in row.items() if k != "codigo_muestra_cliente"})
    before = AuditEntry.objects.count()
    pntm.form("datosMuestraID", {"id_muestra": sample.number})
    run = f"{row['paciente_run']}-{row['paciente_dv']}"
    pntm.form("datosMuestraRUT", {"rut_paciente": run})
    entries = list(AuditEntry.objects.order_by("id")[before:])
    reads = [e for e in entries if e.action == "sample.read"]
    assert [e.object_id for e in reads] == [str(sample.number)] * 2
    assert {e.data["operation"] for e in reads} == {"datosMuestraID", "datosMuestraRUT"}
    searches = [e for e in entries if e.action == "sample.search"]
    assert len(searches) == 1 and searches[0].data["results"] == 1
    dump = repr([(e.object_id, e.data) for e in entries])
    assert row["paciente_run"] not in dump
    assert "Paciente" not in dump


def test_samples_of_other_establishments_assigned_to_the_lab_are_readable(pntm: Pntm, world: Any) -> None:
    sample = sample_in_state(
        SampleState.DISPATCHED,
        taker=world.actors["taker_b"],
        lab=world.actors["lab_x"],
        data=sample_input(establishment="105100", patient=patient_input(residence="05101")),
    )
    [read] = pntm.form("datosMuestraID", {"id_muestra": sample.number}).json()
    assert read["establecimiento_toma_muestra"] == "Hospital Muestra B (Valparaíso)"
    assert read["comuna"] == "Valparaíso"
    assert Sample.objects.filter(pk=sample.pk, laboratory=world.lab_x).exists()
