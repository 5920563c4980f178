# mypy: disable-error-code="union-attr"
"""Results: the signed report, the result time, corrections (once within the window, later only with an
administrator's authorisation, each authorisation used once) and the full history of versions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from muestra.core.errors import IllegalTransition, PermissionDenied, ValidationFailed
from muestra.demo.builders import REPORT, sample_in_state
from muestra.samples import services
from muestra.samples.models import CorrectionAuthorization, EventKind, Result, Sample, SampleState
from muestra.samples.tests.support import assert_unchanged, db_state, event_kinds

S = SampleState


@pytest.fixture
def received(world) -> Sample:
    return sample_in_state(S.RECEIVED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])


@pytest.fixture
def with_result(world) -> Sample:
    return sample_in_state(S.RESULT, taker=world.actors["taker_a"], lab=world.actors["lab_x"], result="negative")


def deliver(world, sample, value="negative", **kw):
    return services.result_deliver(actor=world.actors["lab_x"], sample_id=sample.pk, value=value, **kw)


def correct(world, sample, value, **kw):
    kw.setdefault("reason", "transcription error")
    kw.setdefault("report", services.ReportFile(f"%PDF corrected {value} {timezone.now()}".encode()))
    return services.result_correct(actor=world.actors["lab_x"], sample_id=sample.pk, value=value, **kw)


def age_first_result(sample: Sample, days: float) -> None:
    """Moves the first delivery into the past (Result.save refuses updates, a queryset update does not)."""
    Result.objects.filter(sample=sample, version=1).update(entered_at=timezone.now() - timedelta(days=days))


# --- delivery --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["negative", "positive", "indeterminate"])
def test_report_is_required(world, received, value):
    before = db_state(received.pk)
    with pytest.raises(ValidationFailed) as info:
        deliver(world, received, value)
    assert info.value.errors[0].field == "report"
    assert_unchanged(before, received.pk)


def test_unsatisfactory_needs_no_report(world, received):
    result, recorded = deliver(world, received, "Muestra no apta")
    assert recorded and result.value.code == "unsatisfactory" and not result.report
    received.refresh_from_db()
    assert received.state == S.RESULT


def test_empty_or_oversized_report_is_refused(world, received, settings):
    before = db_state(received.pk)
    with pytest.raises(ValidationFailed):
        deliver(world, received, report=services.ReportFile(b""))
    settings.MUESTRA = {**settings.MUESTRA, "MAX_REPORT_BYTES": 10}
    with pytest.raises(ValidationFailed):
        deliver(world, received, report=services.ReportFile(b"x" * 11))
    assert_unchanged(before, received.pk)


def test_the_report_is_stored_with_its_hash_and_no_personal_data_in_its_path(world, received):
    result, _ = deliver(world, received, report=REPORT)
    assert result.report_sha256 == REPORT.sha256
    assert result.report.read() == REPORT.content
    patient = received.patient
    for piece in (patient.given_names, patient.paternal_surname, patient.document_number):
        assert piece not in result.report.name


@pytest.mark.parametrize("value", ["retest-needed", "inconclusive", "not-a-result"])
def test_result_must_be_valid_for_the_test(world, received, value):
    # A re-test flag is never delivered by hand; "inconclusive" belongs to antigen tests only.
    before = db_state(received.pk)
    with pytest.raises(ValidationFailed) as info:
        deliver(world, received, value, report=REPORT)
    assert info.value.errors[0].field == "result"
    assert_unchanged(before, received.pk)


def test_result_before_collection_time_is_refused(world, received):
    before = db_state(received.pk)
    with pytest.raises(ValidationFailed) as info:
        deliver(world, received, report=REPORT, reported_at=received.collected_at - timedelta(minutes=1))
    assert info.value.errors[0].field == "reported_at"
    with pytest.raises(ValidationFailed):
        deliver(world, received, report=REPORT, reported_at=timezone.now() + timedelta(hours=1))
    assert_unchanged(before, received.pk)


def test_result_time_is_kept(world, received):
    when = received.collected_at + timedelta(hours=1)
    result, _ = deliver(world, received, report=REPORT, reported_at=when)
    received.refresh_from_db()
    assert result.reported_at == when == received.result_at
    assert result.laboratory.platform_id == 1000000001


def test_result_on_a_dispatched_sample_records_the_implicit_receipt(world):
    sample = sample_in_state(S.DISPATCHED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    deliver(world, sample, report=REPORT)
    sample.refresh_from_db()
    assert sample.state == S.RESULT and sample.received_at is not None
    received = sample.events.get(kind=EventKind.RECEIVED)
    assert received.data == {"implicit": True}


# --- corrections -------------------------------------------------------------------------------------------------


def test_correction_needs_a_reason(world, with_result):
    before = db_state(with_result.pk)
    with pytest.raises(ValidationFailed) as info:
        correct(world, with_result, "positive", reason="  ")
    assert info.value.errors[0].field == "reason"
    assert_unchanged(before, with_result.pk)


def test_identical_correction_is_refused(world, with_result):
    before = db_state(with_result.pk)
    with pytest.raises(ValidationFailed):
        correct(world, with_result, "negative", report=None)
    assert_unchanged(before, with_result.pk)


def test_one_correction_within_the_window_then_authorisation_required(world, with_result):
    v2 = correct(world, with_result, "positive")
    assert v2.version == 2 and v2.authorization is None
    with_result.refresh_from_db()
    assert with_result.result_value.code == "positive" and with_result.state == S.RESULT
    before = db_state(with_result.pk)
    with pytest.raises(PermissionDenied) as info:
        correct(world, with_result, "negative")
    assert info.value.code == "authorisation_required"
    assert_unchanged(before, with_result.pk)


def test_correction_to_a_value_that_needs_a_report_needs_a_new_report(world, with_result):
    # The first report says "negative"; a corrected "indeterminate" needs its own signed report.
    before = db_state(with_result.pk)
    with pytest.raises(ValidationFailed) as info:
        correct(world, with_result, "indeterminate", report=None)
    assert info.value.errors[0].field == "report"
    assert_unchanged(before, with_result.pk)


def test_correction_after_the_window_needs_an_authorisation_which_is_used_once(world, with_result):
    age_first_result(with_result, days=7.1)
    before = db_state(with_result.pk)
    with pytest.raises(PermissionDenied) as info:
        correct(world, with_result, "positive")
    assert info.value.code == "authorisation_required"
    assert_unchanged(before, with_result.pk)

    authorisation = services.correction_authorise(
        actor=world.actors["admin"], sample_id=with_result.pk, reason="Ticket 123"
    )
    assert authorisation.used_at is None
    assert event_kinds(with_result)[-1] == EventKind.CORRECTION_AUTHORISED
    v2 = correct(world, with_result, "positive")
    authorisation.refresh_from_db()
    assert v2.authorization_id == authorisation.pk and authorisation.used_at is not None

    # Consumed: the next correction needs a new authorisation.
    with pytest.raises(PermissionDenied) as info:
        correct(world, with_result, "negative")
    assert info.value.code == "authorisation_required"
    services.correction_authorise(actor=world.actors["admin"], sample_id=with_result.pk, reason="Ticket 124")
    v3 = correct(world, with_result, "negative")
    assert v3.version == 3
    assert CorrectionAuthorization.objects.filter(sample=with_result, used_at__isnull=True).count() == 0


def test_just_inside_the_window_a_correction_needs_no_authorisation(world, with_result):
    age_first_result(with_result, days=6.9)
    assert correct(world, with_result, "positive").authorization is None


def test_authorisation_allows_a_second_correction_within_the_window(world, with_result):
    correct(world, with_result, "positive")
    services.correction_authorise(actor=world.actors["admin"], sample_id=with_result.pk, reason="Ticket 9")
    assert correct(world, with_result, "negative").authorization is not None


def test_authorisation_needs_a_reason_and_a_result(world, with_result):
    with pytest.raises(ValidationFailed):
        services.correction_authorise(actor=world.actors["admin"], sample_id=with_result.pk, reason=" ")
    received = sample_in_state(S.RECEIVED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    before = db_state(received.pk)
    with pytest.raises(IllegalTransition):
        services.correction_authorise(actor=world.actors["admin"], sample_id=received.pk, reason="x")
    assert_unchanged(before, received.pk)


def test_result_history_keeps_every_version(world, with_result):
    correct(world, with_result, "positive", reason="first fix")
    services.correction_authorise(actor=world.actors["admin"], sample_id=with_result.pk, reason="Ticket 1")
    correct(world, with_result, "indeterminate", reason="second fix")
    history = list(with_result.results.order_by("version"))
    assert [(r.version, r.value.code, r.reason) for r in history] == [
        (1, "negative", ""),
        (2, "positive", "first fix"),
        (3, "indeterminate", "second fix"),
    ]
    corrected = with_result.events.filter(kind=EventKind.RESULT_CORRECTED).order_by("id")
    assert [(e.data["previous"], e.data["result"]) for e in corrected] == [
        ("negative", "positive"),
        ("positive", "indeterminate"),
    ]
    with_result.refresh_from_db()
    assert with_result.result_value.code == "indeterminate"


def test_results_are_append_only(world, with_result):
    result = with_result.results.get()
    result.reason = "rewritten"
    with pytest.raises(RuntimeError):
        result.save()
    with pytest.raises(RuntimeError):
        result.delete()
    event = with_result.events.first()
    with pytest.raises(RuntimeError):
        event.save()
    with pytest.raises(RuntimeError):
        event.delete()
