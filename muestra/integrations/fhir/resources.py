"""Our records as FHIR R4 resources (plain dicts, valid R4B JSON): Sample -> Specimen, ServiceRequest (the
order), Observation and DiagnosticReport (its current result); Patient -> Patient.

Logical ids are public: a sample's resources all have its 10-digit number as id (`Specimen/1000000123`,
`Observation/1000000123`...), a patient's is its internal id. Every sample passed in must come from the
selectors (reference rows attached, `latest_result_version` annotated).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from muestra.accounts.scoping import Actor
from muestra.catalog.models import Interpretation
from muestra.facilities.models import Laboratory
from muestra.integrations.fhir import systems
from muestra.patients.models import Patient
from muestra.samples import lookups
from muestra.samples.models import Sample, SampleState

GENDER = {"M": "male", "F": "female", "I": "other", "U": "unknown"}
INTERPRETATION: dict[str, tuple[str, str]] = {
    Interpretation.POSITIVE: ("POS", "Positive"),
    Interpretation.NEGATIVE: ("NEG", "Negative"),
    Interpretation.INCONCLUSIVE: ("IND", "Indeterminate"),
}
SPECIMEN_STATUS: dict[str, str] = {SampleState.REJECTED: "unsatisfactory", SampleState.CANCELLED: "entered-in-error"}
ORDER_STATUS: dict[str, str] = {
    SampleState.RESULT: "completed",
    SampleState.REJECTED: "revoked",
    SampleState.RETURNED: "revoked",
    SampleState.CANCELLED: "revoked",
}


def instant(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _meta(sample: Sample) -> dict[str, Any]:
    return {"lastUpdated": instant(sample.updated_at)}


def _ref(kind: str, ident: Any) -> dict[str, str]:
    return {"reference": f"{kind}/{ident}"}


def _coding(system: str, code: str, display: str = "") -> dict[str, str]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def sample_identifiers(actor: Actor, sample: Sample) -> list[dict[str, str]]:
    identifiers = [{"use": "official", "system": systems.SAMPLE_NUMBER, "value": str(sample.number)}]
    if sample.tube_code:
        identifiers.append({"use": "secondary", "system": systems.TUBE_BARCODE, "value": sample.tube_code})
    # A lab's own code is only repeated back to that lab (the legacy API does the same).
    lab = lookups.laboratory_by_pk(sample.client_lab_id) if sample.client_code else None
    if lab is not None and (actor.is_admin or lab.pk in actor.laboratory_ids):
        identifiers.append(
            {"use": "secondary", "system": systems.lab_sample_code_system(lab.platform_id), "value": sample.client_code}
        )
    return identifiers


def _subject(sample: Sample) -> dict[str, Any] | None:
    return _ref("Patient", sample.patient_id) if sample.patient_id else None


def _test_code(sample: Sample) -> dict[str, Any]:
    test = sample.test
    return {"coding": [_coding(systems.LOINC, test.loinc_code, test.name_en or test.name)], "text": test.display_name}


def specimen(actor: Actor, sample: Sample) -> dict[str, Any]:
    sample_type = sample.sample_type
    resource: dict[str, Any] = {
        "resourceType": "Specimen",
        "id": str(sample.number),
        "meta": _meta(sample),
        "identifier": sample_identifiers(actor, sample),
        "accessionIdentifier": {"system": systems.SAMPLE_NUMBER, "value": str(sample.number)},
        "status": SPECIMEN_STATUS.get(sample.state, "available"),
        "type": {
            "coding": [_coding(systems.SNOMED, sample_type.snomed_code, sample_type.name_en or sample_type.name)],
            "text": sample_type.display_name,
        },
        "request": [_ref("ServiceRequest", sample.number)],
        "collection": {"collectedDateTime": instant(sample.collected_at)},
    }
    if (subject := _subject(sample)) is not None:
        resource["subject"] = subject
    if sample.received_at is not None:
        resource["receivedTime"] = instant(sample.received_at)
    if sample.is_pool:
        # R4 has no pooled specimen: the pool tube's parents are its members' specimens (codes.md).
        resource["parent"] = [_ref("Specimen", member.number) for member in sample.members.all()]
    if sample.rejection_reason is not None:
        resource["condition"] = [{"text": sample.rejection_reason.display_name}]
    return resource


def service_request(actor: Actor, sample: Sample) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": str(sample.number),
        "meta": _meta(sample),
        "identifier": sample_identifiers(actor, sample),
        "status": ORDER_STATUS.get(sample.state, "active"),
        "intent": "order",
        "code": _test_code(sample),
        "authoredOn": instant(sample.created_at),
        "specimen": [_ref("Specimen", sample.number)],
        "requester": {
            "identifier": {"system": systems.ESTABLISHMENT, "value": sample.establishment.code},
            "display": sample.establishment.name,
        },
    }
    if (subject := _subject(sample)) is not None:
        resource["subject"] = subject
    else:  # a pooled tube has no person: the order is for the specimen itself
        resource["subject"] = _ref("Specimen", sample.number)
    if sample.laboratory is not None:
        resource["performer"] = [_laboratory(sample.laboratory)]
    return resource


def _laboratory(lab: Laboratory) -> dict[str, Any]:
    return {"identifier": {"system": systems.LABORATORY, "value": str(lab.platform_id)}, "display": lab.name}


def _result_status(sample: Sample) -> str:
    version = getattr(sample, "latest_result_version", None) or 1
    return "corrected" if version > 1 else "final"


def _subject_or_specimen(sample: Sample) -> dict[str, Any]:
    return _subject(sample) or _ref("Specimen", sample.number)


def _result_base(resource_type: str, sample: Sample, *, category: list[dict[str, Any]]) -> dict[str, Any]:
    """What an Observation and a DiagnosticReport of the sample's result share, in FHIR's element order."""
    return {
        "resourceType": resource_type,
        "id": str(sample.number),
        "meta": _meta(sample),
        "identifier": [{"system": systems.SAMPLE_NUMBER, "value": str(sample.number)}],
        "basedOn": [_ref("ServiceRequest", sample.number)],
        "status": _result_status(sample),
        "category": category,
        "code": _test_code(sample),
        "subject": _subject_or_specimen(sample),
        "effectiveDateTime": instant(sample.collected_at),
        "issued": instant(sample.result_at),
    }


def observation(actor: Actor, sample: Sample) -> dict[str, Any]:
    """The sample's current result (only for samples with one)."""
    value = sample.result_value
    assert value is not None
    resource: dict[str, Any] = {
        **_result_base(
            "Observation", sample, category=[{"coding": [_coding(systems.OBSERVATION_CATEGORY, "laboratory")]}]
        ),
        "valueCodeableConcept": {
            "coding": [_coding(systems.SNOMED, value.snomed_code, value.name_en or value.name)],
            "text": value.display_name,
        },
        "specimen": _ref("Specimen", sample.number),
    }
    if value.interpretation in INTERPRETATION:
        code, display = INTERPRETATION[value.interpretation]
        resource["interpretation"] = [{"coding": [_coding(systems.OBSERVATION_INTERPRETATION, code, display)]}]
    if sample.laboratory is not None:
        resource["performer"] = [_laboratory(sample.laboratory)]
    return resource


