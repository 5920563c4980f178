"""The FHIR R4B form of events, validated by fhir.resources, and sent with its own content type."""

from __future__ import annotations

import json

from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.specimen import Specimen

from muestra.demo.builders import REPORT, sample_in_state
from muestra.integrations.models import Delivery, PayloadFormat
from muestra.integrations.outbound.payloads import fhir_resource
from muestra.integrations.outbound.services import deliveries_send
from muestra.integrations.outbound.tests.conftest import make_subscription
from muestra.samples import services
from muestra.samples.models import SampleState

URL = "http://127.0.0.1:9/events"
KINDS = ["registered", "received", "rejected", "result_delivered", "result_corrected"]


def test_each_event_kind_has_a_valid_r4b_resource(world, django_capture_on_commit_callbacks):
    make_subscription(URL, KINDS, include_patient=True)
    taker, lab = world.actors["taker_a"], world.actors["lab_x"]
    with django_capture_on_commit_callbacks(execute=True):
        done = sample_in_state(SampleState.RESULT, taker=taker, lab=lab)
        services.result_correct(
            actor=lab, sample_id=done.pk, value="positive", reason="Error de digitación", report=REPORT
        )
        sample_in_state(SampleState.REJECTED, taker=taker, lab=lab)
    seen = set()
    for delivery in Delivery.objects.all():
        resource = fhir_resource(delivery.payload, delivery.kind)
        seen.add(delivery.kind)
        number = str(delivery.payload["sample"]["number"])
        if delivery.kind.startswith("result"):
            DiagnosticReport.model_validate(resource)  # raises when not a valid R4B DiagnosticReport
            assert resource["status"] == ("corrected" if delivery.kind == "result_corrected" else "final")
            assert resource["specimen"][0]["reference"] == f"Specimen/{number}"
            assert resource["code"]["coding"][0]["system"] == "http://loinc.org"
            assert resource["conclusionCode"][0]["coding"][0]["system"] == "http://snomed.info/sct"
            assert resource["subject"]["identifier"]["value"]  # the person, for an entitled subscription
        else:
            Specimen.model_validate(resource)
            assert resource["id"] == number and resource["identifier"][0]["value"] == number
            assert resource["status"] == ("unsatisfactory" if delivery.kind == "rejected" else "available")
            if delivery.kind == "received":
                assert resource["receivedTime"]
    assert seen == set(KINDS)


def test_a_fhir_subscription_receives_fhir_json(world, receiver, django_capture_on_commit_callbacks):
    make_subscription(receiver.url, ["result_delivered"], format=PayloadFormat.FHIR)
    with django_capture_on_commit_callbacks(execute=True):
        sample = sample_in_state(SampleState.RESULT, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    assert deliveries_send().delivered == 1
    (request,) = receiver.received
    assert request["headers"]["Content-Type"].startswith("application/fhir+json")
    body = json.loads(request["body"])
    DiagnosticReport.model_validate(body)
    assert body["identifier"][0]["value"] == f"{sample.number}-1"
    assert request["headers"]["Muestra-Event-Type"] == "sample.result_available"
