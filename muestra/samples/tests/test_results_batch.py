# mypy: disable-error-code="union-attr"
"""Results by the thousand (`result_deliver_batch`): per item the rules of `result_deliver`, one refused item never
blocks the others, and the writes are done in bulk (a constant number of statements, whatever the batch size)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from muestra.audit.services import audit_verify
from muestra.core.errors import Conflict, IllegalTransition, NotFound, ValidationFailed
from muestra.demo.builders import REPORT, patient_input, sample_in_state, sample_input
from muestra.samples import services
from muestra.samples.models import Channel, Result, Sample, SampleState, ShipmentItem
from muestra.samples.services import ResultItem
from muestra.samples.tests.support import assert_unchanged, db_state, event_kinds

S = SampleState


def state(world, s: str, **kw) -> Sample:
    return sample_in_state(s, taker=world.actors["taker_a"], lab=world.actors["lab_x"], **kw)


def batch(world, items, actor="lab_x"):
    return services.result_deliver_batch(actor=world.actors[actor], items=items, channel=Channel.IMPORT)


def test_each_item_gets_the_outcome_result_deliver_would_give(world):
    received = state(world, S.RECEIVED)
    dispatched = state(world, S.DISPATCHED)
    registered = state(world, S.REGISTERED)
    done = state(world, S.RESULT, result="negative")
    done_other = state(world, S.RESULT, result="negative")
    theirs = sample_in_state(
        S.RECEIVED,
        taker=world.actors["taker_b"],
        lab=world.actors["lab_y"],
        data=sample_input(establishment="105100", laboratory=1000000002),
    )
    needs_report = state(world, S.RECEIVED)
    with_report = state(world, S.RECEIVED)
    future = state(world, S.RECEIVED)
    untouched = (done_other, theirs, needs_report, future)
    before = {s.pk: (Sample.objects.filter(pk=s.pk).values().get(), event_kinds(s)) for s in untouched}
    received_at = timezone.now() - timedelta(minutes=5)

    outcomes = batch(
        world,
        [
            ResultItem(received.pk, "negative", report=REPORT),
            ResultItem(dispatched.pk, "unsatisfactory"),
            ResultItem(registered.pk, "unsatisfactory", received_at=received_at),
            ResultItem(done.pk, "negative"),
            ResultItem(done_other.pk, "positive", report=REPORT),
            ResultItem(theirs.pk, "unsatisfactory"),
            ResultItem(999_999_999, "unsatisfactory"),
            ResultItem(needs_report.pk, "positive"),
            ResultItem(with_report.pk, "positive", report=REPORT),
            ResultItem(future.pk, "unsatisfactory", reported_at=timezone.now() + timedelta(days=1)),
        ],
    )

    assert [o.index for o in outcomes] == list(range(10))
    assert [o.ok for o in outcomes] == [True, True, True, True, False, False, False, False, True, False]
    assert [o.recorded for o in outcomes] == [True, True, True, False, False, False, False, False, True, False]
    assert isinstance(outcomes[4].error, Conflict)
    assert isinstance(outcomes[5].error, NotFound)  # another lab's sample answers like a missing one
    assert isinstance(outcomes[6].error, NotFound)
    assert isinstance(outcomes[7].error, ValidationFailed) and outcomes[7].error.field == "report"
    assert isinstance(outcomes[9].error, ValidationFailed) and outcomes[9].error.field == "reported_at"
    for pk, snapshot in before.items():
        assert (Sample.objects.filter(pk=pk).values().get(), event_kinds(pk)) == snapshot
    # The unchanged retry answers with the stored result.
    assert outcomes[3].result == Result.objects.get(sample=done, version=1)

    for sample in (received, dispatched, registered, with_report):
        sample.refresh_from_db()
        assert sample.state == S.RESULT and sample.result_at is not None
    assert (
        received.result_value.code == "negative"
        and dispatched.result_value.code == "unsatisfactory"
        and with_report.result_value.code == "positive"
    )
    assert event_kinds(received)[-1:] == ["result_delivered"]
    assert event_kinds(dispatched)[-2:] == ["received", "result_delivered"]
    received_event = dispatched.events.get(kind="received")
    assert received_event.data == {"implicit": True} and received_event.channel == Channel.IMPORT
    assert registered.received_at == received_at and registered.events.get(kind="received").data == {}
    stored = Result.objects.get(sample=with_report)
    assert stored.report_sha256 == REPORT.sha256 and stored.report.read() == REPORT.content
    assert audit_verify()[1] is None


def test_the_same_sample_twice_in_a_batch_is_recorded_once(world):
    sample = state(world, S.RECEIVED)
    outcomes = batch(
        world,
        [
            ResultItem(sample.pk, "unsatisfactory"),
            ResultItem(sample.pk, "unsatisfactory"),
            ResultItem(sample.pk, "positive", report=REPORT),
        ],
    )
    assert [(o.ok, o.recorded) for o in outcomes] == [(True, True), (True, False), (False, False)]
    assert outcomes[1].result is outcomes[0].result
    assert isinstance(outcomes[2].error, Conflict)
    assert Result.objects.filter(sample=sample).count() == 1
    assert event_kinds(sample).count("result_delivered") == 1


def test_a_retried_batch_changes_nothing(world):
    samples = [state(world, S.DISPATCHED) for _ in range(3)]
    items = [ResultItem(s.pk, "unsatisfactory") for s in samples]
    assert all(o.recorded for o in batch(world, items))
    before = db_state()
    again = batch(world, items)
    assert all(o.ok and not o.recorded and o.result is not None for o in again)
    assert_unchanged(before)


def test_pools_and_members(world):
    pool_data = sample_input(pool_members=[patient_input() for _ in range(2)], tube_code="POOL-BATCH-1")
    pool_data.patient = None
    pool = state(world, S.RECEIVED, data=pool_data)
    member = Sample.objects.filter(pool=pool).first()
    plain = state(world, S.RECEIVED)
    outcomes = batch(
        world,
        [
            ResultItem(member.pk, "negative", report=REPORT),
            ResultItem(pool.pk, "negative", report=REPORT),
            ResultItem(plain.pk, "unsatisfactory"),
        ],
    )
    assert isinstance(outcomes[0].error, IllegalTransition)
    assert outcomes[1].recorded and outcomes[2].recorded
    assert set(Sample.objects.filter(pool=pool).values_list("state", flat=True)) == {S.RESULT}
    # The pool tube again, now answered from the stored result.
    assert batch(world, [ResultItem(pool.pk, "negative")])[0].recorded is False


def test_a_tube_missing_from_its_box_that_comes_with_its_result_is_received_on_the_manifest(world):
    sample = state(world, S.DISPATCHED)
    ShipmentItem.objects.filter(sample=sample).update(outcome=ShipmentItem.Outcome.MISSING)
    assert batch(world, [ResultItem(sample.pk, "unsatisfactory")])[0].recorded
    assert ShipmentItem.objects.get(sample=sample).outcome == ShipmentItem.Outcome.RECEIVED


def test_answers_are_merged_into_the_sample(world):
    sample = state(world, S.RECEIVED)
    batch(world, [ResultItem(sample.pk, "unsatisfactory", answers={"symptoms": "Y"})])
    sample.refresh_from_db()
    assert sample.answers["symptoms"] == "Y"


def test_writers_only(world):
    sample = state(world, S.RECEIVED)
    outcomes = batch(world, [ResultItem(sample.pk, "unsatisfactory")], actor="taker_b")
    assert isinstance(outcomes[0].error, NotFound)


@pytest.mark.parametrize("n", [3, 30])
def test_statements_do_not_grow_with_the_batch(world, n, django_assert_max_num_queries):
    samples = [state(world, S.DISPATCHED) for _ in range(n)]
    done = [state(world, S.RESULT) for _ in range(n)]
    items = [ResultItem(s.pk, "unsatisfactory") for s in samples] + [ResultItem(s.pk, "negative") for s in done]
    with CaptureQueriesContext(connection) as captured:
        outcomes = batch(world, items)
    assert all(o.ok for o in outcomes)
    # lock, results, samples, shipment items, stored results, events, audit head + entries + head update,
    # transaction: a constant, whatever n.
    assert len(captured) <= 14, "\n".join(q["sql"][:110] for q in captured)


def test_answers_recorded_on_their_own(world):
    sample = state(world, S.RECEIVED)
    _s, recorded = services.sample_answers_record(
        actor=world.actors["lab_x"], sample_id=sample.pk, answers={"fever": "N"}, channel=Channel.HL7
    )
    assert recorded
    assert (
        services.sample_answers_record(
            actor=world.actors["lab_x"], sample_id=sample.pk, answers={"fever": "N"}, channel=Channel.HL7
        )[1]
        is False
    )
    with pytest.raises(NotFound):
        services.sample_answers_record(actor=world.actors["lab_y"], sample_id=sample.pk, answers={"fever": "Y"})
    sample.refresh_from_db()
    assert sample.answers == {"fever": "N"} and event_kinds(sample)[-1] == "edited"
