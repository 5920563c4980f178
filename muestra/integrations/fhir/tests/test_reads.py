"""Read and search of Patient, Specimen, ServiceRequest, Observation and DiagnosticReport within the caller's
scope, the CapabilityStatement, and the transport's answers (401, 404, 405, 406) as OperationOutcomes."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from muestra.audit.models import AuditEntry
from muestra.demo.builders import patient_input, sample_in_state, sample_input
from muestra.integrations.fhir import systems
from muestra.integrations.fhir.tests.conftest import issues

SAMPLE_TYPES = ("Specimen", "ServiceRequest", "Observation", "DiagnosticReport")


@pytest.fixture
def with_result(world: Any) -> Any:
    return sample_in_state(
        "result", taker=world.actors["taker_a"], lab=world.actors["lab_x"], data=sample_input(tube_code="TB-77")
    )


def _valid(resource: dict[str, Any]) -> Any:
    return get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_the_capability_statement_is_a_valid_r4b_resource(world, fhir):
    response = fhir("key_lab_x").get("metadata")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/fhir+json")
    statement: Any = CapabilityStatement.model_validate(response.json())
    rest = statement.rest[0]
    assert {r.type for r in rest.resource} == {*SAMPLE_TYPES, "Patient"}
    assert {i.code for i in rest.interaction} == {"transaction", "batch"}
    assert "collection, document, message" in rest.documentation
    assert fhir("lab_x").get("metadata").status_code == 200  # a session works too


def test_every_resource_of_a_result_reads_as_valid_fhir(world, fhir, with_result):
    number = with_result.number
    client = fhir("key_lab_x")
    for resource_type in SAMPLE_TYPES:
        response = client.get(f"{resource_type}/{number}")
        assert response.status_code == 200, (resource_type, response.json())
        resource = response.json()
        _valid(resource)
        assert resource["id"] == str(number)
    specimen = client.get(f"Specimen/{number}").json()
    assert {"system": systems.TUBE_BARCODE, "value": "TB-77", "use": "secondary"} in specimen["identifier"]
    assert specimen["type"]["coding"][0] == {
        "system": systems.SNOMED,
        "code": "258500001",
        "display": "Nasopharyngeal swab",
    }
    assert specimen["subject"] == {"reference": f"Patient/{with_result.patient_id}"}
    observation = client.get(f"Observation/{number}").json()
    assert observation["valueCodeableConcept"]["coding"][0]["code"] == "260385009"
    assert observation["code"]["coding"][0]["code"] == "94500-6" and observation["status"] == "final"
    report = client.get(f"DiagnosticReport/{number}").json()
    assert report["presentedForm"][0]["url"].endswith(f"/api/v1/samples/{number}/report")
    patient = client.get(f"Patient/{with_result.patient_id}").json()
    _valid(patient)
    assert patient["identifier"][0]["system"] == systems.CL_RUN
    assert patient["identifier"][0]["value"] == with_result.patient.document_number
    audited = AuditEntry.objects.filter(object_id=str(number), data__channel="fhir")
    assert set(audited.values_list("action", flat=True)) == {"sample.read", "sample.results.read"}
    assert AuditEntry.objects.filter(action="patient.read", object_id=str(with_result.patient_id)).exists()


def test_a_sample_without_result_has_no_observation(world, fhir):
    sample = sample_in_state("received", taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    client = fhir("key_lab_x")
    assert client.get(f"Specimen/{sample.number}").status_code == 200
    assert client.get(f"ServiceRequest/{sample.number}").json()["status"] == "active"
    assert client.get(f"Observation/{sample.number}").status_code == 404
    assert client.get(f"DiagnosticReport/{sample.number}").status_code == 404


@pytest.mark.parametrize("persona", ["lab_y", "key_lab_y", "taker_b", "citizen"])
def test_out_of_scope_is_the_same_404_as_missing(world, fhir, with_result, persona):
    client = fhir(persona)
    missing = client.get("Specimen/1999999999")
    assert missing.status_code == 404
    for resource_type in SAMPLE_TYPES:
        response = client.get(f"{resource_type}/{with_result.number}")
        assert response.status_code == 404
        assert response.json() == missing.json()
        assert issues(response.json())[0]["code"] == "not-found"
        found = client.get(resource_type, {"identifier": str(with_result.number), "specimen": with_result.number})
        assert found.status_code == 200 and found.json()["entry"] == []
    assert client.get(f"Patient/{with_result.patient_id}").json() == missing.json()
    assert not AuditEntry.objects.filter(object_id=str(with_result.number), data__channel="fhir").exists()


def test_searches_find_by_identifier_specimen_patient_and_last_update(world, fhir, with_result):
    client = fhir("taker_a")
    number = with_result.number
    for value in (str(number), f"{systems.SAMPLE_NUMBER}|{number}", f"{systems.TUBE_BARCODE}|TB-77", "TB-77"):
        bundle = client.get("Specimen", {"identifier": value}).json()
        Bundle.model_validate(bundle)
        assert bundle["type"] == "searchset"
        assert [e["resource"]["id"] for e in bundle["entry"]] == [str(number)], value
    assert client.get("Specimen", {"identifier": f"{systems.TUBE_BARCODE}|{number}"}).json()["entry"] == []
    for params in (
        {"specimen": f"Specimen/{number}"},
        {"patient": f"Patient/{with_result.patient_id}"},
        {"_lastUpdated": f"ge{(timezone.now() - timedelta(hours=1)).date().isoformat()}"},
    ):
        bundle = client.get("DiagnosticReport", params).json()
        assert [e["resource"]["id"] for e in bundle["entry"]] == [str(number)], params
        assert bundle["entry"][0]["fullUrl"].endswith(f"/fhir/DiagnosticReport/{number}")
    later = (timezone.now() + timedelta(hours=1)).isoformat()
    assert client.get("DiagnosticReport", {"_lastUpdated": f"gt{later}"}).json()["entry"] == []
    run = with_result.patient.document_number
    patients = client.get("Patient", {"identifier": f"{systems.CL_RUN}|{run}"}).json()
    assert [e["resource"]["id"] for e in patients["entry"]] == [str(with_result.patient_id)]
    assert client.get("Patient", {"identifier": f"{systems.VN_CCCD}|{run}"}).json()["entry"] == []
    assert client.get("DiagnosticReport", {"_lastUpdated": "ge-last-week"}).status_code == 400


def test_search_pages_follow_next_links(world, fhir):
    numbers = {
        sample_in_state("registered", taker=world.actors["taker_a"], lab=world.actors["lab_x"]).number for _ in range(3)
    }
    client = fhir("key_lab_x")
    seen: list[str] = []
    response = client.get("Specimen", {"_count": 2})
    while True:
        bundle = response.json()
        seen.extend(e["resource"]["id"] for e in bundle["entry"])
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            break
        url = urlsplit(following[0])
        response = client.client.get(f"{url.path}?{url.query}", headers=client.headers)
    assert set(seen) == {str(n) for n in numbers} and len(seen) == 3
    assert client.get("Specimen", {"_cursor": "nonsense"}).status_code == 400


def test_a_pool_specimen_lists_its_members_as_parents(world, fhir):
    data = replace(sample_input(), patient=None, pool_members=[patient_input(), patient_input()])
    pool = sample_in_state("received", taker=world.actors["taker_a"], lab=world.actors["lab_x"], data=data)
    members = sorted(m.number for m in pool.members.all())
    specimen = fhir("key_lab_x").get(f"Specimen/{pool.number}").json()
    _valid(specimen)
    assert specimen["parent"] == [{"reference": f"Specimen/{n}"} for n in members]
    assert "subject" not in specimen
    member = fhir("key_lab_x").get(f"Specimen/{members[0]}").json()
    assert member["subject"]["reference"].startswith("Patient/")
    order = fhir("key_lab_x").get(f"ServiceRequest/{pool.number}").json()
    _valid(order)


def test_transport_errors_are_operation_outcomes(world, fhir):
    client = fhir("key_lab_x")
    anonymous = client.client.get("/fhir/metadata")
    assert anonymous.status_code == 401 and issues(anonymous.json())[0]["code"] == "login"
    assert client.get("Nonsense/1").status_code == 404
    assert client.get("Specimen/1/_history").status_code == 404
    wrong_method = client.client.delete("/fhir/Specimen/1000000001", headers=client.headers)
    assert wrong_method.status_code == 405 and wrong_method["Allow"] == "GET"
    xml = client.get("metadata", headers={"Accept": "application/fhir+xml"})
    assert xml.status_code == 406
    vietnamese = client.get("Specimen/1999999999", headers={"Accept-Language": "vi"})
    english = client.get("Specimen/1999999999", headers={"Accept-Language": "en"})
    assert issues(english.json())[0]["diagnostics"] == "Not found."
    assert vietnamese.status_code == 404
