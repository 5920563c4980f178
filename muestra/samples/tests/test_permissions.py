# mypy: disable-error-code="union-attr"
"""Who may act on a sample. The wrong lab is refused: 404 when it cannot see the sample at all (exactly like a
missing record), 403 when it can see it (e.g. it created it through its LIS and then forwarded it). Authority
viewers and citizens never write. A refusal changes nothing."""

from __future__ import annotations

import pytest

from muestra.core.errors import NotFound, PermissionDenied
from muestra.demo.builders import REPORT, sample_in_state, sample_input
from muestra.samples import services
from muestra.samples.models import Sample, SampleState
from muestra.samples.tests.support import assert_unchanged, db_state

S = SampleState
LAB_X, LAB_Y = 1000000001, 1000000002

LAB_STEPS = {
    "receive": lambda a, s: services.sample_receive(actor=a, sample_id=s.pk),
    "receive_many": lambda a, s: _raise_first(services.samples_receive(actor=a, sample_ids=[s.pk])),
    "reject": lambda a, s: services.sample_reject(actor=a, sample_id=s.pk, reason="spilled"),
    "return": lambda a, s: services.sample_return(actor=a, sample_id=s.pk),
    "forward": lambda a, s: services.sample_forward(actor=a, sample_id=s.pk, new_laboratory=LAB_X),
    "deliver": lambda a, s: services.result_deliver(actor=a, sample_id=s.pk, value="negative", report=REPORT),
}


def _raise_first(outcomes):
    if outcomes[0].error is not None:
        raise outcomes[0].error
    return outcomes


def _sample_of_a_for_x(world, state=S.DISPATCHED) -> Sample:
    return sample_in_state(state, taker=world.actors["taker_a"], lab=world.actors["lab_x"])


@pytest.mark.parametrize("step", list(LAB_STEPS))
def test_a_lab_that_cannot_see_the_sample_gets_not_found(world, step):
    sample = _sample_of_a_for_x(world)
    before = db_state(sample.pk)
    for who in ("lab_y", "key_lab_y"):
        with pytest.raises(NotFound) as info:
            LAB_STEPS[step](world.actors[who], sample)
        assert info.value.status == 404
    assert_unchanged(before, sample.pk)


def test_a_missing_sample_and_an_invisible_one_look_the_same(world):
    sample = _sample_of_a_for_x(world)
    with pytest.raises(NotFound) as invisible:
        services.sample_receive(actor=world.actors["lab_y"], sample_id=sample.pk)
    with pytest.raises(NotFound) as missing:
        services.sample_receive(actor=world.actors["lab_y"], sample_id=sample.pk + 10_000)
    assert invisible.value.as_dict() == missing.value.as_dict()


@pytest.mark.parametrize("who", ["lab_y", "key_lab_y"])
def test_wrong_lab_cannot_correct_a_result(world, who):
    sample = _sample_of_a_for_x(world, S.RESULT)
    before = db_state(sample.pk)
    with pytest.raises(NotFound):
        services.result_correct(
            actor=world.actors[who], sample_id=sample.pk, value="positive", reason="x", report=REPORT
        )
    assert_unchanged(before, sample.pk)


@pytest.fixture
def created_by_y_forwarded_to_x(world) -> Sample:
    """Lab Y's LIS created a sample of establishment B and forwarded it to lab X: Y still sees it (its own code)."""
    sample, _ = services.sample_register(
        actor=world.actors["key_lab_y"],
        data=sample_input(establishment="105100", laboratory=LAB_Y, client_code="Y-0001"),
    )
    assert sample.state == S.DISPATCHED
    services.sample_forward(actor=world.actors["key_lab_y"], sample_id=sample.pk, new_laboratory=LAB_X)
    sample.refresh_from_db()
    assert sample.laboratory.platform_id == LAB_X
    return sample


@pytest.mark.parametrize("step", ["receive", "reject", "deliver"])
@pytest.mark.parametrize("who", ["lab_y", "key_lab_y"])
def test_a_lab_that_sees_the_sample_but_is_not_assigned_gets_permission_denied(
    world, created_by_y_forwarded_to_x, step, who
):
    sample = created_by_y_forwarded_to_x
    before = db_state(sample.pk)
    with pytest.raises(PermissionDenied) as info:
        LAB_STEPS[step](world.actors[who], sample)
    assert info.value.status == 403
    assert info.value.code == "wrong_laboratory"
    assert_unchanged(before, sample.pk)


def test_not_assigned_lab_cannot_return_or_forward_after_receipt(world, created_by_y_forwarded_to_x):
    sample = created_by_y_forwarded_to_x
    services.sample_receive(actor=world.actors["lab_x"], sample_id=sample.pk)
    before = db_state(sample.pk)
    with pytest.raises(PermissionDenied):
        services.sample_return(actor=world.actors["key_lab_y"], sample_id=sample.pk)
    with pytest.raises(PermissionDenied):
        services.sample_forward(actor=world.actors["key_lab_y"], sample_id=sample.pk, new_laboratory=LAB_Y)
    assert_unchanged(before, sample.pk)


