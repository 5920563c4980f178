# mypy: disable-error-code="union-attr"
"""The set-based write helpers store exactly what Django's own `save()` / `bulk_update` would store, whatever the
Python types handed to them (choices members, lazy translations, numbers in text fields), on SQLite and on
PostgreSQL (where they take their COPY / UPDATE … FROM VALUES paths)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext_lazy

from muestra.core.bulk import bulk_insert_rows, bulk_update_rows, new_instance, prepared_rows
from muestra.demo.builders import sample_in_state
from muestra.samples.models import Channel, EventKind, Sample, SampleEvent, SampleState

COMPARED = ["sample_id", "kind", "at", "occurred_at", "actor", "actor_user_id", "laboratory_id", "establishment_id"]


def _event_values(event_id: int) -> dict[str, Any]:
    return SampleEvent.objects.filter(pk=event_id).values(*COMPARED, "from_state", "to_state", "reason", "data").get()


def _registered(world: Any) -> Sample:
    return sample_in_state(SampleState.REGISTERED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])


def _event(sample: Sample, **overrides: Any) -> SampleEvent:
    values: dict[str, Any] = {
        "sample_id": sample.pk,
        "kind": EventKind.EDITED,  # a choices member, stored as its value
        "at": timezone.now(),
        "actor": "apikey:1",
        "laboratory_id": sample.laboratory_id,
        "establishment_id": sample.establishment_id,
        "from_state": SampleState.REGISTERED,
        "to_state": "registered",
        "reason": gettext_lazy("no translation for this"),  # a lazy string, stored as text
        "channel": Channel.API,
        "data": {"note": 'ñandú "quoted" \\ back', "n": [1, 2]},
    }
    values.update(overrides)
    return new_instance(SampleEvent, values)


@pytest.mark.parametrize("rows", [1, 25])
def test_bulk_insert_stores_what_save_stores(world, rows):
    sample = _registered(world)
    saved = _event(sample)
    saved.save()
    inserted = bulk_insert_rows(SampleEvent, [_event(sample, at=saved.at) for _ in range(rows)])
    assert all(e.pk is not None and not e._state.adding for e in inserted)
    expected = _event_values(saved.pk)
    assert expected["kind"] == "edited" and expected["reason"] == "no translation for this"
    for event in inserted:
        assert _event_values(event.pk) == expected


def test_bulk_insert_converts_values_of_other_types(world):
    sample = _registered(world)
    (event,) = bulk_insert_rows(SampleEvent, [_event(sample, actor=12345, reason=gettext_lazy("another text"))])
    stored = _event_values(event.pk)
    assert stored["actor"] == "12345"
    assert stored["reason"] == "another text"


def test_bulk_insert_takes_the_id_of_a_related_row_saved_after_the_object_was_built(world):
    sample = _registered(world)
    event = _event(sample)
    unsaved = Sample(
        establishment_id=sample.establishment_id,
        laboratory_id=sample.laboratory_id,
        disease_id=sample.disease_id,
        test_id=sample.test_id,
        sample_type_id=sample.sample_type_id,
        collected_at=sample.collected_at,
        state_changed_at=timezone.now(),
    )
    event.sample = unsaved
    unsaved.save()
    (inserted,) = bulk_insert_rows(SampleEvent, [event])
    assert SampleEvent.objects.get(pk=inserted.pk).sample_id == unsaved.pk


def test_bulk_update_writes_only_the_named_fields_of_the_given_rows(world):
    first, second, untouched = _registered(world), _registered(world), _registered(world)
    later = timezone.now() + timedelta(minutes=5)
    for sample in (first, second):
        sample.state = SampleState.DISPATCHED  # a choices member
        sample.state_changed_at = later
        sample.answers = {"fever": True}
        sample.client_code = "not written"  # not among the fields below
    assert bulk_update_rows(Sample, [first, second], ["state", "state_changed_at", "answers"]) == 2
    for sample in (first, second):
        stored = Sample.objects.get(pk=sample.pk)
        assert (stored.state, stored.state_changed_at, stored.answers) == ("dispatched", later, {"fever": True})
        assert stored.client_code != "not written"
    assert Sample.objects.get(pk=untouched.pk).state == SampleState.REGISTERED


def test_new_instance_fills_defaults_and_refuses_unknown_fields(world):
    sample = _registered(world)
    one = new_instance(SampleEvent, {"sample_id": sample.pk, "kind": "edited"})
    two = new_instance(SampleEvent, {"sample_id": sample.pk, "kind": "edited"})
    assert one.data == {} and one.data is not two.data  # a callable default is called per instance
    assert one.reason == "" and one.pk is None and one._state.adding
    with pytest.raises(TypeError, match="sample"):
        new_instance(SampleEvent, {"sample": sample})  # related objects are not attribute values


def test_prepared_rows_fill_auto_now_dates(world):
    sample = _registered(world)
    copy = Sample.objects.get(pk=sample.pk)
    copy.updated_at = None
    fields = [Sample._meta.get_field("updated_at"), Sample._meta.get_field("state")]
    before = timezone.now()
    ((updated_at, state),) = prepared_rows([copy], fields, connection)
    assert updated_at >= before and state == "registered"
