# mypy: disable-error-code="union-attr"
"""The full step x state matrix: every step of `states.Step` tried on a sample in every `SampleState`.

Each cell either succeeds (right new state, right events), is a harmless repeat (nothing written, no error), or
raises IllegalTransition and leaves the database exactly as it was: the sample's fields, its events, results,
shipments and the audit trail.
"""

from __future__ import annotations

from typing import Any

import pytest

from muestra.core.errors import IllegalTransition
from muestra.demo.builders import REPORT, sample_in_state
from muestra.samples import services
from muestra.samples.models import EventKind, Sample, SampleState, Shipment
from muestra.samples.states import ALLOWED_FROM, Step
from muestra.samples.tests.support import assert_unchanged, db_state, event_kinds

S = SampleState
E = EventKind
LAB_Y = 1000000002

OK, NOOP, ILLEGAL = "ok", "noop", "illegal"

# The life cycle written out by hand from the brief, independent of states.ALLOWED_FROM:
# (step, state) -> (outcome, state afterwards, events recorded). Cells not listed are illegal.
EXPECTED: dict[tuple[Step, str], tuple[str, str | None, list[str]]] = {
    (Step.EDIT, S.REGISTERED): (OK, S.REGISTERED, [E.EDITED]),
    (Step.EDIT, S.DISPATCHED): (OK, S.DISPATCHED, [E.EDITED]),
    (Step.CANCEL, S.REGISTERED): (OK, S.CANCELLED, [E.CANCELLED]),
    (Step.CANCEL, S.CANCELLED): (NOOP, S.CANCELLED, []),
    (Step.DISPATCH, S.REGISTERED): (OK, S.DISPATCHED, [E.DISPATCHED]),
    (Step.RECEIVE, S.REGISTERED): (OK, S.RECEIVED, [E.RECEIVED]),
    (Step.RECEIVE, S.DISPATCHED): (OK, S.RECEIVED, [E.RECEIVED]),
    (Step.RECEIVE, S.RECEIVED): (NOOP, S.RECEIVED, []),
    (Step.RECEIVE, S.RESULT): (NOOP, S.RESULT, []),
    (Step.REJECT, S.REGISTERED): (OK, S.REJECTED, [E.REJECTED]),
    (Step.REJECT, S.DISPATCHED): (OK, S.REJECTED, [E.REJECTED]),
    (Step.REJECT, S.RECEIVED): (OK, S.REJECTED, [E.REJECTED]),
    (Step.RETURN, S.DISPATCHED): (OK, S.RETURNED, [E.RETURNED]),
    (Step.RETURN, S.RECEIVED): (OK, S.RETURNED, [E.RETURNED]),
    (Step.RETURN, S.RETURNED): (NOOP, S.RETURNED, []),
    (Step.FORWARD, S.DISPATCHED): (OK, S.DISPATCHED, [E.FORWARDED]),
    (Step.FORWARD, S.RECEIVED): (OK, S.DISPATCHED, [E.FORWARDED]),
    # The assigned lab's result implies its receipt.
    (Step.DELIVER_RESULT, S.REGISTERED): (OK, S.RESULT, [E.RECEIVED, E.RESULT_DELIVERED]),
    (Step.DELIVER_RESULT, S.DISPATCHED): (OK, S.RESULT, [E.RECEIVED, E.RESULT_DELIVERED]),
    (Step.DELIVER_RESULT, S.RECEIVED): (OK, S.RESULT, [E.RESULT_DELIVERED]),
    (Step.DELIVER_RESULT, S.RESULT): (NOOP, S.RESULT, []),  # the same result again, from a retrying LIS
    (Step.CORRECT_RESULT, S.RESULT): (OK, S.RESULT, [E.RESULT_CORRECTED]),
}


def expected(step: Step, state: str) -> tuple[str, str | None, list[str]]:
    return EXPECTED.get((step, state), (ILLEGAL, None, []))


def _dispatch(world: Any, sample: Sample, shipment: Shipment) -> Any:
    """DISPATCH is done through a shipment; a refused item comes back as the outcome's error."""
    [outcome] = services.shipment_add_samples(
        actor=world.actors["taker_a"], shipment_id=shipment.pk, sample_ids=[sample.pk]
    )
    if outcome.error is not None:
        raise outcome.error
    return services.shipment_dispatch(actor=world.actors["taker_a"], shipment_id=shipment.pk)


