"""Rules settled after review: manifests follow cancellations and lab changes, every corrected result carries its
own signed report, point-of-care results are corrected by their establishment, over-long text is a field error."""

from __future__ import annotations

import pytest

from muestra.core.errors import NotFound, PermissionDenied, ValidationFailed
from muestra.demo.builders import REPORT, patient_input, sample_in_state, sample_input
from muestra.samples import services
from muestra.samples.models import Sample, SampleState, ShipmentItem
from muestra.samples.tests.support import assert_unchanged, db_state

LAB_X, LAB_Y = 1000000001, 1000000002


def test_cancelling_a_sample_takes_it_off_its_open_manifest(world):
    taker = world.actors["taker_a"]
    sample, _ = services.sample_register(actor=taker, data=sample_input())
    shipment = services.shipment_create(
        actor=taker, establishment_code="113100", laboratory_id=LAB_X, sample_ids=[sample.pk]
    )
    services.sample_cancel(actor=taker, sample_id=sample.pk, reason="Tubo roto antes de enviar")
    assert not ShipmentItem.objects.filter(shipment=shipment).exists()
    assert Sample.objects.get(pk=sample.pk).shipment_id is None


def test_changing_the_lab_of_a_registered_sample_takes_it_off_the_old_manifest(world):
    taker = world.actors["taker_b"]
    sample, _ = services.sample_register(actor=taker, data=sample_input(establishment="105100"))
    services.shipment_create(actor=taker, establishment_code="105100", laboratory_id=LAB_X, sample_ids=[sample.pk])
    services.sample_update(actor=taker, sample_id=sample.pk, changes={"laboratory": LAB_Y})
    stored = Sample.objects.get(pk=sample.pk)
    assert stored.laboratory is not None and stored.laboratory.platform_id == LAB_Y
    assert stored.shipment_id is None


def test_a_dispatched_sample_cannot_change_lab_from_the_establishment(world):
    sample = sample_in_state(
        SampleState.DISPATCHED,
        taker=world.actors["taker_b"],
        lab=world.actors["lab_x"],
        data=sample_input(establishment="105100"),
    )
    before = db_state(sample.pk)
    with pytest.raises(ValidationFailed) as refused:
        services.sample_update(actor=world.actors["taker_b"], sample_id=sample.pk, changes={"laboratory": LAB_Y})
    assert refused.value.errors[0].code == "already_dispatched"
    assert_unchanged(before, sample.pk)


def test_a_correction_needs_its_own_report(world):
    sample = sample_in_state(SampleState.RESULT, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    with pytest.raises(ValidationFailed) as refused:
        services.result_correct(
            actor=world.actors["lab_x"], sample_id=sample.pk, value="positive", reason="Error de transcripción"
        )
    assert refused.value.errors[0].field == "report"
    corrected = services.result_correct(
        actor=world.actors["lab_x"],
        sample_id=sample.pk,
        value="positive",
        reason="Error de transcripción",
        report=services.ReportFile(b"%PDF-1.4 corrected\n%%EOF"),
    )
    assert corrected.version == 2 and corrected.report_sha256 != REPORT.sha256


def test_a_point_of_care_result_is_corrected_by_its_establishment_only(world):
    sample, _ = services.sample_register(
        actor=world.actors["taker_a"],
        data=sample_input(test="covid19-antigen", laboratory=None, result="negative"),
    )
    with pytest.raises(NotFound):  # no lab holds a point-of-care sample, so no lab even sees it
        services.result_correct(
            actor=world.actors["lab_x"], sample_id=sample.pk, value="positive", reason="x", report=REPORT
        )
    corrected = services.result_correct(
        actor=world.actors["taker_a"], sample_id=sample.pk, value="positive", reason="Lectura errónea", report=REPORT
    )
    stored = Sample.objects.get(pk=sample.pk)
    assert corrected.version == 2 and stored.result_value is not None and stored.result_value.code == "positive"


def test_only_the_sending_establishment_may_take_a_tube_off_a_manifest(world):
    sample, _ = services.sample_register(actor=world.actors["taker_a"], data=sample_input())
    shipment = services.shipment_create(
        actor=world.actors["taker_a"], establishment_code="113100", laboratory_id=LAB_X, sample_ids=[sample.pk]
    )
    with pytest.raises(PermissionDenied):
        services.shipment_remove_sample(actor=world.actors["lab_x"], shipment_id=shipment.pk, sample_id=sample.pk)
    assert ShipmentItem.objects.filter(shipment=shipment, sample=sample).exists()


def test_over_long_patient_text_is_a_field_error_not_a_database_failure(world):
    data = sample_input(patient=patient_input(given_names="A" * 121))
    before = db_state()
    with pytest.raises(ValidationFailed) as refused:
        services.sample_register(actor=world.actors["taker_a"], data=data)
    assert [(e.field, e.code) for e in refused.value.errors] == [("patient.given_names", "too_long")]
    assert_unchanged(before)


def test_registration_events_carry_public_identifiers(world):
    sample, _ = services.sample_register(actor=world.actors["taker_a"], data=sample_input())
    event = sample.events.get(kind="registered")
    assert event.data["laboratory"] == LAB_X and event.data["test"] == "covid19-pcr"


def test_samples_of_a_deactivated_lab_can_still_be_settled(world):
    sample = sample_in_state(SampleState.DISPATCHED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    world.lab_x.active = False
    world.lab_x.save(update_fields=["active"])
    _sample, recorded = services.sample_receive(actor=world.actors["lab_x"], sample_id=sample.pk)
    assert recorded and Sample.objects.get(pk=sample.pk).state == SampleState.RECEIVED
