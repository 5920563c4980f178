"""Helpers for the FHIR tests: a client per persona speaking application/fhir+json, and the realistic Bundles of
`bundles/` with their placeholders ({{NUMBER}}, {{PDF}}...) filled in."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from conftest import login_with_second_factor
from muestra.demo.builders import sample_in_state, sample_input
from muestra.samples.models import Sample

BUNDLES = Path(__file__).parent / "bundles"
PDF = b"%PDF-1.4\n% informe firmado de prueba\n%%EOF\n"
PDF_2 = b"%PDF-1.4\n% informe corregido\n%%EOF\n"
KEY_PERSONAS = {"key_lab_x": "lab_x", "key_lab_y": "lab_y", "key_est_a": "est_a"}


def load_bundle(name: str, **values: Any) -> dict[str, Any]:
    now = timezone.now().replace(microsecond=0)
    defaults = {
        "NOW": (now - timedelta(minutes=1)).isoformat(),
        "COLLECTED": (now - timedelta(hours=2)).isoformat(),
        "PDF": base64.b64encode(PDF).decode(),
        "PDF_2": base64.b64encode(PDF_2).decode(),
        "RUN": "12345678-5",
        "NUMBER_2": "1999999999",
        "TUBE": "",
        "CLIENT_CODE": "",
    }
    text = (BUNDLES / f"{name}.json").read_text()
    for key, value in {**defaults, **values}.items():
        text = text.replace("{{" + key + "}}", str(value))
    return json.loads(text)  # type: ignore[no-any-return]


@dataclass
class Fhir:
    client: Client
    headers: dict[str, str]

    def post(self, bundle: Any, headers: dict[str, str] | None = None) -> Any:
        body = bundle if isinstance(bundle, str | bytes) else json.dumps(bundle)
        return self.client.post(
            "/fhir/", body, content_type="application/fhir+json", headers={**self.headers, **(headers or {})}
        )

    def get(self, path: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Any:
        return self.client.get(f"/fhir/{path}", params or {}, headers={**self.headers, **(headers or {})})


@pytest.fixture
def fhir(world: Any) -> Any:
    """fhir("key_lab_x") -> a client with lab X's API key; fhir("lab_x") -> one logged in as that persona."""

    def make(persona: str = "key_lab_x") -> Fhir:
        if persona in KEY_PERSONAS:
            return Fhir(Client(), {"Authorization": f"Bearer {world.keys[KEY_PERSONAS[persona]]}"})
        return Fhir(login_with_second_factor(Client(), world.users[persona]), {})

    return make


@pytest.fixture
def received(world: Any) -> Any:
    """received(**sample_input args) -> a sample of establishment A received by lab X."""

    def make(**kwargs: Any) -> Sample:
        return sample_in_state(
            "received", taker=world.actors["taker_a"], lab=world.actors["lab_x"], data=sample_input(**kwargs)
        )

    return make


def statuses(response: Any) -> list[str]:
    body = response.json()
    assert body["resourceType"] == "Bundle", body
    return [entry["response"]["status"] for entry in body["entry"]]


def issues(outcome: dict[str, Any]) -> list[dict[str, Any]]:
    assert outcome["resourceType"] == "OperationOutcome", outcome
    return outcome["issue"]  # type: ignore[no-any-return]
