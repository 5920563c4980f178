# mypy: disable-error-code="union-attr"
"""The samples a person may confirm a held result on: found by number, tube barcode or patient document, and only
among the samples of the person's own laboratories."""

from __future__ import annotations

import pytest

from muestra.demo.builders import patient_input, sample_in_state, sample_input
from muestra.integrations.matching import MAX_CANDIDATES, candidate_samples
from muestra.samples import services
from muestra.samples.models import SampleState

pytestmark = pytest.mark.django_db


@pytest.fixture
def at_lab_x(world):
    return sample_in_state(SampleState.RECEIVED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])


def test_a_sample_is_found_by_its_number_and_by_its_patients_document(world, at_lab_x):
    assert [s.pk for s in candidate_samples(world.actors["lab_x"], str(at_lab_x.number))] == [at_lab_x.pk]
    document = at_lab_x.patient.document_number
    assert at_lab_x.pk in {s.pk for s in candidate_samples(world.actors["lab_x"], document)}


def test_another_labs_samples_and_an_empty_search_find_nothing(world, at_lab_x):
    for text in (str(at_lab_x.number), at_lab_x.patient.document_number):
        assert candidate_samples(world.actors["lab_y"], text) == []
    assert candidate_samples(world.actors["lab_x"], "") == []


def test_a_patient_with_many_samples_gives_at_most_the_limit(world, at_lab_x):
    person = patient_input()
    for _ in range(MAX_CANDIDATES + 2):
        services.sample_register(actor=world.actors["key_lab_x"], data=sample_input(patient=person))
    found = candidate_samples(world.actors["lab_x"], person.document_number)
    assert len(found) == MAX_CANDIDATES
