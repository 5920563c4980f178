# mypy: disable-error-code="union-attr"
"""Shipments (manifests) and the chain of custody: filling, dispatching, receiving a box item by item with missing
and damaged tubes."""

from __future__ import annotations

from typing import Any

import pytest

from muestra.core.errors import IllegalTransition, NotFound, PermissionDenied, ValidationFailed
from muestra.demo.builders import sample_in_state, sample_input
from muestra.samples import services
from muestra.samples.models import EventKind, Sample, SampleState, Shipment, ShipmentItem
from muestra.samples.tests.support import assert_unchanged, db_state, event_kinds

S = SampleState
LAB_X, LAB_Y = 1000000001, 1000000002


def register(world, who="taker_a", **kw) -> Sample:
    return services.sample_register(actor=world.actors[who], data=sample_input(**kw))[0]


def open_shipment(world, who="taker_a", est="113100", lab=LAB_X, sample_ids=()) -> Shipment:
    return services.shipment_create(
        actor=world.actors[who], establishment_code=est, laboratory_id=lab, sample_ids=sample_ids
    )


def items_of(shipment) -> dict[int, str]:
    return dict(ShipmentItem.objects.filter(shipment=shipment).values_list("sample_id", "outcome"))


# --- creating and filling ---------------------------------------------------------------------------------------


def test_samples_of_another_lab_are_refused_per_item(world):
    # Establishment B sends to labs X and Y; a manifest to X takes only the samples addressed to X.
    to_x = register(world, "taker_b", establishment="105100", laboratory=LAB_X)
    to_y = register(world, "taker_b", establishment="105100", laboratory=LAB_Y)
    of_a = register(world, "taker_a")
    shipment = open_shipment(world, "taker_b", est="105100")
    outcomes = services.shipment_add_samples(
        actor=world.actors["taker_b"], shipment_id=shipment.pk, sample_ids=[to_x.pk, to_y.pk, of_a.pk]
    )
    assert outcomes[0].ok and outcomes[0].created
    assert isinstance(outcomes[1].error, ValidationFailed) and outcomes[1].errors[0].field == "sample"
    assert isinstance(outcomes[2].error, NotFound)  # another establishment's sample is invisible to taker B
    assert items_of(shipment) == {to_x.pk: ShipmentItem.Outcome.PENDING}
    to_y.refresh_from_db()
    assert to_y.shipment_id is None


def test_shipment_create_with_an_unacceptable_sample_opens_nothing(world):
    to_x = register(world, "taker_b", establishment="105100", laboratory=LAB_X)
    to_y = register(world, "taker_b", establishment="105100", laboratory=LAB_Y)
    shipments_before = Shipment.objects.count()
    with pytest.raises(ValidationFailed) as refused:
        open_shipment(world, "taker_b", est="105100", sample_ids=[to_x.pk, to_y.pk])
    assert [e.field for e in refused.value.errors] == ["sample_ids[1]"]
    assert Shipment.objects.count() == shipments_before
    assert Sample.objects.get(pk=to_x.pk).shipment_id is None


def test_adding_the_same_sample_twice_is_harmless(world):
    sample = register(world)
    shipment = open_shipment(world, sample_ids=[sample.pk])
    [again] = services.shipment_add_samples(
        actor=world.actors["taker_a"], shipment_id=shipment.pk, sample_ids=[sample.pk]
    )
    assert again.ok and not again.created
    assert list(items_of(shipment)) == [sample.pk]


def test_a_sample_cannot_travel_on_two_manifests(world):
    sample = register(world)
    first = open_shipment(world, sample_ids=[sample.pk])
    second = open_shipment(world)
    before = db_state(sample.pk)
    [outcome] = services.shipment_add_samples(
        actor=world.actors["taker_a"], shipment_id=second.pk, sample_ids=[sample.pk]
    )
    assert outcome.error is not None and outcome.errors[0].field == "sample"
    assert_unchanged(before, sample.pk)
    # Once taken off the first manifest it may go on another.
    services.shipment_remove_sample(actor=world.actors["taker_a"], shipment_id=first.pk, sample_id=sample.pk)
    [outcome] = services.shipment_add_samples(
        actor=world.actors["taker_a"], shipment_id=second.pk, sample_ids=[sample.pk]
    )
    assert outcome.ok


def test_shipment_to_a_lab_not_assigned_is_refused(world):
    before = db_state()
    with pytest.raises(ValidationFailed) as info:
        open_shipment(world, lab=LAB_Y)
    assert info.value.errors[0].field == "laboratory"
    assert_unchanged(before)


def test_shipment_for_another_establishment_is_refused(world):
    with pytest.raises(ValidationFailed) as info:
        open_shipment(world, "taker_a", est="105100")
    assert info.value.errors[0].field == "establishment"


