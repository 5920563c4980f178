# mypy: disable-error-code="union-attr,arg-type"
"""`samples.selectors.samples_by_identifiers`, the one sample identification of every lab channel: many
identifiers in one query, each kind as the sender says, scoped like every read."""

from __future__ import annotations

from muestra.demo.builders import sample_in_state, sample_input
from muestra.samples import services
from muestra.samples.models import SampleState
from muestra.samples.selectors import IdentifierKind, SampleIdentifier, samples_by_identifiers

K = IdentifierKind


def test_numbers_tubes_and_lab_codes_are_found_in_one_query(world, django_assert_num_queries):
    lab, taker = world.actors["lab_x"], world.actors["taker_a"]
    by_number = sample_in_state(SampleState.RECEIVED, taker=taker, lab=lab)
    by_tube = sample_in_state(SampleState.RECEIVED, taker=taker, lab=lab, data=sample_input(tube_code="TB-100"))
    by_code, _ = services.sample_register(actor=lab, data=sample_input(client_code="LX-1"))
    wanted = [
        SampleIdentifier(str(by_number.number), K.NUMBER),
        SampleIdentifier(" TB-100 ", K.TUBE),
        SampleIdentifier("LX-1", K.CLIENT),
        SampleIdentifier("NOPE"),
        SampleIdentifier("9" * 30),  # too long for a number: never reaches the database as one
    ]
    with django_assert_num_queries(1):
        found = samples_by_identifiers(lab, wanted)
    assert [s.pk for s in found.candidates(wanted[:1])] == [by_number.pk]
    assert [s.pk for s in found.candidates([SampleIdentifier("TB-100", K.TUBE)])] == [by_tube.pk]
    assert [s.pk for s in found.candidates(wanted[2:3])] == [by_code.pk]
    assert found.candidates(wanted[3:]) == []
    assert len(found.candidates(wanted)) == 3  # several samples: the caller holds, never guesses


def test_a_kind_hint_narrows_and_no_hint_tries_every_kind(world):
    lab, taker = world.actors["lab_x"], world.actors["taker_a"]
    tube = sample_in_state(SampleState.RECEIVED, taker=taker, lab=lab, data=sample_input(tube_code="SAME-7"))
    coded, _ = services.sample_register(actor=lab, data=sample_input(client_code="SAME-7"))
    found = samples_by_identifiers(lab, [SampleIdentifier("SAME-7"), SampleIdentifier("SAME-7", K.CLIENT)])
    assert {s.pk for s in found.candidates([SampleIdentifier("SAME-7")])} == {tube.pk, coded.pk}
    assert [s.pk for s in found.candidates([SampleIdentifier("SAME-7", K.CLIENT)])] == [coded.pk]


def test_other_labs_samples_and_codes_are_not_found(world):
    other = sample_in_state(
        SampleState.RECEIVED,
        taker=world.actors["taker_b"],
        lab=world.actors["lab_y"],
        data=sample_input(establishment="105100", laboratory=1000000002, tube_code="TB-Y"),
    )
    services.sample_register(
        actor=world.actors["lab_y"],
        data=sample_input(establishment="105100", client_code="LY-1", laboratory=1000000002),
    )
    wanted = [SampleIdentifier(str(other.number)), SampleIdentifier("TB-Y"), SampleIdentifier("LY-1")]
    assert samples_by_identifiers(world.actors["lab_x"], wanted).candidates(wanted) == []
    assert [s.pk for s in samples_by_identifiers(world.actors["lab_y"], wanted).candidates(wanted[:2])] == [other.pk]