def diagnostic_report(actor: Actor, sample: Sample, *, base_url: str) -> dict[str, Any]:
    value = sample.result_value
    assert value is not None
    resource: dict[str, Any] = {
        **_result_base(
            "DiagnosticReport",
            sample,
            category=[{"coding": [_coding(systems.DIAGNOSTIC_SERVICE_SECTION, "LAB", "Laboratory")]}],
        ),
        "specimen": [_ref("Specimen", sample.number)],
        "result": [_ref("Observation", sample.number)],
        "conclusionCode": [{"coding": [_coding(systems.SNOMED, value.snomed_code, value.name_en)]}],
    }
    if getattr(sample, "latest_result_report", ""):
        # The signed PDF is downloaded from the REST API (same authentication, audited there).
        resource["presentedForm"] = [
            {"contentType": "application/pdf", "url": f"{base_url}/api/v1/samples/{sample.number}/report"}
        ]
    return resource


def patient(patient_row: Patient) -> dict[str, Any]:
    doc_type = patient_row.document_type
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(patient_row.pk),
        "meta": {"lastUpdated": instant(patient_row.updated_at)},
        "name": [
            {
                "use": "official",
                "family": " ".join(p for p in (patient_row.paternal_surname, patient_row.maternal_surname) if p),
                "given": patient_row.given_names.split(),
            }
        ],
        "gender": GENDER.get(patient_row.sex, "unknown"),
        "birthDate": patient_row.birth_date.isoformat(),
    }
    if patient_row.document_number:
        identifier: dict[str, Any] = {
            "use": "official",
            "system": systems.document_system(doc_type.code, patient_row.document_issuer),
            "value": patient_row.document_number,
        }
        if doc_type.code in systems.DOCUMENT_TYPE_CODES:
            identifier["type"] = {
                "coding": [_coding(systems.IDENTIFIER_TYPE, systems.DOCUMENT_TYPE_CODES[doc_type.code])],
                "text": doc_type.display_name,
            }
        resource["identifier"] = [identifier]
    return resource