STEP_CALLS = {
    Step.EDIT: lambda w, s, _shipment: services.sample_update(
        actor=w.actors["taker_a"], sample_id=s.pk, changes={"surveillance_number": "EPI-42"}
    ),
    Step.CANCEL: lambda w, s, _shipment: services.sample_cancel(
        actor=w.actors["taker_a"], sample_id=s.pk, reason="error"
    ),
    Step.DISPATCH: _dispatch,
    Step.RECEIVE: lambda w, s, _shipment: services.sample_receive(actor=w.actors["lab_x"], sample_id=s.pk),
    # A different reason than the one sample_in_state used, so REJECTED -> REJECTED is not a plain repeat.
    Step.REJECT: lambda w, s, _shipment: services.sample_reject(
        actor=w.actors["lab_x"], sample_id=s.pk, reason="spilled"
    ),
    Step.RETURN: lambda w, s, _shipment: services.sample_return(
        actor=w.actors["lab_x"], sample_id=s.pk, reason="capacity"
    ),
    Step.FORWARD: lambda w, s, _shipment: services.sample_forward(
        actor=w.actors["lab_x"], sample_id=s.pk, new_laboratory=LAB_Y
    ),
    Step.DELIVER_RESULT: lambda w, s, _shipment: services.result_deliver(
        actor=w.actors["lab_x"], sample_id=s.pk, value="negative", report=REPORT
    ),
    Step.CORRECT_RESULT: lambda w, s, _shipment: services.result_correct(
        actor=w.actors["lab_x"], sample_id=s.pk, value="positive", reason="transcription error", report=REPORT
    ),
}


def test_the_hand_written_table_matches_states_py():
    """Every cell the brief calls legal is in ALLOWED_FROM and vice versa (repeats aside)."""
    for step in Step:
        legal = {state for state in S if expected(step, state)[0] == OK}
        assert legal == set(ALLOWED_FROM[step]), step


def test_every_step_and_state_is_covered():
    assert set(STEP_CALLS) == set(Step)


@pytest.mark.parametrize("state", list(S), ids=str)
@pytest.mark.parametrize("step", list(Step), ids=str)
def test_step_from_state(world, step, state):
    sample = sample_in_state(state, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    # An open manifest for DISPATCH, made before the snapshot (opening it is a change of its own).
    shipment = None
    if step == Step.DISPATCH:
        shipment = services.shipment_create(
            actor=world.actors["taker_a"], establishment_code="113100", laboratory_id=1000000001
        )
    outcome, to_state, kinds = expected(step, state)
    events_before = event_kinds(sample)
    before = db_state(sample.pk)

    if outcome == ILLEGAL:
        with pytest.raises(IllegalTransition) as info:
            STEP_CALLS[step](world, sample, shipment)
        assert info.value.status == 409
        assert info.value.code == "illegal_transition"
        assert_unchanged(before, sample.pk)
        return

    STEP_CALLS[step](world, sample, shipment)
    sample.refresh_from_db()
    assert sample.state == to_state
    new_events = event_kinds(sample)[len(events_before) :]
    assert new_events == kinds
    if outcome == NOOP:
        assert_unchanged(before, sample.pk)
        return
    # Each new event records where the sample came from and went to, and the audit trail grew with it.
    events = list(sample.events.order_by("-id")[: len(kinds)])[::-1]
    assert events[0].from_state == state
    assert events[-1].to_state == to_state
    after = dict(db_state(sample.pk).counts)
    assert after["audit"] >= dict(before.counts)["audit"] + len(kinds)
    if step == Step.FORWARD:
        assert sample.laboratory.platform_id == LAB_Y
        assert sample.received_at is None
    if step == Step.CORRECT_RESULT:
        assert sample.result_value.code == "positive"
        assert list(sample.results.values_list("version", flat=True)) == [1, 2]
    if step == Step.EDIT:
        assert sample.surveillance_number == "EPI-42"
