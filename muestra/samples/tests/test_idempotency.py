# mypy: disable-error-code="union-attr"
"""Retries are harmless: a LIS that repeats a call after a timeout gets the stored outcome and nothing new is
recorded; a repeat that differs from what is stored is a Conflict and changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from muestra.core.errors import Conflict, IllegalTransition, ValidationFailed
from muestra.demo.builders import REPORT, patient_input, sample_in_state, sample_input
from muestra.samples import services
from muestra.samples.models import EventKind, Sample, SampleState, Shipment
from muestra.samples.tests.support import assert_unchanged, db_state, event_kinds

S = SampleState
LAB_X, LAB_Y = 1000000001, 1000000002


def _dispatched(world) -> Sample:
    return sample_in_state(S.DISPATCHED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])


def test_repeated_receipt_records_one_event(world):
    sample = _dispatched(world)
    _s, recorded = services.sample_receive(actor=world.actors["key_lab_x"], sample_id=sample.pk)
    assert recorded
    before = db_state(sample.pk)
    for when in (None, timezone.now() - timedelta(minutes=30)):  # even with another reception time
        again, recorded = services.sample_receive(
            actor=world.actors["key_lab_x"], sample_id=sample.pk, received_at=when
        )
        assert not recorded and again.state == S.RECEIVED
    assert_unchanged(before, sample.pk)
    assert event_kinds(sample).count(EventKind.RECEIVED) == 1


def test_bulk_receipt_reports_repeats_per_item(world):
    first, second = _dispatched(world), _dispatched(world)
    services.sample_receive(actor=world.actors["lab_x"], sample_id=first.pk)
    outcomes = services.samples_receive(actor=world.actors["lab_x"], sample_ids=[first.pk, second.pk, 10**9])
    assert [(o.ok, o.created) for o in outcomes[:2]] == [(True, False), (True, True)]
    assert outcomes[2].error is not None and outcomes[2].error.status == 404


def test_repeated_result_with_the_same_value_records_nothing(world):
    sample = sample_in_state(S.RECEIVED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    first, recorded = services.result_deliver(
        actor=world.actors["lab_x"], sample_id=sample.pk, value="negative", report=REPORT
    )
    assert recorded
    before = db_state(sample.pk)
    # The national platform's names are accepted as the same value.
    again, recorded = services.result_deliver(
        actor=world.actors["key_lab_x"], sample_id=sample.pk, value="Negativo", report=REPORT
    )
    assert not recorded and again.pk == first.pk
    assert_unchanged(before, sample.pk)
    assert event_kinds(sample).count(EventKind.RESULT_DELIVERED) == 1


def test_repeated_result_with_a_different_value_is_a_conflict(world):
    sample = sample_in_state(S.RESULT, taker=world.actors["taker_a"], lab=world.actors["lab_x"], result="negative")
    before = db_state(sample.pk)
    with pytest.raises(Conflict) as info:
        services.result_deliver(actor=world.actors["lab_x"], sample_id=sample.pk, value="positive", report=REPORT)
    assert info.value.status == 409 and info.value.errors[0].field == "result"
    assert_unchanged(before, sample.pk)
    sample.refresh_from_db()
    assert sample.result_value.code == "negative"


def test_lis_create_retry_with_same_code_and_content_returns_the_same_sample(world):
    data = sample_input(client_code="LIS-42")
    first, created = services.sample_register(actor=world.actors["key_lab_x"], data=data)
    assert created
    before = db_state(first.pk)
    again, created = services.sample_register(actor=world.actors["key_lab_x"], data=data)
    assert not created and again.pk == first.pk
    assert_unchanged(before, first.pk)


def test_lis_create_retry_after_the_lab_received_the_sample_still_returns_it(world):
    data = sample_input(client_code="LIS-43")
    first, _ = services.sample_register(actor=world.actors["key_lab_x"], data=data)
    services.sample_receive(actor=world.actors["key_lab_x"], sample_id=first.pk)
    again, created = services.sample_register(actor=world.actors["key_lab_x"], data=data)
    assert (again.pk, created) == (first.pk, False)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: setattr(d, "sample_type", "saliva"),
        lambda d: setattr(d, "collected_at", d.collected_at - timedelta(hours=1)),
        lambda d: setattr(d, "patient", patient_input()),  # another person
        lambda d: d.__dict__.update(test="mpox-pcr", sample_type="lesion-swab"),
    ],
    ids=["sample_type", "collected_at", "patient", "test"],
)
def test_lis_create_retry_with_same_code_and_different_content_is_a_conflict(world, change):
    data = sample_input(client_code="LIS-44")
    services.sample_register(actor=world.actors["key_lab_x"], data=data)
    change(data)
    before = db_state()
    with pytest.raises(Conflict) as info:
        services.sample_register(actor=world.actors["key_lab_x"], data=data)
    assert info.value.errors[0].field == "client_code"
    assert_unchanged(before)


def test_same_client_code_in_two_labs_is_two_samples(world):
    one, _ = services.sample_register(
        actor=world.actors["key_lab_x"], data=sample_input(establishment="105100", laboratory=LAB_X, client_code="C-1")
    )
    two, created = services.sample_register(
        actor=world.actors["key_lab_y"], data=sample_input(establishment="105100", laboratory=LAB_Y, client_code="C-1")
    )
    assert created and one.pk != two.pk


def test_batch_with_the_same_client_code_twice_stores_it_once(world):
    first, second = sample_input(client_code="B-1"), sample_input(client_code="B-1")
    before = db_state()
    outcomes = services.sample_register_batch(actor=world.actors["key_lab_x"], items=[first, second])
    assert outcomes[0].ok and outcomes[0].created
    assert not outcomes[1].ok
    assert [(e.field, e.code) for e in outcomes[1].errors] == [("client_code", "duplicate")]
    assert dict(db_state().counts)["samples"] == dict(before.counts)["samples"] + 1


def test_batch_resent_whole_returns_the_stored_samples(world):
    items = [sample_input(client_code=f"R-{i}") for i in range(5)]
    first = services.sample_register_batch(actor=world.actors["key_lab_x"], items=items)
    assert all(o.ok and o.created for o in first)
    before = db_state()
    again = services.sample_register_batch(actor=world.actors["key_lab_x"], items=items)
    assert [(o.sample.pk, o.created) for o in again] == [(o.sample.pk, False) for o in first]
    assert_unchanged(before)


def test_batch_resent_with_one_changed_item_conflicts_on_that_item_only(world):
    items = [sample_input(client_code=f"Q-{i}") for i in range(3)]
    services.sample_register_batch(actor=world.actors["key_lab_x"], items=items)
    items[1].sample_type = "saliva"
    items.append(sample_input(client_code="Q-new"))
    outcomes = services.sample_register_batch(actor=world.actors["key_lab_x"], items=items)
    assert [o.ok for o in outcomes] == [True, False, True, True]
    assert isinstance(outcomes[1].error, Conflict)
    assert outcomes[3].created


def test_repeated_cancel_is_harmless(world):
    sample = sample_in_state(S.CANCELLED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    before = db_state(sample.pk)
    again = services.sample_cancel(actor=world.actors["taker_a"], sample_id=sample.pk, reason="again")
    assert again.state == S.CANCELLED
    assert_unchanged(before, sample.pk)


def test_repeated_return_is_harmless(world):
    sample = sample_in_state(S.RETURNED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    before = db_state(sample.pk)
    assert services.sample_return(actor=world.actors["lab_x"], sample_id=sample.pk).state == S.RETURNED
    assert_unchanged(before, sample.pk)


def test_repeated_reject_with_the_same_reason_is_harmless_other_reason_is_refused(world):
    sample = sample_in_state(S.REJECTED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    before = db_state(sample.pk)
    # The same official reason, even under its national platform name.
    assert (
        services.sample_reject(actor=world.actors["lab_x"], sample_id=sample.pk, reason="Muestra mal tomada").state
        == S.REJECTED
    )
    assert_unchanged(before, sample.pk)
    with pytest.raises(IllegalTransition):
        services.sample_reject(actor=world.actors["lab_x"], sample_id=sample.pk, reason="unlabelled")
    assert_unchanged(before, sample.pk)


def test_unknown_rejection_reason_is_refused(world):
    sample = _dispatched(world)
    before = db_state(sample.pk)
    with pytest.raises(ValidationFailed) as info:
        services.sample_reject(actor=world.actors["lab_x"], sample_id=sample.pk, reason="bored")
    assert info.value.errors[0].field == "reason"
    assert_unchanged(before, sample.pk)


def test_repeated_dispatch_is_harmless(world):
    sample, _ = services.sample_register(actor=world.actors["taker_a"], data=sample_input())
    shipment = services.shipment_create(
        actor=world.actors["taker_a"], establishment_code="113100", laboratory_id=LAB_X, sample_ids=[sample.pk]
    )
    services.shipment_dispatch(actor=world.actors["taker_a"], shipment_id=shipment.pk)
    before = db_state(sample.pk)
    again = services.shipment_dispatch(actor=world.actors["taker_a"], shipment_id=shipment.pk)
    assert again.state == Shipment.State.DISPATCHED
    assert_unchanged(before, sample.pk)


def test_repeated_forward_is_harmless_for_both_labs(world):
    sample = _dispatched(world)
    services.sample_forward(actor=world.actors["lab_x"], sample_id=sample.pk, new_laboratory=LAB_Y)
    before = db_state(sample.pk)
    # The lab now holding it confirms (the national platform's "confirmed at the new lab").
    assert (
        services.sample_forward(
            actor=world.actors["lab_y"], sample_id=sample.pk, new_laboratory=LAB_Y
        ).laboratory.platform_id
        == LAB_Y
    )
    assert_unchanged(before, sample.pk)
    assert event_kinds(sample).count(EventKind.FORWARDED) == 1


def test_repeated_correction_authorisation_returns_the_pending_one(world):
    sample = sample_in_state(S.RESULT, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    first = services.correction_authorise(actor=world.actors["admin"], sample_id=sample.pk, reason="late fix")
    before = db_state(sample.pk)
    again = services.correction_authorise(actor=world.actors["admin"], sample_id=sample.pk, reason="late fix")
    assert again.pk == first.pk
    assert_unchanged(before, sample.pk)


# --- a retry that arrives after the collection time has grown too old for a new registration ---------------------


@pytest.fixture
def collection_age_one_day(settings):
    """Registrations older than a day are stale from now on: a sample collected two days ago, stored while that
    was allowed, is then retried 'late' without waiting a week."""

    def shrink() -> None:
        settings.MUESTRA = {**settings.MUESTRA, "MAX_COLLECTION_AGE_DAYS": 1}

    return shrink


def _two_days_old(code: str):
    return sample_input(client_code=code, collected_at=timezone.now() - timedelta(days=2))


def test_late_lis_retry_with_the_same_content_returns_the_stored_sample(world, collection_age_one_day):
    data = _two_days_old("LATE-1")
    first, created = services.sample_register(actor=world.actors["key_lab_x"], data=data)
    assert created
    collection_age_one_day()
    before = db_state(first.pk)
    again, created = services.sample_register(actor=world.actors["key_lab_x"], data=data)
    assert (again.pk, created) == (first.pk, False)
    assert_unchanged(before, first.pk)


def test_late_lis_retry_with_other_content_keeps_the_age_refusal(world, collection_age_one_day):
    data = _two_days_old("LATE-2")
    services.sample_register(actor=world.actors["key_lab_x"], data=data)
    collection_age_one_day()
    data.sample_type = "saliva"
    before = db_state()
    with pytest.raises(ValidationFailed) as info:
        services.sample_register(actor=world.actors["key_lab_x"], data=data)
    assert [(e.field, e.code) for e in info.value.errors] == [("collected_at", "stale")]
    assert_unchanged(before)


def test_stale_registration_with_a_new_code_or_no_code_is_still_refused(world, collection_age_one_day):
    collection_age_one_day()
    before = db_state()
    for actor, data in (
        (world.actors["key_lab_x"], _two_days_old("NEVER-SEEN")),
        (world.actors["taker_a"], _two_days_old("")),
    ):
        with pytest.raises(ValidationFailed) as info:
            services.sample_register(actor=actor, data=data)
        assert [(e.field, e.code) for e in info.value.errors] == [("collected_at", "stale")]
    assert_unchanged(before)


def test_late_lis_retry_of_a_batch_returns_the_stored_samples_item_by_item(world, collection_age_one_day):
    items = [_two_days_old(f"LATE-B-{i}") for i in range(3)]
    first = services.sample_register_batch(actor=world.actors["key_lab_x"], items=items)
    assert all(o.ok and o.created for o in first)
    collection_age_one_day()
    items[1].sample_type = "saliva"  # changed: its refusal is the age rule, as for any new stale item
    items.append(_two_days_old("LATE-B-new"))
    before = db_state()
    again = services.sample_register_batch(actor=world.actors["key_lab_x"], items=items)
    assert [(o.ok, o.created) for o in again] == [(True, False), (False, False), (True, False), (False, False)]
    assert [again[0].sample.pk, again[2].sample.pk] == [first[0].sample.pk, first[2].sample.pk]
    assert [(e.field, e.code) for e in again[1].errors] == [("collected_at", "stale")]
    assert [(e.field, e.code) for e in again[3].errors] == [("collected_at", "stale")]
    assert_unchanged(before)
