# mypy: disable-error-code="union-attr"
"""Pooled tubes: one tube, several people. Steps act on the pool and the members follow; a negative pool makes
every member negative, a positive one marks every member "re-test needed", never positive."""

from __future__ import annotations

from dataclasses import replace

import pytest

from muestra.core.errors import IllegalTransition, ValidationFailed
from muestra.demo.builders import REPORT, fresh_run, patient_input, sample_input
from muestra.patients.models import Patient
from muestra.samples import services
from muestra.samples.models import EventKind, Sample, SampleState, Shipment
from muestra.samples.tests.support import assert_unchanged, db_state, event_kinds

S = SampleState
LAB_X = 1000000001


def pool_input(n=3, **kw):
    kw.setdefault("tube_code", f"TUBE-{fresh_run()}")
    data = sample_input(pool_members=[patient_input() for _ in range(n)], **kw)
    data.patient = None  # sample_input() fills in a patient by default
    return data


def register_pool(world, n=3, **kw) -> Sample:
    data = pool_input(n, **kw)
    pool, created = services.sample_register(actor=world.actors["taker_a"], data=data)
    assert created
    return pool


def members(pool: Sample) -> list[Sample]:
    return list(Sample.objects.filter(pool=pool).order_by("pk"))


def ship(world, pool: Sample) -> Shipment:
    shipment = services.shipment_create(
        actor=world.actors["taker_a"], establishment_code="113100", laboratory_id=LAB_X, sample_ids=[pool.pk]
    )
    return services.shipment_dispatch(actor=world.actors["taker_a"], shipment_id=shipment.pk)


@pytest.fixture
def pool(world) -> Sample:
    return register_pool(world)


def test_a_pooled_tube_has_one_sample_per_person(world, pool):
    assert pool.is_pool and pool.patient is None and pool.tube_code.startswith("TUBE-")
    ms = members(pool)
    assert len(ms) == 3
    assert len({m.patient_id for m in ms}) == 3
    for m in ms:
        assert (m.state, m.laboratory_id, m.collected_at, m.test_id) == (
            S.REGISTERED,
            pool.laboratory_id,
            pool.collected_at,
            pool.test_id,
        )
        assert not m.is_pool and m.tube_code is None
        assert event_kinds(m) == [EventKind.REGISTERED]


def test_dispatch_and_receive_act_on_the_pool_and_members_follow(world, pool):
    ship(world, pool)
    assert {m.state for m in members(pool)} == {S.DISPATCHED}
    services.sample_receive(actor=world.actors["lab_x"], sample_id=pool.pk)
    ms = members(pool)
    assert {m.state for m in ms} == {S.RECEIVED}
    assert all(m.received_at is not None for m in ms)
    assert all(event_kinds(m) == [EventKind.REGISTERED, EventKind.DISPATCHED, EventKind.RECEIVED] for m in ms)


def test_negative_pool_makes_every_member_negative(world, pool):
    ship(world, pool)
    services.sample_receive(actor=world.actors["lab_x"], sample_id=pool.pk)
    pool_result, _ = services.result_deliver(
        actor=world.actors["lab_x"], sample_id=pool.pk, value="negative", report=REPORT
    )
    for m in members(pool):
        assert m.state == S.RESULT
        assert m.result_value.code == "negative"
        assert not m.retest_needed
        result = m.results.get()
        assert result.from_pool_result_id == pool_result.pk


@pytest.mark.parametrize("value", ["positive", "indeterminate", "unsatisfactory"])
def test_non_negative_pool_marks_every_member_for_retest_never_positive(world, pool, value):
    ship(world, pool)
    services.result_deliver(
        actor=world.actors["lab_x"], sample_id=pool.pk, value=value, report=REPORT
    )  # implicit receipt from DISPATCHED
    pool.refresh_from_db()
    assert pool.result_value.code == value
    for m in members(pool):
        assert m.state == S.RESULT
        assert m.retest_needed is True
        assert m.result_value.code == "retest-needed"
        assert m.result_value.interpretation == "retest"
        assert not m.results.filter(value__code="positive").exists()
        assert event_kinds(m)[-2:] == [EventKind.RECEIVED, EventKind.RESULT_DELIVERED]


def test_correcting_a_pool_result_fans_out_again(world, pool):
    ship(world, pool)
    services.result_deliver(actor=world.actors["lab_x"], sample_id=pool.pk, value="negative", report=REPORT)
    services.result_correct(
        actor=world.actors["lab_x"],
        sample_id=pool.pk,
        value="positive",
        reason="swap",
        report=services.ReportFile(b"%PDF corrected"),
    )
    for m in members(pool):
        assert m.retest_needed and m.result_value.code == "retest-needed"
        assert list(m.results.values_list("version", "value__code")) == [(1, "negative"), (2, "retest-needed")]
        assert event_kinds(m)[-1] == EventKind.RESULT_CORRECTED


def test_rejecting_or_cancelling_the_pool_takes_the_members_along(world):
    one = register_pool(world)
    services.sample_cancel(actor=world.actors["taker_a"], sample_id=one.pk, reason="broken tube")
    assert {m.state for m in members(one)} == {S.CANCELLED}
    two = register_pool(world)
    ship(world, two)
    services.sample_reject(actor=world.actors["lab_x"], sample_id=two.pk, reason="spilled")
    assert {(m.state, m.rejection_reason.code) for m in members(two)} == {(S.REJECTED, "spilled")}


