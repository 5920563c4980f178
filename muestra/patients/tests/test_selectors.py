"""`patient_by_document`: a patient is found by their document only where the actor sees one of their samples."""

from __future__ import annotations

from typing import Any

import pytest

from muestra.demo.builders import fresh_run, patient_input, sample_input
from muestra.patients.selectors import patient_by_document
from muestra.samples import services

pytestmark = pytest.mark.django_db


def test_found_by_any_typed_form_of_the_number_within_scope(world: Any) -> None:
    run = fresh_run()
    sample, _ = services.sample_register(
        actor=world.actors["taker_a"], data=sample_input(patient=patient_input(run=run))
    )
    body, dv = run.split("-")
    for typed in (run, f"{body}{dv}", f"{int(body):,}".replace(",", ".") + f"-{dv}"):
        found = patient_by_document(world.actors["taker_a"], document_type="run", document_number=typed)
        assert found == sample.patient
    assert patient_by_document(world.actors["taker_b"], document_type="run", document_number=run) is None
    assert patient_by_document(world.actors["admin"], document_type="run", document_number=run) == sample.patient


def test_invalid_or_numberless_documents_find_nobody(world: Any) -> None:
    actor = world.actors["taker_a"]
    assert patient_by_document(actor, document_type="run", document_number="12345678-9") is None
    assert patient_by_document(actor, document_type="no-document", document_number="") is None
    assert patient_by_document(actor, document_type="nope", document_number="1") is None
    assert patient_by_document(actor, document_type="passport", document_number="AB123456") is None  # no issuer


def test_passport_needs_its_issuing_country(world: Any) -> None:
    patient = patient_input()
    patient.document_type, patient.document_number, patient.document_issuer = "passport", "AB123456", "604"
    patient.insurance = ""
    sample, _ = services.sample_register(actor=world.actors["taker_a"], data=sample_input(patient=patient))
    actor = world.actors["taker_a"]
    found = patient_by_document(actor, document_type="passport", document_number="ab123456", document_issuer="604")
    assert found == sample.patient
    assert (
        patient_by_document(actor, document_type="passport", document_number="AB123456", document_issuer="32") is None
    )
