# mypy: disable-error-code="union-attr"
"""Editing a sample before the lab receives it: the same rules as at registration, one EDITED event naming the
changed fields, members of a pool follow, and a refused edit changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from muestra.core.errors import ValidationFailed
from muestra.demo.builders import sample_in_state, sample_input
from muestra.samples import services
from muestra.samples.models import EventKind, Sample, SampleState
from muestra.samples.tests.support import assert_unchanged, db_state, event_kinds

S = SampleState


@pytest.fixture
def sample(world) -> Sample:
    return sample_in_state(S.REGISTERED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])


def edit(world, sample, **changes):
    return services.sample_update(actor=world.actors["taker_a"], sample_id=sample.pk, changes=changes)


def test_edit_records_one_event_naming_the_changed_fields(world, sample):
    when = timezone.now() - timedelta(hours=5)
    edit(world, sample, sample_type="saliva", strategy="bac-outbreaks", collected_at=when, surveillance_number="E1")
    sample.refresh_from_db()
    assert (sample.sample_type.code, sample.strategy.code, sample.collected_at, sample.surveillance_number) == (
        "saliva",
        "bac-outbreaks",
        when,
        "E1",
    )
    event = sample.events.get(kind=EventKind.EDITED)
    assert set(event.data["fields"]) == {"sample_type", "strategy", "collected_at", "surveillance_number"}


def test_an_edit_that_changes_nothing_records_nothing(world, sample):
    before = db_state(sample.pk)
    edit(world, sample, sample_type=sample.sample_type.code, surveillance_number=sample.surveillance_number)
    assert_unchanged(before, sample.pk)


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"sample_type": "lesion-swab"}, "sample_type", None),
        ({"sample_type": "toenail"}, "sample_type", "unknown_code"),
        ({"strategy": "nope"}, "strategy", "unknown_code"),
        ({"collected_at": "tomorrow-ish"}, "collected_at", "invalid"),
        ({"collected_at": "future"}, "collected_at", "future"),
        ({"collected_at": "stale"}, "collected_at", "stale"),
        ({"collected_at": None}, "collected_at", "required"),
        ({"laboratory": 1000000002}, "laboratory", "not_assigned"),
        ({"laboratory": 1999999999}, "laboratory", "unknown_code"),
        ({"ordering_physician_run": "12.345.678-0"}, "ordering_physician_run", "invalid"),
        ({"without_medical_order": False}, "ordering_physician_run", "required"),
        ({"surveillance_number": "x" * 41}, "surveillance_number", None),
        ({"active_case_finding": None}, "active_case_finding", None),
        ({"without_medical_order": "maybe"}, "without_medical_order", None),
        ({"patient": 1}, "patient", None),
        ({"state": "result"}, "state", None),
    ],
    ids=lambda v: str(v)[:40],
)
def test_an_invalid_edit_is_refused_and_changes_nothing(world, sample, changes, field, code):
    if changes.get("collected_at") in {"future", "stale"}:
        offset = timedelta(days=1) if changes["collected_at"] == "future" else -timedelta(days=8)
        changes = {"collected_at": timezone.now() + offset}
    before = db_state(sample.pk)
    with pytest.raises(ValidationFailed) as info:
        edit(world, sample, **changes)
    assert field in {e.field for e in info.value.errors}
    if code:
        assert (field, code) in {(e.field, e.code) for e in info.value.errors}
    assert_unchanged(before, sample.pk)


def test_physician_run_is_stored_normalised(world, sample):
    edit(world, sample, ordering_physician_run="12.345.678-5", without_medical_order=False)
    sample.refresh_from_db()
    assert (sample.ordering_physician_run, sample.without_medical_order) == ("12345678-5", False)


def test_surveillance_number_may_be_cleared(world, sample):
    edit(world, sample, surveillance_number="E9")
    edit(world, sample, surveillance_number=None)
    sample.refresh_from_db()
    assert sample.surveillance_number == ""


def test_a_dispatched_sample_may_still_be_edited(world):
    sample = sample_in_state(S.DISPATCHED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    edit(world, sample, surveillance_number="E2")
    assert event_kinds(sample)[-1] == EventKind.EDITED


def test_editing_a_pool_updates_its_members(world):
    data = sample_input(pool_members=[sample_input().patient, sample_input().patient], tube_code="TUBE-EDIT")
    data.patient = None
    pool, _ = services.sample_register(actor=world.actors["taker_a"], data=data)
    edit(world, pool, sample_type="saliva", surveillance_number="P1")
    for member in Sample.objects.filter(pool=pool):
        assert (member.sample_type.code, member.surveillance_number) == ("saliva", "P1")
