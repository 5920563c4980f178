"""What every operation shares: the key, POST only, no CSRF, the body envelopes, Spanish JSON errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from muestra.accounts.models import ApiKey
from muestra.accounts.scoping import SYSTEM
from muestra.accounts.services import api_key_revoke
from muestra.integrations.pntm.tests.conftest import Pntm, create_row
from muestra.integrations.pntm.views import OPERATIONS
from muestra.samples.models import Sample

ALL_OPERATIONS = sorted(OPERATIONS)


def test_every_documented_operation_exists() -> None:
    assert set(OPERATIONS) == {
        "crearMuestras",
        "crearMuestras_v2",
        "crearMuestras_v3",
        "recepcionarMuestra",
        "entregaResultado",
        "datosMuestraID",
        "datosMuestraRUT",
        "datosMuestraFECHA",
        "cambioLaboratorio",
        "devolverMuestra",
        "crearMuestraMP",
        "recepcionarMuestraMP",
        "entregaResultadoMP",
    }


@pytest.mark.parametrize("operation", ALL_OPERATIONS)
def test_missing_key(pntm: Pntm, operation: str) -> None:
    response = pntm.json(operation, [{}], key=None)
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"error": "Falta la cabecera ACCESSKEY con la clave de acceso del laboratorio."}


def test_unknown_and_revoked_keys(pntm: Pntm, world: Any) -> None:
    assert pntm.json("crearMuestras_v2", [create_row()], key="mst_abcd1234_nope").status_code == 401
    assert pntm.json("crearMuestras_v2", [create_row()], key="basura").status_code == 401
    api_key_revoke(actor=SYSTEM, api_key_id=ApiKey.objects.get(laboratory=world.lab_x).pk)
    response = pntm.json("crearMuestras_v2", [create_row()], key="lab_x")
    assert response.status_code == 401
    assert "no es válida o fue revocada" in response.json()["error"]
    assert Sample.objects.count() == 0


def test_establishment_keys_are_not_lab_keys(pntm: Pntm) -> None:
    response = pntm.json("crearMuestras_v2", [create_row()], key="est_a")
    assert response.status_code == 403
    assert "no corresponde a un laboratorio" in response.json()["error"]


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_only_post(pntm: Pntm, method: str) -> None:
    response = getattr(pntm.client, method)("/pntm/datosMuestraID", headers={"ACCESSKEY": pntm.keys["lab_x"]})
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["error"].startswith(f"Método {method.upper()} no permitido")


def test_unknown_operation(pntm: Pntm) -> None:
    response = pntm.json("borrarTodo", [])
    assert response.status_code == 404
    assert response.json() == {"error": "Operación desconocida «borrarTodo»."}


def test_operation_names_are_case_insensitive_and_allow_a_trailing_slash(pntm: Pntm) -> None:
    assert pntm.json("CREARMUESTRAS_V2/", [create_row()]).status_code == 200


def test_no_csrf_token_needed(world: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/pntm/crearMuestras_v2",
        data=json.dumps([create_row()]),
        content_type="application/json",
        headers={"ACCESSKEY": world.keys["lab_x"]},
    )
    assert response.status_code == 200


@pytest.mark.parametrize("envelope", ["array", "bare", "raw-object", "raw-array", "form", "text-plain", "bom"])
def test_write_body_envelopes(pntm: Pntm, envelope: str) -> None:
    row = create_row()
    if envelope == "array":
        response = pntm.json("crearMuestras_v2", [row])
    elif envelope == "bare":
        response = pntm.json("crearMuestras_v2", row)
    elif envelope == "raw-object":
        response = pntm.json("crearMuestras_v2", {"raw": row})
    elif envelope == "raw-array":
        response = pntm.json("crearMuestras_v2", {"raw": [row]})
    elif envelope == "form":
        response = pntm.form("crearMuestras_v2", [row])
    elif envelope == "text-plain":
        # A JSON body sent with a wrong content type (curl -d) is still JSON.
        response = pntm.raw("crearMuestras_v2", json.dumps([row]), "application/x-www-form-urlencoded")
    else:
        response = pntm.raw("crearMuestras_v2", "\ufeff".encode() + json.dumps([row]).encode(), "application/json")
    assert response.status_code == 200, response.json()
    assert response.json()[0]["codigo_muestra_cliente"] == row["codigo_muestra_cliente"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("{no es json", "Cuerpo no válido: el cuerpo no es JSON válido"),
        ("", "El cuerpo de la solicitud está vacío."),
        ("[]", "El arreglo está vacío"),
        ("[1, 2]", "Cuerpo no válido: el elemento 1 del arreglo no es un objeto JSON"),
        ("hola=1", "El cuerpo no es JSON ni un formulario con el campo «parametros»."),
    ],
)
def test_bad_bodies(pntm: Pntm, body: str, fragment: str) -> None:
    response = pntm.raw("crearMuestras_v3", body, "application/json")
    assert response.status_code == 400
    assert fragment in response.json()["error"]


def test_too_many_items(pntm: Pntm, settings: Any) -> None:
    settings.MUESTRA = {**settings.MUESTRA, "MAX_BATCH_ITEMS": 2}
    response = pntm.json("crearMuestras_v3", [create_row(), create_row(), create_row()])
    assert response.status_code == 422
    assert "como máximo 2 elementos" in response.json()["error"]


def test_unexpected_failures_are_json_too(pntm: Pntm, monkeypatch: pytest.MonkeyPatch) -> None:
    from muestra.integrations.pntm import views

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("x")

    monkeypatch.setitem(views.OPERATIONS, "datosMuestraID", boom)
    response = pntm.form("datosMuestraID", {"id_muestra": 1})
    assert response.status_code == 500
    assert response.json()["error"].startswith("Error interno.")


@pytest.mark.parametrize(
    ("operation", "extra"),
    [
        ("recepcionarMuestra", {}),
        ("devolverMuestra", {}),
        ("cambioLaboratorio", {"id_nuevo_laboratorio": 1000000002}),
        ("datosMuestraID", {}),
    ],
)
def test_id_laboratorio_in_any_body_must_be_the_keys_lab(pntm: Pntm, operation: str, extra: dict[str, Any]) -> None:
    sample = pntm.created_sample()
    response = pntm.json(operation, [{"id_muestra": sample.number, "id_laboratorio": "1000000002", **extra}])
    assert response.status_code == 422
    assert response.json()["error"].startswith("id_laboratorio: el laboratorio 1000000002 no corresponde")
    assert Sample.objects.get(pk=sample.pk).state == sample.state
