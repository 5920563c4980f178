"""recepcionarMuestra, entregaResultado, cambioLaboratorio, devolverMuestra and their Monkeypox twins."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from muestra.demo.builders import sample_in_state, sample_input
from muestra.integrations.pntm.tests.conftest import DROP, LAB_Y, Pntm, create_row, wire_time
from muestra.samples.models import Channel, Result, Sample, SampleEvent, SampleState


def _fresh(sample: Sample) -> Sample:
    return Sample.objects.get(pk=sample.pk)


# --- recepcionarMuestra ----------------------------------------------------------------------------------------


def test_receive(pntm: Pntm) -> None:
    sample = pntm.created_sample()
    received_at = timezone.now() - timedelta(minutes=30)
    response = pntm.json(
        "recepcionarMuestra", [{"id_muestra": sample.number, "fecha_recepcion_laboratorio": wire_time(received_at)}]
    )
    assert response.status_code == 200
    assert response.json() == [{"id_muestra": sample.number, "codigo_muestra_cliente": sample.client_code}]
    sample = _fresh(sample)
    assert sample.state == SampleState.RECEIVED
    assert sample.received_at == received_at.replace(microsecond=0)
    assert SampleEvent.objects.filter(sample=sample, kind="received", channel=Channel.PNTM).count() == 1


def test_repeated_receipt_is_a_success(pntm: Pntm) -> None:
    sample = pntm.created_sample()
    body = [{"id_muestra": str(sample.number)}]
    first = pntm.json("recepcionarMuestra", body)
    second = pntm.json("recepcionarMuestra", {"raw": body[0]})
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert SampleEvent.objects.filter(sample=sample, kind="received").count() == 1


def test_receive_a_sample_registered_by_the_establishment(pntm: Pntm, world: Any) -> None:
    sample = sample_in_state(SampleState.DISPATCHED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    response = pntm.json("recepcionarMuestra", [{"id_muestra": sample.number}])
    assert response.json() == [{"id_muestra": sample.number, "codigo_muestra_cliente": ""}]
    assert _fresh(sample).state == SampleState.RECEIVED


def test_other_lab_cannot_receive_and_is_told_it_is_not_there(pntm: Pntm) -> None:
    sample = pntm.created_sample()
    response = pntm.json("recepcionarMuestra", [{"id_muestra": sample.number}], key="lab_y")
    assert response.status_code == 404
    assert response.json() == {
        "error": f"id_muestra: la muestra {sample.number} no existe o no está asignada a su laboratorio."
    }
    assert _fresh(sample).state == SampleState.DISPATCHED


def test_unknown_sample(pntm: Pntm) -> None:
    response = pntm.json("recepcionarMuestra", [{"id_muestra": 1999999999}])
    assert response.status_code == 404


def test_receive_batch_with_one_bad_item(pntm: Pntm) -> None:
    good = pntm.created_sample()
    other = pntm.created_sample()
    future = wire_time(timezone.now() + timedelta(days=1))
    response = pntm.json(
        "recepcionarMuestra",
        [{"id_muestra": good.number}, {"id_muestra": other.number, "fecha_recepcion_laboratorio": future}],
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error"].startswith("1 de 2 elementos no se procesaron")
    assert "fecha_recepcion_laboratorio: la fecha no puede estar en el futuro" in body["error"]
    assert body["resultados"][0] == {"id_muestra": good.number, "codigo_muestra_cliente": good.client_code}
    assert "error" in body["resultados"][1]
    assert _fresh(good).state == SampleState.RECEIVED
    assert _fresh(other).state == SampleState.DISPATCHED


def test_receive_rejected_sample_says_why(pntm: Pntm, world: Any) -> None:
    sample = sample_in_state(SampleState.REJECTED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    response = pntm.json("recepcionarMuestra", [{"id_muestra": sample.number}])
    assert response.status_code == 409
    assert (
        response.json()["error"] == f"id_muestra: no se puede recepcionar la muestra {sample.number}: está rechazada."
    )


def test_receive_bad_date_format(pntm: Pntm) -> None:
    sample = pntm.created_sample()
    response = pntm.json("recepcionarMuestra", [{"id_muestra": sample.number, "fecha_recepcion_laboratorio": "ayer"}])
    assert response.status_code == 422
    assert response.json()["error"].startswith("fecha_recepcion_laboratorio: fecha no reconocida")


def test_receive_mp(pntm: Pntm) -> None:
    sample = pntm.created_sample("crearMuestraMP", tipo_muestra="Contenido Vesicular", tecnica_muestra=DROP)
    response = pntm.json("recepcionarMuestraMP", [{"id_muestra": sample.number}])
    assert response.status_code == 200
    assert _fresh(sample).state == SampleState.RECEIVED


# --- entregaResultado ------------------------------------------------------------------------------------------


def test_deliver_result_with_pdf(pntm: Pntm) -> None:
    sample = pntm.created_sample()
    pntm.json("recepcionarMuestra", [{"id_muestra": sample.number}])
    response = pntm.result(sample.number, "Positivo", fecha_hora_resultado_laboratorio=wire_time(timezone.now()))
    assert response.status_code == 200
    assert response.json() == {"MENSAJE": f"Resultado «Positivo» registrado para la muestra {sample.number}."}
    sample = _fresh(sample)
    assert sample.state == SampleState.RESULT
    assert sample.result_value is not None and sample.result_value.code == "positive"
    result = Result.objects.get(sample=sample)
    assert result.report_content_type == "application/pdf"
    assert result.report_sha256


def test_result_receives_implicitly(pntm: Pntm) -> None:
    sample = pntm.created_sample()
    response = pntm.result(sample.number, "Negativo")
    assert response.status_code == 200
    sample = _fresh(sample)
    assert sample.state == SampleState.RESULT
    received = SampleEvent.objects.get(sample=sample, kind="received")
    assert received.data == {"implicit": True}


def test_same_result_again_is_a_success_and_different_is_a_conflict(pntm: Pntm) -> None:
    sample = pntm.created_sample()
    assert pntm.result(sample.number, "Negativo").status_code == 200
    again = pntm.result(sample.number, "negativo")
    assert again.status_code == 200
    assert "ya tenía registrado el resultado «Negativo»" in again.json()["MENSAJE"]
    different = pntm.result(sample.number, "Positivo")
    assert different.status_code == 409
    assert different.json()["error"].startswith(f"resultado: la muestra {sample.number} ya tiene otro resultado")
    assert Result.objects.filter(sample=sample).count() == 1


def test_muestra_no_apta_without_a_file(pntm: Pntm) -> None:
    sample = pntm.created_sample()
    response = pntm.result(sample.number, "Muestra no apta", with_file=False)
    assert response.status_code == 200
    assert _fresh(sample).result_value.code == "unsatisfactory"  # type: ignore[union-attr]


def test_muestra_no_apta_with_an_empty_file(pntm: Pntm) -> None:
    sample = pntm.created_sample()
    empty = SimpleUploadedFile("vacio.txt", b"", content_type="text/plain")
    assert pntm.result(sample.number, "Muestra no apta", upfile=empty).status_code == 200


def test_positive_needs_the_report(pntm: Pntm) -> None:
    sample = pntm.created_sample()
    response = pntm.result(sample.number, "Positivo", with_file=False)
    assert response.status_code == 422
    assert response.json()["error"].startswith("upfile: falta el informe firmado")
    assert _fresh(sample).state == SampleState.DISPATCHED


def test_small_text_report_is_accepted_with_its_content_type(pntm: Pntm) -> None:
    sample = pntm.created_sample()
    text = SimpleUploadedFile("informe.txt", b"Resultado: Negativo", content_type="text/plain")
    assert pntm.result(sample.number, "Negativo", upfile=text).status_code == 200
    assert Result.objects.get(sample__pk=sample.pk).report_content_type == "text/plain"


def test_report_under_another_part_name(pntm: Pntm) -> None:
    sample = pntm.created_sample()
    response = pntm.form(
        "entregaResultado",
        {"id_muestra": sample.number, "resultado": "Negativo"},
        files={"archivo": SimpleUploadedFile("x.pdf", b"%PDF-1.4 x", content_type="application/pdf")},
    )
    assert response.status_code == 200


def test_too_large_report(pntm: Pntm, settings: Any) -> None:
    settings.MUESTRA = {**settings.MUESTRA, "MAX_REPORT_BYTES": 10}
    sample = pntm.created_sample()
    big = SimpleUploadedFile("x.pdf", b"%PDF-1.4 0123456789", content_type="application/pdf")
    response = pntm.result(sample.number, "Negativo", upfile=big)
    assert response.status_code == 422
    assert response.json()["error"].startswith("upfile: el archivo supera el tamaño máximo")


def test_unknown_result_value(pntm: Pntm) -> None:
    sample = pntm.created_sample()
    response = pntm.result(sample.number, "Reactivo")
    assert response.status_code == 422
    assert response.json()["error"].startswith("resultado: «Reactivo» no es válido para esta muestra")


def test_other_lab_cannot_deliver(pntm: Pntm) -> None:
    sample = pntm.created_sample()
    response = pntm.result(sample.number, "Negativo", key="lab_y")
    assert response.status_code == 404
    assert _fresh(sample).state == SampleState.DISPATCHED


def test_one_sample_per_result_call(pntm: Pntm) -> None:
    first, second = pntm.created_sample(), pntm.created_sample()
    response = pntm.form(
        "entregaResultado",
        [{"id_muestra": first.number, "resultado": "Negativo"}, {"id_muestra": second.number, "resultado": "Negativo"}],
        multipart=True,
    )
    assert response.status_code == 400


def test_result_mp(pntm: Pntm) -> None:
    sample = pntm.created_sample("crearMuestraMP", tipo_muestra="Tórula de Lesión", tecnica_muestra=DROP)
    response = pntm.result(sample.number, "Indeterminado", operation="entregaResultadoMP")
    assert response.status_code == 200
    assert _fresh(sample).result_value.code == "indeterminate"  # type: ignore[union-attr]


def test_result_by_client_code_and_json_body(pntm: Pntm) -> None:
    sample = pntm.created_sample()
    response = pntm.json(
        "entregaResultado",
        {"parametros": {"codigo_muestra_cliente": sample.client_code, "resultado": "Muestra no apta"}},
    )
    assert response.status_code == 200


# --- cambioLaboratorio -------------------------------------------------------------------------------------------


def test_forward_to_another_lab_which_then_receives(pntm: Pntm, world: Any) -> None:
    sample = pntm.created_sample(cod_deis="105100")
    pntm.json("recepcionarMuestra", [{"id_muestra": sample.number}])
    response = pntm.json("cambioLaboratorio", [{"id_muestra": sample.number, "id_nuevo_laboratorio": str(LAB_Y)}])
    assert response.status_code == 200
    assert response.json() == [{"id_muestra": sample.number, "codigo_muestra_cliente": sample.client_code}]
    sample = _fresh(sample)
    assert sample.laboratory == world.lab_y
    assert sample.state == SampleState.DISPATCHED
    # The new lab sees it (without lab X's own code) and receives it.
    read = pntm.form("datosMuestraID", {"id_muestra": sample.number}, key="lab_y").json()
    assert [r["estado_muestra"] for r in read] == ["2"]
    received = pntm.json("recepcionarMuestra", [{"id_muestra": sample.number}], key="lab_y")
    assert received.json() == [{"id_muestra": sample.number, "codigo_muestra_cliente": ""}]
    # Lab X created it through its LIS, so it may still follow it, but no longer act on it.
    assert pntm.form("datosMuestraID", {"id_muestra": sample.number}).json() == []
    assert pntm.json("recepcionarMuestra", [{"id_muestra": sample.number}]).status_code == 403


def test_forward_retry_is_harmless(pntm: Pntm) -> None:
    sample = pntm.created_sample(cod_deis="105100")
    body = [{"id_muestra": sample.number, "id_nuevo_laboratorio": LAB_Y}]
    assert pntm.json("cambioLaboratorio", body).status_code == 200
    assert pntm.json("cambioLaboratorio", body).status_code == 200


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ({"id_nuevo_laboratorio": 42}, "id_nuevo_laboratorio: el laboratorio «42» no existe"),
        ({}, "id_nuevo_laboratorio: falta este campo obligatorio"),
    ],
)
def test_forward_errors(pntm: Pntm, item: dict[str, Any], fragment: str) -> None:
    sample = pntm.created_sample()
    response = pntm.json("cambioLaboratorio", [{"id_muestra": sample.number, **item}])
    assert response.status_code == 422
    assert response.json()["error"].startswith(fragment)


def test_other_lab_cannot_forward(pntm: Pntm) -> None:
    sample = pntm.created_sample()
    response = pntm.json(
        "cambioLaboratorio", [{"id_muestra": sample.number, "id_nuevo_laboratorio": LAB_Y}], key="lab_y"
    )
    assert response.status_code == 404


# --- devolverMuestra --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["id_muestra", "codigo_muestra_cliente"])
def test_return_by_id_or_client_code(pntm: Pntm, by: str) -> None:
    sample = pntm.created_sample()
    pntm.json("recepcionarMuestra", [{"id_muestra": sample.number}])
    ref = sample.number if by == "id_muestra" else sample.client_code
    response = pntm.json("devolverMuestra", [{by: ref, "motivo": "Sin capacidad"}])
    assert response.status_code == 200
    assert response.json() == [{"id_muestra": sample.number, "codigo_muestra_cliente": sample.client_code}]
    assert _fresh(sample).state == SampleState.RETURNED
    event = SampleEvent.objects.get(sample=sample, kind="returned")
    assert event.reason == "Sin capacidad"
    assert pntm.json("devolverMuestra", [{by: ref}]).status_code == 200  # again: harmless


def test_return_unknown_client_code(pntm: Pntm) -> None:
    response = pntm.json("devolverMuestra", [{"codigo_muestra_cliente": "NO-EXISTE"}])
    assert response.status_code == 404
    assert "NO-EXISTE" in response.json()["error"]


def test_return_needs_a_reference(pntm: Pntm) -> None:
    response = pntm.json("devolverMuestra", [{"motivo": "x"}])
    assert response.status_code == 422
    assert response.json()["error"].startswith("id_muestra: falta este campo obligatorio")


def test_other_lab_cannot_return(pntm: Pntm, world: Any) -> None:
    sample = sample_in_state(
        SampleState.RECEIVED,
        taker=world.actors["taker_b"],
        lab=world.actors["lab_x"],
        data=sample_input(establishment="105100"),
    )
    response = pntm.json("devolverMuestra", [{"id_muestra": sample.number}], key="lab_y")
    assert response.status_code == 404
    assert _fresh(sample).state == SampleState.RECEIVED


def test_create_row_helper_is_valid_for_lab_y(pntm: Pntm) -> None:
    # Guard for the helper itself: lab Y is assigned to establishment B only.
    assert pntm.create(create_row(id_laboratorio=LAB_Y, cod_deis="105100"), key="lab_y")


def test_forward_retry_of_a_sample_registered_by_the_establishment(pntm: Pntm, world: Any) -> None:
    sample = sample_in_state(
        SampleState.RECEIVED,
        taker=world.actors["taker_b"],
        lab=world.actors["lab_x"],
        data=sample_input(establishment="105100"),
    )
    body = [{"id_muestra": sample.number, "id_nuevo_laboratorio": LAB_Y}]
    assert pntm.json("cambioLaboratorio", body).status_code == 200
    assert pntm.json("cambioLaboratorio", body).status_code == 200


def test_parametros_sent_as_a_file_part(pntm: Pntm) -> None:
    sample = pntm.created_sample()
    params = SimpleUploadedFile("parametros.json", b'{"id_muestra": %d, "resultado": "Negativo"}' % sample.number)
    report = SimpleUploadedFile("informe.pdf", b"%PDF-1.4 x", content_type="application/pdf")
    response = pntm.client.post(
        "/pntm/entregaResultado",
        data={"parametros": params, "upfile": report},
        headers={"ACCESSKEY": pntm.keys["lab_x"]},
    )
    assert response.status_code == 200, response.json()
    assert Result.objects.get(sample__pk=sample.pk).report_content_type == "application/pdf"