def test_not_assigned_lab_cannot_correct_a_result_it_can_see(world, created_by_y_forwarded_to_x):
    sample = created_by_y_forwarded_to_x
    services.result_deliver(actor=world.actors["lab_x"], sample_id=sample.pk, value="negative", report=REPORT)
    before = db_state(sample.pk)
    with pytest.raises(PermissionDenied):
        services.result_correct(
            actor=world.actors["key_lab_y"], sample_id=sample.pk, value="positive", reason="x", report=REPORT
        )
    assert_unchanged(before, sample.pk)


def test_the_new_lab_receives_a_forwarded_sample(world, created_by_y_forwarded_to_x):
    sample, recorded = services.sample_receive(
        actor=world.actors["key_lab_x"], sample_id=created_by_y_forwarded_to_x.pk
    )
    assert recorded and sample.state == S.RECEIVED


#: Who may not take lab steps, and how they are refused: those who see the sample get 403, the others 404.
NOT_THE_LAB = {
    "taker_a": PermissionDenied,
    "manager_a": PermissionDenied,
    "key_est_a": PermissionDenied,
    "viewer_rm": PermissionDenied,  # reads region 13, writes nothing
    "citizen": NotFound,
    "taker_b": NotFound,
}


@pytest.mark.parametrize("step", list(LAB_STEPS))
def test_only_the_lab_takes_lab_steps(world, step):
    sample = _sample_of_a_for_x(world)
    before = db_state(sample.pk)
    for who, refusal in NOT_THE_LAB.items():
        with pytest.raises(refusal):
            LAB_STEPS[step](world.actors[who], sample)
    assert_unchanged(before, sample.pk)


ESTABLISHMENT_WRITES = {
    "edit": lambda a, s: services.sample_update(actor=a, sample_id=s.pk, changes={"surveillance_number": "1"}),
    "cancel": lambda a, s: services.sample_cancel(actor=a, sample_id=s.pk, reason="x"),
    "ship": lambda a, s: services.shipment_create(
        actor=a, establishment_code="113100", laboratory_id=LAB_X, sample_ids=[s.pk]
    ),
}


@pytest.mark.parametrize("step", list(ESTABLISHMENT_WRITES))
def test_outsiders_cannot_edit_cancel_or_ship(world, step):
    sample = _sample_of_a_for_x(world, S.REGISTERED)
    before = db_state(sample.pk)
    for who in ("viewer_rm", "citizen", "taker_b", "lab_y"):
        with pytest.raises((PermissionDenied, NotFound, services.ValidationFailed)) as info:
            ESTABLISHMENT_WRITES[step](world.actors[who], sample)
        if who in {"viewer_rm", "citizen"}:
            assert isinstance(info.value, PermissionDenied), who
    assert_unchanged(before, sample.pk)


def test_the_assigned_lab_cannot_edit_or_cancel_an_establishments_sample(world):
    sample = _sample_of_a_for_x(world, S.REGISTERED)
    before = db_state(sample.pk)
    with pytest.raises(PermissionDenied):
        services.sample_update(actor=world.actors["lab_x"], sample_id=sample.pk, changes={"surveillance_number": "1"})
    with pytest.raises(PermissionDenied):
        services.sample_cancel(actor=world.actors["lab_x"], sample_id=sample.pk, reason="x")
    assert_unchanged(before, sample.pk)


def test_the_lab_that_created_a_sample_may_edit_it_before_receipt(world):
    sample, _ = services.sample_register(actor=world.actors["key_lab_x"], data=sample_input(client_code="X-77"))
    services.sample_update(actor=world.actors["key_lab_x"], sample_id=sample.pk, changes={"surveillance_number": "9"})
    sample.refresh_from_db()
    assert sample.surveillance_number == "9"


def test_manager_and_establishment_key_act_for_their_establishment(world):
    sample = _sample_of_a_for_x(world, S.REGISTERED)
    services.sample_update(actor=world.actors["manager_a"], sample_id=sample.pk, changes={"surveillance_number": "2"})
    services.sample_cancel(actor=world.actors["key_est_a"], sample_id=sample.pk, reason="duplicate")
    sample.refresh_from_db()
    assert (sample.surveillance_number, sample.state) == ("2", S.CANCELLED)


def test_admin_may_act_as_any_lab(world):
    sample = _sample_of_a_for_x(world)
    sample, recorded = services.sample_receive(actor=world.actors["admin"], sample_id=sample.pk)
    assert recorded and sample.state == S.RECEIVED


def test_correction_authorisation_is_for_admins_only(world):
    sample = _sample_of_a_for_x(world, S.RESULT)
    before = db_state(sample.pk)
    for who in ["lab_x", "key_lab_x", "manager_a", "viewer_rm", "citizen", "taker_a"]:
        with pytest.raises(PermissionDenied):
            services.correction_authorise(actor=world.actors[who], sample_id=sample.pk, reason="late fix")
    assert_unchanged(before, sample.pk)
