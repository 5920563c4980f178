# mypy: disable-error-code="union-attr"
"""The set-based write helpers store exactly what Django's own `save()` / `bulk_update` would store, whatever the
Python types handed to them (choices members, lazy translations, numbers in text fields), on SQLite and on
PostgreSQL (where they take their COPY / UPDATE … FROM VALUES paths)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext_lazy

from muestra.core.bulk import bulk_insert_rows, bulk_update_rows, insert_rows, json_rows, new_instance
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


@pytest.mark.parametrize("insert", [bulk_insert_rows, insert_rows])
def test_an_unsaved_related_row_is_refused_and_nothing_is_written(world, insert):
    sample = _registered(world)
    event = _event(sample)
    event.sample = Sample(establishment_id=sample.establishment_id)  # never saved
    before = SampleEvent.objects.count()
    with pytest.raises(ValueError, match="unsaved related object 'sample'"):
        insert(SampleEvent, [event])
    assert SampleEvent.objects.count() == before


def test_insert_rows_stores_what_save_stores(world):
    sample = _registered(world)
    saved = _event(sample)
    saved.save()
    inserted = insert_rows(SampleEvent, [_event(sample, at=saved.at), _event(sample, at=saved.at)])
    assert all(e.pk is not None and not e._state.adding for e in inserted)
    assert len({e.pk for e in inserted}) == 2
    for event in inserted:
        assert _event_values(event.pk) == _event_values(saved.pk)


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


@pytest.mark.skipif(connection.vendor != "postgresql", reason="JSON rows are PostgreSQL's bulk path")
def test_json_rows_fill_auto_now_dates_and_keep_json_values(world):
    sample = _registered(world)
    copy = Sample.objects.get(pk=sample.pk)
    copy.answers = {"fever": True, "note": "tos"}
    fields = [Sample._meta.get_field(name) for name in ("id", "updated_at", "state", "answers", "collected_at")]
    before = timezone.now()
    (row,) = json.loads(json_rows([copy], fields, connection, pre_save=True))
    assert row["id"] == sample.pk and row["state"] == "registered"
    assert row["answers"] == {"fever": True, "note": "tos"}  # a JSON value, not a JSON text inside a string
    assert datetime.fromisoformat(row["updated_at"]) >= before  # auto_now filled, as save() does
    assert datetime.fromisoformat(row["collected_at"]) == sample.collected_at


def _raw_column(sample_id: int, column: str) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM samples_sample WHERE id = %s", [sample_id])  # noqa: S608 - test constant
        return cursor.fetchone()[0]


def test_bulk_update_stores_dates_exactly_as_save_does(world):
    """Raw column values, not model values: SQLite keeps dates as text that Django formats itself, and a value
    written in another format would still read back equal but sort and compare wrongly in SQL."""
    by_save, by_bulk = _registered(world), _registered(world)
    when = timezone.now().replace(microsecond=123456) - timedelta(hours=1)
    for sample in (by_save, by_bulk):
        sample.state_changed_at = when
    by_save.save(update_fields=["state_changed_at"])
    bulk_update_rows(Sample, [by_bulk], ["state_changed_at"])
    assert _raw_column(by_bulk.pk, "state_changed_at") == _raw_column(by_save.pk, "state_changed_at")