def test_labs_and_viewers_cannot_fill_a_shipment(world):
    shipment = open_shipment(world)
    sample = register(world)
    with pytest.raises(PermissionDenied):
        services.shipment_add_samples(actor=world.actors["lab_x"], shipment_id=shipment.pk, sample_ids=[sample.pk])
    with pytest.raises(PermissionDenied):
        services.shipment_add_samples(actor=world.actors["viewer_rm"], shipment_id=shipment.pk, sample_ids=[sample.pk])
    with pytest.raises(NotFound):
        services.shipment_add_samples(actor=world.actors["taker_b"], shipment_id=shipment.pk, sample_ids=[sample.pk])


# --- dispatching ---------------------------------------------------------------------------------------------------


def test_dispatching_an_empty_shipment_is_refused(world):
    shipment = open_shipment(world)
    before = db_state()
    with pytest.raises(ValidationFailed) as info:
        services.shipment_dispatch(actor=world.actors["taker_a"], shipment_id=shipment.pk)
    assert info.value.errors[0].field == "samples"
    assert_unchanged(before)
    shipment.refresh_from_db()
    assert shipment.state == Shipment.State.OPEN


def test_dispatch_moves_every_sample_to_dispatched(world):
    samples = [register(world) for _ in range(3)]
    shipment = open_shipment(world, sample_ids=[s.pk for s in samples])
    shipment = services.shipment_dispatch(actor=world.actors["taker_a"], shipment_id=shipment.pk)
    assert shipment.state == Shipment.State.DISPATCHED and shipment.dispatched_at is not None
    for s in samples:
        s.refresh_from_db()
        assert s.state == S.DISPATCHED and s.shipment_id == shipment.pk
        event = s.events.get(kind=EventKind.DISPATCHED)
        assert event.data == {"shipment": shipment.number}
        assert (event.from_state, event.to_state) == (S.REGISTERED, S.DISPATCHED)


def test_a_dispatched_shipment_is_closed(world):
    sample = register(world)
    shipment = open_shipment(world, sample_ids=[sample.pk])
    services.shipment_dispatch(actor=world.actors["taker_a"], shipment_id=shipment.pk)
    other = register(world)
    with pytest.raises(IllegalTransition):
        services.shipment_add_samples(actor=world.actors["taker_a"], shipment_id=shipment.pk, sample_ids=[other.pk])
    with pytest.raises(IllegalTransition):
        services.shipment_remove_sample(actor=world.actors["taker_a"], shipment_id=shipment.pk, sample_id=sample.pk)


def test_only_the_sending_establishment_dispatches(world):
    shipment = open_shipment(world, sample_ids=[register(world).pk])
    with pytest.raises(NotFound):
        services.shipment_dispatch(actor=world.actors["lab_y"], shipment_id=shipment.pk)
    with pytest.raises(PermissionDenied):
        services.shipment_dispatch(actor=world.actors["lab_x"], shipment_id=shipment.pk)
    with pytest.raises(PermissionDenied):
        services.shipment_dispatch(actor=world.actors["viewer_rm"], shipment_id=shipment.pk)


# --- receiving a box -----------------------------------------------------------------------------------------------


@pytest.fixture
def box(world):
    samples = [register(world) for _ in range(4)]
    shipment = open_shipment(world, sample_ids=[s.pk for s in samples])
    services.shipment_dispatch(actor=world.actors["taker_a"], shipment_id=shipment.pk)
    return shipment, samples


def test_receiving_a_box_with_one_missing_and_one_damaged_tube(world, box):
    shipment, (ok1, ok2, damaged, missing) = box
    receipt = services.shipment_receive(
        actor=world.actors["lab_x"],
        shipment_id=shipment.pk,
        received_sample_ids=[ok1.pk, ok2.pk, 10**9],
        damaged_sample_ids=[damaged.pk],
        damage_reason="tube cracked",
    )
    assert sorted(receipt.received) == sorted([ok1.pk, ok2.pk])
    assert receipt.damaged == [damaged.pk] and receipt.missing == [missing.pk]
    assert receipt.unexpected == [10**9]
    shipment.refresh_from_db()
    assert shipment.state == Shipment.State.RECEIVED and shipment.received_at is not None

    for s in (ok1, ok2):
        s.refresh_from_db()
        assert s.state == S.RECEIVED and s.received_at is not None
    damaged.refresh_from_db()
    assert damaged.state == S.REJECTED and damaged.rejection_reason.code == "spilled"
    assert event_kinds(damaged)[-2:] == [EventKind.REJECTED, EventKind.DAMAGED]
    assert damaged.events.get(kind=EventKind.DAMAGED).reason == "tube cracked"
    missing.refresh_from_db()
    assert missing.state == S.DISPATCHED
    assert event_kinds(missing)[-1] == EventKind.MISSING
    assert items_of(shipment) == {
        ok1.pk: ShipmentItem.Outcome.RECEIVED,
        ok2.pk: ShipmentItem.Outcome.RECEIVED,
        damaged.pk: ShipmentItem.Outcome.DAMAGED,
        missing.pk: ShipmentItem.Outcome.MISSING,
    }

    # The missing tube turns up later: it can still be received, and the manifest says so.
    _s, recorded = services.sample_receive(actor=world.actors["lab_x"], sample_id=missing.pk)
    assert recorded
    missing.refresh_from_db()
    assert missing.state == S.RECEIVED
    assert items_of(shipment)[missing.pk] == ShipmentItem.Outcome.RECEIVED