MEMBER_STEPS = {
    "receive": lambda w, m: services.sample_receive(actor=w.actors["lab_x"], sample_id=m.pk),
    "reject": lambda w, m: services.sample_reject(actor=w.actors["lab_x"], sample_id=m.pk, reason="spilled"),
    "return": lambda w, m: services.sample_return(actor=w.actors["lab_x"], sample_id=m.pk),
    "forward": lambda w, m: services.sample_forward(actor=w.actors["lab_x"], sample_id=m.pk, new_laboratory=1000000002),
    "deliver": lambda w, m: services.result_deliver(
        actor=w.actors["lab_x"], sample_id=m.pk, value="negative", report=REPORT
    ),
    "correct": lambda w, m: services.result_correct(
        actor=w.actors["lab_x"], sample_id=m.pk, value="positive", reason="x", report=REPORT
    ),
    "cancel": lambda w, m: services.sample_cancel(actor=w.actors["taker_a"], sample_id=m.pk, reason="x"),
    "edit": lambda w, m: services.sample_update(
        actor=w.actors["taker_a"], sample_id=m.pk, changes={"surveillance_number": "1"}
    ),
}


@pytest.mark.parametrize("step", list(MEMBER_STEPS))
def test_acting_on_a_member_directly_is_refused(world, step):
    pool = register_pool(world)
    ship(world, pool)
    if step == "correct":
        services.result_deliver(actor=world.actors["lab_x"], sample_id=pool.pk, value="negative", report=REPORT)
    member = members(pool)[0]
    before = db_state(member.pk)
    with pytest.raises(IllegalTransition) as info:
        MEMBER_STEPS[step](world, member)
    assert info.value.errors[0].field == "sample"
    assert_unchanged(before, member.pk)


def test_a_member_cannot_be_shipped_on_its_own(world, pool):
    member = members(pool)[0]
    shipment = services.shipment_create(actor=world.actors["taker_a"], establishment_code="113100", laboratory_id=LAB_X)
    [outcome] = services.shipment_add_samples(
        actor=world.actors["taker_a"], shipment_id=shipment.pk, sample_ids=[member.pk]
    )
    assert isinstance(outcome.error, IllegalTransition)
    assert not shipment.items.exists()


def test_the_same_person_twice_in_one_pool_is_refused(world):
    run = fresh_run()
    body, dv = run.split("-")
    dotted = f"{int(body):,}".replace(",", ".") + f"-{dv.lower()}"
    data = sample_input(patient=None, pool_members=[patient_input(run=run), patient_input(), patient_input(run=dotted)])
    data.patient = None
    before = db_state()
    with pytest.raises(ValidationFailed) as info:
        services.sample_register(actor=world.actors["taker_a"], data=data)
    assert ("pool_members", "duplicate") in {(e.field, e.code) for e in info.value.errors}
    assert_unchanged(before)


def test_a_pool_lists_members_instead_of_a_patient(world):
    data = pool_input()
    data.patient = patient_input()
    with pytest.raises(ValidationFailed) as info:
        services.sample_register(actor=world.actors["taker_a"], data=data)
    assert ("patient", "not_allowed") in {(e.field, e.code) for e in info.value.errors}


def test_a_test_that_may_not_be_pooled_is_refused(world):
    data = pool_input(test="mpox-pcr", sample_type="lesion-swab")
    before = db_state()
    with pytest.raises(ValidationFailed) as info:
        services.sample_register(actor=world.actors["taker_a"], data=data)
    assert ("pool_members", "not_allowed") in {(e.field, e.code) for e in info.value.errors}
    assert_unchanged(before)


def test_a_bad_member_names_its_position(world):
    data = pool_input()
    data.pool_members[1] = replace(data.pool_members[1], phone=".")
    with pytest.raises(ValidationFailed) as info:
        services.sample_register(actor=world.actors["taker_a"], data=data)
    assert [e.field for e in info.value.errors] == ["pool_members[1].phone"]


def test_a_tube_barcode_is_used_once(world, pool):
    data = pool_input(tube_code=pool.tube_code)
    before = db_state()
    with pytest.raises(services.Conflict) as info:
        services.sample_register(actor=world.actors["taker_a"], data=data)
    assert info.value.errors[0].field == "tube_code"
    assert_unchanged(before)


def test_a_known_person_in_a_pool_reuses_their_patient(world):
    run = fresh_run()
    single, _ = services.sample_register(
        actor=world.actors["taker_a"], data=sample_input(patient=patient_input(run=run))
    )
    data = sample_input(patient=None, pool_members=[patient_input(run=run), patient_input()])
    data.patient = None
    pool, _ = services.sample_register(actor=world.actors["taker_a"], data=data)
    assert single.patient_id in {m.patient_id for m in members(pool)}
    assert Patient.objects.filter(document_number=run).count() == 1


def test_pools_in_a_batch_are_registered_exactly(world):
    data = pool_input()
    outcomes = services.sample_register_batch(actor=world.actors["taker_a"], items=[data, sample_input()])
    assert all(o.ok for o in outcomes)
    assert outcomes[0].sample is not None
    assert len(members(outcomes[0].sample)) == 3
