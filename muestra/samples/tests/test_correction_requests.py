# mypy: disable-error-code="union-attr"
"""Late-correction requests: the lab asks once the direct correction is no longer allowed, a national administrator
authorises (which allows exactly one correction) or declines; every step audited; per-tube damage reasons."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from muestra.audit.models import AuditEntry
from muestra.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from muestra.demo.builders import sample_in_state, sample_input
from muestra.samples import selectors, services
from muestra.samples.models import (
    CorrectionAuthorization,
    CorrectionRequest,
    EventKind,
    Result,
    Sample,
    SampleState,
    ShipmentItem,
)
from muestra.samples.tests.support import assert_unchanged, db_state, event_kinds

S = SampleState


@pytest.fixture
def late(world) -> Sample:
    """A sample whose result was delivered longer ago than the correction window."""
    sample = sample_in_state(S.RESULT, taker=world.actors["taker_a"], lab=world.actors["lab_x"], result="negative")
    Result.objects.filter(sample=sample, version=1).update(entered_at=timezone.now() - timedelta(days=9))
    return sample


def request(world, sample, value="positive", reason="Transcription error found in review", who="lab_x"):
    return services.correction_request_create(
        actor=world.actors[who], sample_id=sample.pk, proposed_value=value, reason=reason
    )


def pdf(text: str) -> services.ReportFile:
    return services.ReportFile(f"%PDF-1.4 {text} {timezone.now()}\n%%EOF".encode())


def test_late_correction_request_authorised_allows_one_correction(world, late):
    created, was_new = request(world, late)
    assert was_new and created.state == CorrectionRequest.State.PENDING
    assert created.laboratory == world.lab_x and created.requested_by == world.users["lab_x"]
    assert AuditEntry.objects.filter(action="sample.correction_requested", object_id=str(late.number)).exists()
    assert selectors.correction_option(world.actors["lab_x"], late, list(late.results.all())) == "pending"

    # the same request again is harmless, a different one while pending is a conflict
    again, was_new = request(world, late)
    assert again.pk == created.pk and not was_new
    with pytest.raises(Conflict):
        request(world, late, value="indeterminate")

    decided = services.correction_request_decide(
        actor=world.actors["admin"], request_id=created.pk, authorise=True, note="Checked with the lab"
    )
    assert decided.state == CorrectionRequest.State.AUTHORISED
    assert decided.decided_by == world.users["admin"] and decided.decided_at is not None
    assert decided.authorization is not None and decided.authorization.used_at is None
    assert event_kinds(late)[-1] == EventKind.CORRECTION_AUTHORISED
    assert AuditEntry.objects.filter(action="sample.correction_request_decided").count() == 1
    assert selectors.correction_option(world.actors["lab_x"], late, list(late.results.all())) == "authorised"

    # deciding the same way twice is harmless; the opposite decision is refused
    services.correction_request_decide(actor=world.actors["admin"], request_id=created.pk, authorise=True)
    with pytest.raises(Conflict):
        services.correction_request_decide(
            actor=world.actors["admin"], request_id=created.pk, authorise=False, note="no"
        )
    assert CorrectionAuthorization.objects.filter(sample=late).count() == 1

    corrected = services.result_correct(
        actor=world.actors["lab_x"], sample_id=late.pk, value="positive", reason="as requested", report=pdf("v2")
    )
    assert corrected.version == 2 and corrected.authorization_id == decided.authorization_id
    with pytest.raises(PermissionDenied):  # the authorisation was used
        services.result_correct(
            actor=world.actors["lab_x"], sample_id=late.pk, value="negative", reason="again", report=pdf("v3")
        )


def test_declined_request_needs_a_note_and_allows_nothing(world, late):
    created, _ = request(world, late)
    before = db_state(late.pk)
    with pytest.raises(ValidationFailed) as refused:
        services.correction_request_decide(actor=world.actors["admin"], request_id=created.pk, authorise=False)
    assert refused.value.errors[0].field == "note"
    assert_unchanged(before, late.pk)
    declined = services.correction_request_decide(
        actor=world.actors["admin"], request_id=created.pk, authorise=False, note="The report is correct"
    )
    assert declined.state == CorrectionRequest.State.DECLINED and declined.authorization is None
    assert not CorrectionAuthorization.objects.filter(sample=late).exists()
    # after a decline the lab may ask again
    second, was_new = request(world, late, reason="New evidence from the bench")
    assert was_new and second.pk != created.pk


def test_a_request_is_refused_while_a_direct_correction_is_still_allowed(world):
    fresh = sample_in_state(S.RESULT, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    before = db_state(fresh.pk)
    with pytest.raises(ValidationFailed) as refused:
        request(world, fresh)
    assert refused.value.errors[0].field == "sample"
    assert_unchanged(before, fresh.pk)
    assert not CorrectionRequest.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"reason": " "}, "reason"), ({"value": "no-such-value"}, "result"), ({"value": "negative"}, "proposed_value")],
)
def test_bad_requests_store_nothing(world, late, kwargs, field):
    before = db_state(late.pk)
    with pytest.raises(ValidationFailed) as refused:
        request(world, late, **kwargs)
    assert refused.value.errors[0].field == field
    assert_unchanged(before, late.pk)
    assert not CorrectionRequest.objects.exists()


def test_only_the_samples_lab_asks_and_only_an_admin_decides(world, late):
    for who in ("lab_y", "taker_b", "citizen", "viewer_rm"):
        with pytest.raises((NotFound, PermissionDenied)):
            request(world, late, who=who)
    with pytest.raises(PermissionDenied):  # the establishment sees the sample but is not its lab
        request(world, late, who="taker_a")
    created, _ = request(world, late)
    for who in ("lab_x", "lab_y", "taker_a", "viewer_rm"):
        with pytest.raises(PermissionDenied):
            services.correction_request_decide(actor=world.actors[who], request_id=created.pk, authorise=True)
    with pytest.raises(NotFound):
        services.correction_request_decide(actor=world.actors["admin"], request_id=10**9, authorise=True)
    assert CorrectionRequest.objects.get().state == CorrectionRequest.State.PENDING


def test_requests_are_scoped(world, late):
    created, _ = request(world, late)
    assert selectors.correction_request_get(world.actors["lab_x"], created.pk) is not None
    assert selectors.correction_request_get(world.actors["admin"], created.pk) is not None
    assert selectors.correction_request_get(world.actors["lab_y"], created.pk) is None
    assert selectors.correction_request_get(world.actors["taker_b"], created.pk) is None
    assert list(selectors.correction_requests(world.actors["lab_y"], state="pending")) == []
    assert selectors.pending_correction_request_count(world.actors["admin"]) == 1


def test_shipment_receipt_keeps_each_damaged_tubes_own_reason(world):
    taker = world.actors["taker_a"]
    samples = [services.sample_register(actor=taker, data=sample_input())[0] for _ in range(3)]
    shipment = services.shipment_create(
        actor=taker, establishment_code="113100", laboratory_id=1000000001, sample_ids=[s.pk for s in samples]
    )
    services.shipment_dispatch(actor=taker, shipment_id=shipment.pk)
    services.shipment_receive(
        actor=world.actors["lab_x"],
        shipment_id=shipment.pk,
        received_sample_ids=[samples[0].pk],
        damaged_sample_ids=[samples[1].pk, samples[2].pk],
        damage_reason="box crushed",
        damage_reasons={samples[1].pk: "cap open"},
    )
    notes = dict(ShipmentItem.objects.filter(shipment=shipment).values_list("sample_id", "note"))
    assert notes[samples[1].pk] == "cap open" and notes[samples[2].pk] == "box crushed"