def test_a_missing_tube_can_be_scanned_into_the_same_box_later(world, box):
    shipment, samples = box
    services.shipment_receive(
        actor=world.actors["lab_x"], shipment_id=shipment.pk, received_sample_ids=[s.pk for s in samples[:3]]
    )
    before_events = event_kinds(samples[0])
    receipt = services.shipment_receive(
        actor=world.actors["lab_x"], shipment_id=shipment.pk, received_sample_ids=[s.pk for s in samples]
    )
    assert receipt.received == [samples[3].pk]
    assert sorted(receipt.already_received) == sorted(s.pk for s in samples[:3])
    assert receipt.missing == []
    assert event_kinds(samples[0]) == before_events  # no second receipt


def test_receiving_the_same_box_twice_is_harmless(world, box):
    shipment, samples = box
    kwargs: dict[str, Any] = {"received_sample_ids": [s.pk for s in samples[:3]], "damaged_sample_ids": [samples[3].pk]}
    services.shipment_receive(actor=world.actors["lab_x"], shipment_id=shipment.pk, **kwargs)
    counts = dict(db_state().counts)
    receipt = services.shipment_receive(actor=world.actors["lab_x"], shipment_id=shipment.pk, **kwargs)
    assert receipt.received == [] and receipt.missing == []
    after = dict(db_state().counts)
    assert after["events"] == counts["events"]


def test_a_tube_with_a_result_cannot_be_declared_damaged_afterwards(world, box):
    shipment, samples = box
    services.shipment_receive(
        actor=world.actors["lab_x"], shipment_id=shipment.pk, received_sample_ids=[s.pk for s in samples]
    )
    services.result_deliver(actor=world.actors["lab_x"], sample_id=samples[0].pk, value="unsatisfactory")
    before = db_state(samples[0].pk)
    with pytest.raises(IllegalTransition):
        services.shipment_receive(
            actor=world.actors["lab_x"],
            shipment_id=shipment.pk,
            received_sample_ids=[],
            damaged_sample_ids=[samples[0].pk],
        )
    assert_unchanged(before, samples[0].pk)


def test_wrong_lab_cannot_receive_the_shipment(world, box):
    shipment, samples = box
    before = db_state()
    with pytest.raises(NotFound):
        services.shipment_receive(
            actor=world.actors["lab_y"], shipment_id=shipment.pk, received_sample_ids=[s.pk for s in samples]
        )
    with pytest.raises(NotFound):
        services.shipment_receive(
            actor=world.actors["key_lab_y"], shipment_id=shipment.pk, received_sample_ids=[s.pk for s in samples]
        )
    # The sender sees the shipment but is not the lab: forbidden.
    with pytest.raises(PermissionDenied) as info:
        services.shipment_receive(
            actor=world.actors["taker_a"], shipment_id=shipment.pk, received_sample_ids=[s.pk for s in samples]
        )
    assert info.value.code == "wrong_laboratory"
    assert_unchanged(before)


def test_an_open_shipment_cannot_be_received(world):
    sample = register(world)
    shipment = open_shipment(world, sample_ids=[sample.pk])
    with pytest.raises(IllegalTransition):
        services.shipment_receive(actor=world.actors["lab_x"], shipment_id=shipment.pk, received_sample_ids=[sample.pk])


def test_everyone_can_follow_where_a_sample_is(world, box):
    shipment, samples = box
    services.shipment_receive(
        actor=world.actors["lab_x"], shipment_id=shipment.pk, received_sample_ids=[s.pk for s in samples]
    )
    chain = list(samples[0].events.order_by("id").values_list("kind", "from_state", "to_state"))
    assert chain == [
        (EventKind.REGISTERED, "", S.REGISTERED),
        (EventKind.DISPATCHED, S.REGISTERED, S.DISPATCHED),
        (EventKind.RECEIVED, S.DISPATCHED, S.RECEIVED),
    ]


def test_cancelled_sample_in_an_open_shipment_is_not_dispatched(world):
    keep, drop = register(world), register(world)
    shipment = open_shipment(world, sample_ids=[keep.pk, drop.pk])
    services.sample_cancel(actor=world.actors["taker_a"], sample_id=drop.pk, reason="mislabelled")
    services.shipment_dispatch(actor=world.actors["taker_a"], shipment_id=shipment.pk)
    drop.refresh_from_db()
    assert drop.state == S.CANCELLED
    keep.refresh_from_db()
    assert keep.state == S.DISPATCHED


def test_sample_in_state_builds_a_real_chain(world):
    sample = sample_in_state(S.RESULT, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    assert event_kinds(sample) == [
        EventKind.REGISTERED,
        EventKind.DISPATCHED,
        EventKind.RECEIVED,
        EventKind.RESULT_DELIVERED,
    ]
