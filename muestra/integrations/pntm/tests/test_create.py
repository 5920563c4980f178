"""crearMuestras, _v2, _v3 and crearMuestraMP: field mapping, tolerance, batch semantics, idempotency."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from muestra.integrations.pntm.parsing import SANTIAGO
from muestra.integrations.pntm.tests.conftest import (
    DROP,
    LAB_X,
    LAB_Y,
    PROFESSIONAL_RUN,
    Pntm,
    create_row,
    sample_pk,
    wire_time,
)
from muestra.patients.documents import run_check_digit
from muestra.samples.models import Channel, Sample, SampleEvent, SampleState


def _sample(answer_item: dict[str, Any]) -> Sample:
    return Sample.objects.select_related("patient", "test", "sample_type", "strategy").get(
        pk=sample_pk(answer_item["id_muestra"])
    )


def test_created_sample_is_the_same_sample_everywhere(pntm: Pntm, world: Any) -> None:
    row = create_row(epivigila="EPI-123", busqueda_activa="1", estrategia="BAC Brotes", subestrategia="BAC Escolar")
    answer = pntm.create(row)
    assert answer == [{"id_muestra": answer[0]["id_muestra"], "codigo_muestra_cliente": row["codigo_muestra_cliente"]}]
    sample = _sample(answer[0])
    assert sample.number == answer[0]["id_muestra"]
    assert len(str(sample.number)) == 10
    assert sample.state == SampleState.DISPATCHED  # national state 2: sent to the lab
    assert sample.channel == Channel.PNTM
    assert sample.laboratory == world.lab_x
    assert sample.client_lab == world.lab_x
    assert sample.client_code == row["codigo_muestra_cliente"]
    assert sample.establishment.code == "113100"
    assert sample.test.code == "covid19-pcr"
    assert sample.sample_type.code == "nasopharyngeal-swab"
    assert sample.strategy is not None and sample.strategy.code == "bac-outbreaks"
    assert sample.substrategy is not None and sample.substrategy.code == "bac-school"
    assert sample.active_case_finding is True
    assert sample.surveillance_number == "EPI-123"
    assert sample.responsible_run == PROFESSIONAL_RUN
    assert sample.without_medical_order is True
    assert sample.patient is not None
    assert sample.patient.document_number == f"{row['paciente_run']}-{row['paciente_dv']}"
    assert sample.patient.insurance is not None and sample.patient.insurance.code == "fonasa"
    assert SampleEvent.objects.filter(sample=sample, kind="registered", channel=Channel.PNTM).exists()


def test_default_strategy_is_sin_estrategia(pntm: Pntm) -> None:
    sample = _sample(pntm.create(create_row())[0])
    assert sample.strategy is not None and sample.strategy.code == "no-strategy"


@pytest.mark.parametrize(
    "fecha",
    ["{d:%d-%m-%Y}", "{d:%d/%m/%Y}", "{d:%d-%m-%Y}T{d:%H:%M:%S}", "{d:%Y-%m-%d} {d:%H:%M:%S}", "{d:%Y-%m-%d}"],
)
def test_each_date_format_is_accepted(pntm: Pntm, fecha: str) -> None:
    moment = (timezone.now() - timedelta(days=1)).astimezone(SANTIAGO).replace(microsecond=0)
    birth = datetime(1990, 3, 4, tzinfo=SANTIAGO)
    row = create_row(fecha_muestra=fecha.format(d=moment), paciente_fecha_nac=fecha.format(d=birth))
    sample = _sample(pntm.create(row)[0])
    assert sample.collected_at.astimezone(SANTIAGO).date() == moment.date()
    if "H" in fecha:
        assert sample.collected_at == moment
    assert sample.patient is not None and sample.patient.birth_date == birth.date()


def test_booleans_numbers_and_whitespace_as_strings(pntm: Pntm, world: Any) -> None:
    row = create_row(
        id_laboratorio=str(LAB_X),
        cod_deis=" 113100 ",
        paciente_comuna=13101,
        paciente_telefono=912345678,
        sin_orden_medica="false",
        rut_medico="9.876.543-3",
        busqueda_activa="si",
        paciente_nombres="  Ana María  ",
    )
    sample = _sample(pntm.create(row)[0])
    assert sample.without_medical_order is False
    assert sample.ordering_physician_run == "9876543-3"
    assert sample.active_case_finding is True
    assert sample.patient is not None and sample.patient.given_names == "Ana María"


def test_run_with_dots_and_lowercase_k(pntm: Pntm) -> None:
    body = next(n for n in range(15_000_000, 15_001_000) if run_check_digit(n) == "K")
    dotted = f"{body:,}".replace(",", ".")
    sample = _sample(pntm.create(create_row(paciente_run=dotted, paciente_dv="k"))[0])
    assert sample.patient is not None and sample.patient.document_number == f"{body}-K"


def test_passport_with_platform_country_id(pntm: Pntm) -> None:
    row = create_row(
        paciente_tipodoc="PASAPORTE",
        paciente_run=DROP,
        paciente_dv=DROP,
        paciente_pasaporte="ab 123456",
        paciente_ext_paisorigen="499",
        paciente_prevision=DROP,
    )
    sample = _sample(pntm.create(row)[0])
    assert sample.patient is not None
    assert sample.patient.document_type.code == "passport"
    assert sample.patient.document_number == "AB123456"
    assert sample.patient.nationality is not None and sample.patient.nationality.pntm_id == 499


def test_first_version_without_tipodoc_or_id_laboratorio(pntm: Pntm, world: Any) -> None:
    row = create_row(paciente_tipodoc=DROP, id_laboratorio=DROP)
    sample = _sample(pntm.create(row, operation="crearMuestras")[0])
    assert sample.laboratory == world.lab_x
    assert sample.patient is not None and sample.patient.document_type.code == "run"


def test_v2_requires_id_laboratorio(pntm: Pntm) -> None:
    response = pntm.json("crearMuestras_v2", [create_row(id_laboratorio=DROP)])
    assert response.status_code == 422
    assert "id_laboratorio: falta este campo obligatorio" in response.json()["error"]


def test_accents_and_case_are_optional_in_coded_values(pntm: Pntm) -> None:
    row = create_row(tipo_muestra="TORULAS NASOFARINGEAS", paciente_prevision="sin prevision", tecnica_muestra="rt-pcr")
    sample = _sample(pntm.create(row)[0])
    assert sample.sample_type.code == "nasopharyngeal-swab"
    assert sample.patient is not None and sample.patient.insurance is not None
    assert sample.patient.insurance.code == "no-insurance"


def test_antigen_is_registered_with_its_result(pntm: Pntm) -> None:
    sample = _sample(pntm.create(create_row(tecnica_muestra="Test Pack", resultado="No concluyente"))[0])
    assert sample.test.code == "covid19-antigen"
    assert sample.state == SampleState.RESULT
    assert sample.result_value is not None and sample.result_value.code == "inconclusive"


# --- id_laboratorio and the key -------------------------------------------------------------------------------


def test_id_laboratorio_must_be_the_keys_lab(pntm: Pntm) -> None:
    response = pntm.json("crearMuestras_v2", [create_row(id_laboratorio=LAB_Y)])
    assert response.status_code == 422
    body = response.json()
    assert "id_laboratorio: el laboratorio 1000000002 no corresponde a la clave de acceso" in body["error"]
    assert Sample.objects.count() == 0


def test_lab_must_be_assigned_to_the_establishment(pntm: Pntm) -> None:
    # Lab Y is assigned to establishment B only.
    response = pntm.json("crearMuestras_v2", [create_row(id_laboratorio=LAB_Y, cod_deis="113100")], key="lab_y")
    assert response.status_code == 422
    assert "no está asignado al establecimiento cod_deis 113100" in response.json()["error"]
    assert pntm.create(create_row(id_laboratorio=LAB_Y, cod_deis="105100"), key="lab_y")


# --- required fields ----------------------------------------------------------------------------------------------

REQUIRED_FIELDS = [
    "codigo_muestra_cliente",
    "id_laboratorio",
    "rut_responsable",
    "cod_deis",
    "paciente_run",
    "paciente_dv",
    "paciente_nombres",
    "paciente_ap_pat",
    "paciente_ap_mat",
    "paciente_fecha_nac",
    "paciente_comuna",
    "paciente_direccion",
    "paciente_telefono",
    "paciente_sexo",
    "paciente_prevision",
    "fecha_muestra",
    "tipo_muestra",
]


@pytest.mark.parametrize("name", REQUIRED_FIELDS)
@pytest.mark.parametrize("absent", [DROP, "", None, "  "])
def test_each_missing_required_field_is_named(pntm: Pntm, name: str, absent: Any) -> None:
    response = pntm.json("crearMuestras_v2", [create_row(**{name: absent})])
    assert response.status_code == 422
    body = response.json()
    assert body["error"].startswith("No se creó ninguna muestra")
    assert f"{name}: falta" in body["error"]
    assert [e["campo"] for e in body["errores"][0]["errores"]] == [name]
    assert Sample.objects.count() == 0


def test_rut_medico_is_required_with_a_medical_order(pntm: Pntm) -> None:
    response = pntm.json("crearMuestras_v2", [create_row(sin_orden_medica=0)])
    assert response.status_code == 422
    assert "rut_medico: falta el RUT del médico" in response.json()["error"]


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"paciente_dv": "WRONG"}, "paciente_run", "dígito verificador"),
        ({"rut_responsable": "123-4"}, "rut_responsable", "RUT inválido"),
        ({"paciente_fecha_nac": "31-02-1990"}, "paciente_fecha_nac", "no existe"),
        ({"fecha_muestra": "01-01-2020"}, "fecha_muestra", "más de 7 días"),
        ({"tipo_muestra": "Tórula de Lesión"}, "tipo_muestra", "no corresponde a la técnica"),
        ({"paciente_sexo": "X1"}, "paciente_sexo", "use M, F, Intersex o Desconocido"),
        ({"paciente_telefono": "123"}, "paciente_telefono", "teléfono no válido"),
        ({"tecnica_muestra": "ELISA"}, "tecnica_muestra", "técnica desconocida"),
        ({"paciente_prevision": "OTRA"}, "paciente_prevision", "previsión desconocida"),
        ({"busqueda_activa": "quizás"}, "busqueda_activa", "verdadero o falso"),
    ],
)
def test_invalid_values_name_the_national_field_in_spanish(
    pntm: Pntm, overrides: dict[str, Any], field: str, fragment: str
) -> None:
    row = create_row(**overrides)
    if row["paciente_dv"] == "WRONG":
        # Any digit but the right one (a fixed "0" is sometimes right).
        row["paciente_dv"] = "1" if run_check_digit(row["paciente_run"]) != "1" else "2"
    response = pntm.json("crearMuestras_v2", [row], key="lab_x")
    assert response.status_code == 422
    errors = response.json()["errores"][0]["errores"]
    assert [e["campo"] for e in errors] == [field]
    assert fragment in errors[0]["error"]


def test_spanish_even_when_the_client_asks_for_english(pntm: Pntm) -> None:
    response = pntm.client.post(
        "/pntm/crearMuestras_v2",
        data="[" + __import__("json").dumps(create_row(paciente_comuna="99999")) + "]",
        content_type="application/json",
        headers={"ACCESSKEY": pntm.keys["lab_x"], "Accept-Language": "en"},
    )
    assert "paciente_comuna: código de comuna desconocido «99999»" in response.json()["error"]


# --- batches ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["crearMuestras", "crearMuestras_v2"])
def test_v1_and_v2_store_nothing_when_one_row_is_bad(pntm: Pntm, operation: str) -> None:
    rows = [create_row(), create_row(paciente_fecha_nac="ayer"), create_row()]
    response = pntm.json(operation, rows)
    assert response.status_code == 422
    body = response.json()
    assert "fila 2" in body["error"]
    assert f"«{rows[1]['codigo_muestra_cliente']}»" in body["error"]
    assert "paciente_fecha_nac" in body["error"]
    assert [e["fila"] for e in body["errores"]] == [2]
    assert Sample.objects.count() == 0


def test_v2_rolls_back_rows_stored_before_a_retry_conflict(pntm: Pntm) -> None:
    first = create_row()
    pntm.create(first)
    changed = {**first, "tipo_muestra": "Saliva"}  # same lab code, different content
    response = pntm.json("crearMuestras_v2", [create_row(), changed])
    assert response.status_code == 409
    assert "ya corresponde a la muestra" in response.json()["error"]
    assert Sample.objects.count() == 1


def test_v3_stores_good_rows_and_returns_bad_ones(pntm: Pntm) -> None:
    rows = [
        create_row(),
        create_row(paciente_fecha_nac=DROP, tipo_muestra="Sangre de pato"),
        create_row(),
        create_row(id_laboratorio=LAB_Y),
    ]
    response = pntm.json("crearMuestras_v3", rows)
    assert response.status_code == 200
    answer = response.json()
    assert len(answer) == 4
    assert set(answer[0]) == {"id_muestra", "codigo_muestra_cliente"}
    assert set(answer[2]) == {"id_muestra", "codigo_muestra_cliente"}
    assert answer[1]["fila"] == 2
    assert answer[1]["codigo_muestra_cliente"] == rows[1]["codigo_muestra_cliente"]
    assert {e["campo"] for e in answer[1]["errores"]} == {"paciente_fecha_nac", "tipo_muestra"}
    assert "paciente_fecha_nac: falta" in answer[1]["error"]
    assert "id_muestra" not in answer[1]
    assert answer[3]["errores"][0]["campo"] == "id_laboratorio"
    stored = set(Sample.objects.values_list("client_code", flat=True))
    assert stored == {rows[0]["codigo_muestra_cliente"], rows[2]["codigo_muestra_cliente"]}


def test_v3_duplicate_code_in_one_batch(pntm: Pntm) -> None:
    row = create_row()
    answer = pntm.json("crearMuestras_v3", [row, create_row(codigo_muestra_cliente=row["codigo_muestra_cliente"])])
    body = answer.json()
    assert "id_muestra" in body[0]
    assert "aparece dos veces" in body[1]["error"]


@pytest.mark.parametrize("operation", ["crearMuestras", "crearMuestras_v2", "crearMuestras_v3"])
def test_retried_create_returns_the_same_id(pntm: Pntm, operation: str) -> None:
    rows = [create_row(), create_row()]
    first = pntm.json(operation, rows).json()
    again = pntm.json(operation, rows).json()
    assert first == again
    assert Sample.objects.count() == 2


def test_same_code_with_different_content_is_refused_for_that_item(pntm: Pntm) -> None:
    row = create_row()
    sample = _sample(pntm.create(row)[0])
    other = create_row()
    response = pntm.json("crearMuestras_v3", [{**row, "tipo_muestra": "Saliva"}, other])
    body = response.json()
    assert f"ya corresponde a la muestra {sample.number}" in body[0]["error"]
    assert body[0]["errores"][0]["campo"] == "codigo_muestra_cliente"
    assert "id_muestra" in body[1]


# --- Monkeypox ----------------------------------------------------------------------------------------------------


def test_crear_muestra_mp(pntm: Pntm) -> None:
    row = create_row(tipo_muestra="Tórula de Lesión", tecnica_muestra=DROP)
    sample = _sample(pntm.create(row, operation="crearMuestraMP")[0])
    assert sample.test.code == "mpox-pcr"
    assert sample.disease.code == "mpox"
    assert sample.state == SampleState.DISPATCHED


def test_crear_muestra_mp_refuses_covid_sample_types(pntm: Pntm) -> None:
    response = pntm.json("crearMuestraMP", [create_row()])
    assert response.status_code == 422
    assert "tipo_muestra" in response.json()["error"]
    assert "Monkeypox" in response.json()["error"]


# --- other identity documents ---------------------------------------------------------------------------------


def test_sin_documentacion(pntm: Pntm) -> None:
    row = create_row(paciente_tipodoc="SIN DOCUMENTACION", paciente_run=DROP, paciente_dv=DROP, paciente_prevision=DROP)
    sample = _sample(pntm.create(row)[0])
    assert sample.patient is not None
    assert sample.patient.document_type.code == "no-document"
    assert sample.patient.document_number == ""


def test_dni_pais_de_origen_needs_its_country(pntm: Pntm) -> None:
    row = create_row(
        paciente_tipodoc="DNI PAIS DE ORIGEN", paciente_run=DROP, paciente_dv=DROP, paciente_pasaporte="X1"
    )
    response = pntm.json("crearMuestras_v2", [row])
    assert response.status_code == 422
    assert response.json()["errores"][0]["errores"][0]["campo"] == "paciente_ext_paisorigen"
    sample = _sample(pntm.create({**row, "paciente_ext_paisorigen": 499})[0])
    assert sample.patient is not None and sample.patient.document_number == "X1"


def test_newborn_through_the_guardians_run_and_tutor_fields(pntm: Pntm) -> None:
    birth = (timezone.now() - timedelta(days=3)).astimezone(SANTIAGO).strftime("%d-%m-%Y")
    row = create_row(paciente_tipodoc="RECIEN NACIDO", paciente_fecha_nac=birth, paciente_prevision=DROP)
    response = pntm.json("crearMuestras_v2", [row])
    assert response.status_code == 422
    fields = [e["campo"] for e in response.json()["errores"][0]["errores"]]
    assert fields == ["tutor_nombres", "tutor_ap_pat", "tutor_fecha_nac", "tutor_sexo"]
    tutor = {"tutor_nombres": "Madre", "tutor_ap_pat": "Prueba", "tutor_fecha_nac": "01-01-1990", "tutor_sexo": "F"}
    sample = _sample(pntm.create({**row, **tutor})[0])
    assert sample.patient is not None and sample.patient.guardian is not None
    assert sample.patient.guardian.document_number == f"{row['paciente_run']}-{row['paciente_dv']}"


def test_v3_retry_after_the_collection_grew_stale_returns_the_same_id(pntm: Pntm, settings: Any) -> None:
    """A lab system's retry queue that drains days later gets the stored ids, not «más de N días»."""
    rows = [create_row(fecha_muestra=wire_time(timezone.now() - timedelta(days=2))) for _ in range(2)]
    first = pntm.json("crearMuestras_v3", rows).json()
    assert all("id_muestra" in item for item in first)
    settings.MUESTRA = {**settings.MUESTRA, "MAX_COLLECTION_AGE_DAYS": 1}
    fresh = create_row(fecha_muestra=rows[0]["fecha_muestra"])
    again = pntm.json("crearMuestras_v3", [*rows, fresh]).json()
    assert again[:2] == first
    assert "más de 1 días" in again[2]["error"]
    assert Sample.objects.count() == 2
