"""The FHIR R4B form of events, validated by fhir.resources, and sent with its own content type."""

from __future__ import annotations

import json

from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.specimen import Specimen

from muestra.demo.builders import REPORT, patient_input, sample_in_state, sample_input
from muestra.integrations.fhir import systems
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
            assert resource["subject"]["identifier"]["system"] == systems.CL_RUN  # the RUN, as /fhir/ names it
            assert resource["performer"][0]["identifier"]["system"] == systems.LABORATORY
        else:
            Specimen.model_validate(resource)
            assert resource["id"] == number and resource["identifier"][0]["value"] == number
            assert resource["identifier"][0]["system"] == systems.SAMPLE_NUMBER
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


def test_identifier_systems_are_those_of_the_fhir_interface(world, django_capture_on_commit_callbacks):
    """The same URIs as /fhir/ (fhir/systems.py): a lab's own code is qualified by that lab's national id."""
    make_subscription(URL, ["registered"], format=PayloadFormat.FHIR)
    with django_capture_on_commit_callbacks(execute=True):
        services.sample_register(actor=world.actors["lab_x"], data=sample_input(client_code="LX-77"))
    delivery = Delivery.objects.get()
    assert delivery.payload["sample"]["laboratory_code_lab"] == world.lab_x.platform_id
    resource = fhir_resource(delivery.payload, delivery.kind)
    Specimen.model_validate(resource)
    assert resource["identifier"] == [{"system": systems.SAMPLE_NUMBER, "value": resource["id"]}]
    assert resource["accessionIdentifier"] == {
        "system": systems.lab_sample_code_system(world.lab_x.platform_id),
        "value": "LX-77",
    }
    assert "urn:muestra" not in json.dumps(resource)


def test_a_pool_specimen_names_its_members_as_parents_like_fhir(world, django_capture_on_commit_callbacks):
    """As in /fhir/: the pooled tube's Specimen has its members' Specimens as `parent`; a member has no parent."""
    make_subscription(URL, ["registered"], format=PayloadFormat.FHIR)
    data = sample_input()
    data.patient = None
    data.pool_members = [patient_input(), patient_input()]
    with django_capture_on_commit_callbacks(execute=True):
        pool, _ = services.sample_register(actor=world.actors["taker_a"], data=data)
    members = sorted(m.number for m in pool.members.all())
    by_number = {d.payload["sample"]["number"]: d for d in Delivery.objects.all()}
    assert set(by_number) == {pool.number, *members}
    pool_payload = by_number[pool.number].payload
    assert pool_payload["sample"]["is_pool"] and pool_payload["sample"]["members"] == members
    resource = fhir_resource(pool_payload, "registered")
    Specimen.model_validate(resource)
    assert resource["parent"] == [{"reference": f"Specimen/{number}"} for number in members]
    for number in members:
        member = by_number[number].payload
        assert member["sample"]["pool"] == pool.number and "members" not in member["sample"]
        assert "parent" not in fhir_resource(member, "registered")
