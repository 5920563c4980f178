"""Helpers for calling the national API as a LIS would: JSON bodies, forms with `parametros`, multipart reports."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from muestra.demo.builders import fresh_run
from muestra.integrations.pntm.parsing import SANTIAGO
from muestra.samples.models import Sample

LAB_X = 1000000001
LAB_Y = 1000000002
EST_A = "113100"
EST_B = "105100"
PROFESSIONAL_RUN = "12345678-5"
PDF = b"%PDF-1.4\n% informe firmado de prueba\n%%EOF\n"

#: Marks a field to leave out of a generated row.
DROP = object()

_codes = itertools.count(1)


def wire_time(value: datetime) -> str:
    """The format most LIS used: dd-mm-aaaaTHH:MM:SS in Chilean time."""
    return value.astimezone(SANTIAGO).strftime("%d-%m-%YT%H:%M:%S")


def create_row(**overrides: Any) -> dict[str, Any]:
    """A valid crearMuestras row for lab X at establishment A, with a fresh patient RUN and lab code."""
    body, dv = fresh_run().split("-")
    row: dict[str, Any] = {
        "codigo_muestra_cliente": f"LIS-{next(_codes):06d}",
        "id_laboratorio": LAB_X,
        "rut_responsable": PROFESSIONAL_RUN,
        "cod_deis": EST_A,
        "sin_orden_medica": True,
        "epivigila": "",
        "paciente_tipodoc": "RUN",
        "paciente_run": body,
        "paciente_dv": dv,
        "paciente_nombres": "Paciente",
        "paciente_ap_pat": "Prueba",
        "paciente_ap_mat": "Demo",
        "paciente_fecha_nac": "17-05-1985",
        "paciente_comuna": "13101",
        "paciente_direccion": "Av. Siempre Viva 742",
        "paciente_telefono": "912345678",
        "paciente_email": "",
        "paciente_sexo": "F",
        "paciente_prevision": "FONASA",
        "fecha_muestra": wire_time(timezone.now() - timedelta(hours=2)),
        "tecnica_muestra": "RT-PCR",
        "tipo_muestra": "Tórulas Nasofaríngeas",
        "busqueda_activa": False,
    }
    row.update(overrides)
    return {k: v for k, v in row.items() if v is not DROP}


def sample_pk(number: int) -> int:
    pk = Sample.pk_from_number(number)
    assert pk is not None
    return pk


@dataclass
class Pntm:
    """The national API as seen from a LIS holding the world's keys."""

    client: Client
    keys: dict[str, str]

    def _headers(self, key: str | None) -> dict[str, str]:
        if key is None:
            return {}
        return {"ACCESSKEY": self.keys.get(key, key)}

    def json(self, operation: str, body: Any, *, key: str | None = "lab_x") -> Any:
        return self.client.post(
            f"/pntm/{operation}",
            data=json.dumps(body),
            content_type="application/json",
            headers=self._headers(key),
        )

    def raw(self, operation: str, body: bytes | str, content_type: str, *, key: str | None = "lab_x") -> Any:
        return self.client.post(f"/pntm/{operation}", data=body, content_type=content_type, headers=self._headers(key))

    def form(
        self,
        operation: str,
        parametros: Any,
        *,
        key: str | None = "lab_x",
        multipart: bool = False,
        files: dict[str, SimpleUploadedFile] | None = None,
    ) -> Any:
        params = parametros if isinstance(parametros, str) else json.dumps(parametros)
        if multipart or files:
            data: dict[str, Any] = {"parametros": params, **(files or {})}
            return self.client.post(f"/pntm/{operation}", data=data, headers=self._headers(key))
        return self.client.post(
            f"/pntm/{operation}",
            data=urlencode({"parametros": params}),
            content_type="application/x-www-form-urlencoded",
            headers=self._headers(key),
        )

    def create(self, *rows: dict[str, Any], key: str = "lab_x", operation: str = "crearMuestras_v2") -> list[Any]:
        """Creates rows and returns the answer, asserting success."""
        response = self.json(operation, list(rows), key=key)
        assert response.status_code == 200, response.json()
        return response.json()  # type: ignore[no-any-return]

    def created_sample(self, operation: str = "crearMuestras_v2", **overrides: Any) -> Sample:
        answer = self.create(create_row(**overrides), operation=operation)
        return Sample.objects.get(pk=sample_pk(answer[0]["id_muestra"]))

    def result(
        self,
        id_muestra: int,
        resultado: str = "Negativo",
        *,
        key: str = "lab_x",
        upfile: SimpleUploadedFile | None = None,
        with_file: bool = True,
        operation: str = "entregaResultado",
        **extra: Any,
    ) -> Any:
        files = {}
        if with_file:
            files["upfile"] = upfile or SimpleUploadedFile("informe.pdf", PDF, content_type="application/pdf")
        return self.form(
            operation,
            {"id_muestra": id_muestra, "resultado": resultado, **extra},
            key=key,
            multipart=True,
            files=files,
        )


@pytest.fixture
def pntm(world: Any, client: Client) -> Pntm:
    return Pntm(client=client, keys=world.keys)
