# mypy: disable-error-code="union-attr"
"""Committed events are announced after commit (outbound integrations listen), never for a rolled-back change."""

from __future__ import annotations

import pytest

from muestra.core.errors import IllegalTransition
from muestra.demo.builders import REPORT, sample_in_state, sample_input
from muestra.samples import services
from muestra.samples.models import PUBLIC_NUMBER_OFFSET, EventKind, Sample, SampleEvent, SampleState
from muestra.samples.signals import sample_events_committed


@pytest.fixture
def announced():
    received: list[list[int]] = []

    def listener(sender, event_ids, **kwargs):
        received.append(list(event_ids))

    sample_events_committed.connect(listener)
    yield received
    sample_events_committed.disconnect(listener)


def test_events_are_announced_after_commit(world, announced, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        sample, _ = services.sample_register(actor=world.actors["taker_a"], data=sample_input())
    assert announced == []  # not before the commit
    for callback in callbacks:
        callback()
    assert announced == [list(sample.events.values_list("pk", flat=True))]


def test_a_result_with_implicit_receipt_announces_both_events(world, announced, django_capture_on_commit_callbacks):
    sample = sample_in_state(SampleState.DISPATCHED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    with django_capture_on_commit_callbacks(execute=True):
        services.result_deliver(actor=world.actors["lab_x"], sample_id=sample.pk, value="negative", report=REPORT)
    kinds = list(SampleEvent.objects.filter(pk__in=announced[-1]).order_by("pk").values_list("kind", flat=True))
    assert kinds == [EventKind.RECEIVED, EventKind.RESULT_DELIVERED]


def test_nothing_is_announced_for_a_refused_or_repeated_call(world, announced, django_capture_on_commit_callbacks):
    sample = sample_in_state(SampleState.CANCELLED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(IllegalTransition):
            services.sample_receive(actor=world.actors["lab_x"], sample_id=sample.pk)
        services.sample_cancel(actor=world.actors["taker_a"], sample_id=sample.pk, reason="again")
    assert callbacks == [] and announced == []


def test_public_numbers_have_ten_digits_and_map_back(world):
    sample, _ = services.sample_register(actor=world.actors["taker_a"], data=sample_input())
    assert len(str(sample.number)) == 10
    assert Sample.pk_from_number(sample.number) == sample.pk
    assert Sample.pk_from_number(str(sample.number)) == sample.pk
    for bad in (None, "abc", PUBLIC_NUMBER_OFFSET, 12, "1e9"):
        assert Sample.pk_from_number(bad) is None  # type: ignore[arg-type]
