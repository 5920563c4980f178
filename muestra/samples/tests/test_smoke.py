from __future__ import annotations

import pytest

from muestra.core.errors import IllegalTransition
from muestra.demo.builders import REPORT, sample_in_state, sample_input
from muestra.samples import services
from muestra.samples.models import SampleState


@pytest.mark.parametrize("state", [s for s in SampleState])
def test_every_state_is_reachable(world, state):
    sample = sample_in_state(state, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    assert sample.state == state


def test_result_twice_same_is_harmless(world):
    sample = sample_in_state(SampleState.RECEIVED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    _r, recorded = services.result_deliver(
        actor=world.actors["lab_x"], sample_id=sample.pk, value="negative", report=REPORT
    )
    assert recorded
    _r, recorded = services.result_deliver(
        actor=world.actors["lab_x"], sample_id=sample.pk, value="negative", report=REPORT
    )
    assert not recorded
    assert sample.events.filter(kind="result_delivered").count() == 1


def test_batch(world):
    items = [sample_input() for _ in range(5)]
    items[2].collected_at = None
    outcomes = services.sample_register_batch(actor=world.actors["taker_a"], items=items)
    assert [o.ok for o in outcomes] == [True, True, False, True, True]


def test_cancel_after_dispatch_is_illegal(world):
    sample = sample_in_state(SampleState.DISPATCHED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    with pytest.raises(IllegalTransition):
        services.sample_cancel(actor=world.actors["taker_a"], sample_id=sample.pk, reason="x")
