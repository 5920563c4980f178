"""`sample_register_check`: the errors a registration would meet, without writing anything."""

from __future__ import annotations

from typing import Any

import pytest

from muestra.demo.builders import patient_input, sample_input
from muestra.patients.models import Patient
from muestra.samples import services
from muestra.samples.models import Sample

pytestmark = pytest.mark.django_db


def test_a_valid_registration_has_no_errors_and_nothing_is_written(world: Any) -> None:
    assert services.sample_register_check(actor=world.actors["taker_a"], data=sample_input()) == []
    assert not Sample.objects.exists() and not Patient.objects.exists()


def test_every_field_error_is_reported_at_once(world: Any) -> None:
    patient = patient_input(run="12345678-9")
    patient.given_names = ""
    errors = services.sample_register_check(actor=world.actors["taker_a"], data=sample_input(patient=patient))
    assert {e.field for e in errors} == {"patient.document_number", "patient.given_names"}


def test_the_right_to_register_for_the_establishment_is_checked(world: Any) -> None:
    errors = services.sample_register_check(actor=world.actors["taker_b"], data=sample_input())
    assert [(e.field, e.code) for e in errors] == [("establishment", "not_yours")]
    errors = services.sample_register_check(actor=world.actors["viewer_rm"], data=sample_input())
    assert errors and errors[0].code == "forbidden"
