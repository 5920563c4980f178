"""What a delivery carries: our JSON snapshot of the event, and its FHIR R4B form on request.

The JSON snapshot is taken once when the event is committed (identifiers and codes only, reference rows from the
look-up cache, so building it costs no query) and stored on each Delivery. The FHIR form is derived from that
snapshot when it is sent, so the hot path never pays for FHIR models:

* registered, dispatched, received, rejected, returned, forwarded, cancelled -> a `Specimen`
  (status `available`, `unsatisfactory` when rejected, `unavailable` when cancelled; `receivedTime` on receipt;
  a pooled tube's `parent` = its members' Specimens, as `/fhir/` writes it);
* result available / corrected -> a `DiagnosticReport` (status `final` / `corrected`, LOINC code of the test,
  the result as a SNOMED CT `conclusionCode`, the specimen referenced as `Specimen/<sample number>`).

Both are validated with fhir.resources (R4B) before they leave. Identifier and code systems are the FHIR
interface's (`muestra/integrations/fhir/systems.py`), so a receiver sees the same URIs from both.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from muestra.catalog.models import Disease, IdentityDocumentType, SampleType, Test
from muestra.facilities.models import Establishment, Laboratory
from muestra.integrations.fhir import systems
from muestra.integrations.models import OUTBOUND_EVENT_TYPES
from muestra.samples import lookups
from muestra.samples.models import PUBLIC_NUMBER_OFFSET
from muestra.territories.models import Territory

#: The fields of a SampleEvent (and of its sample) a snapshot is built from: one query, no joins beyond the sample.
EVENT_FIELDS = (
    "pk",
    "sample_id",
    "kind",
    "at",
    "occurred_at",
    "from_state",
    "to_state",
    "laboratory_id",
    "establishment_id",
    "reason",
    "channel",
    "data",
    "sample__disease_id",
    "sample__test_id",
    "sample__sample_type_id",
    "sample__collected_at",
    "sample__client_code",
    "sample__client_lab_id",
    "sample__is_pool",
    "sample__pool_id",
    "sample__patient_id",
)

RESULT_KINDS = frozenset({"result_delivered", "result_corrected"})


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _number(pk: int | None) -> int | None:
    return PUBLIC_NUMBER_OFFSET + pk if pk is not None else None


def event_snapshot(row: dict[str, Any], event_uuid: str, members: Sequence[int] = ()) -> dict[str, Any]:
    """Our JSON of one event (`row` holds EVENT_FIELDS; `members`: a pooled tube's member sample ids).
    Identifiers and codes only; no personal data."""
    disease = lookups.by_pk(Disease, row["sample__disease_id"])
    test = lookups.by_pk(Test, row["sample__test_id"])
    sample_type = lookups.by_pk(SampleType, row["sample__sample_type_id"])
    establishment = lookups.by_pk(Establishment, row["establishment_id"])
    territory = lookups.by_pk(Territory, establishment.territory_id) if establishment else None
    laboratory = lookups.by_pk(Laboratory, row["laboratory_id"])
    client_lab = lookups.by_pk(Laboratory, row["sample__client_lab_id"]) if row["sample__client_code"] else None
    data = row["data"] or {}
    payload: dict[str, Any] = {
        "id": event_uuid,
        "type": OUTBOUND_EVENT_TYPES.get(row["kind"], row["kind"]),
        "sequence": row["pk"],
        "occurred_at": _iso(row["occurred_at"] or row["at"]),
        "recorded_at": _iso(row["at"]),
        "channel": row["channel"],
        "sample": {
            "number": _number(row["sample_id"]),
            "state": row["to_state"],
            "previous_state": row["from_state"],
            "disease": disease.code if disease else None,
            "test": {"code": test.code, "loinc": test.loinc_code} if test else None,
            "sample_type": {"code": sample_type.code, "snomed": sample_type.snomed_code} if sample_type else None,
            "collected_at": _iso(row["sample__collected_at"]),
            "laboratory_code": row["sample__client_code"] or None,
            "laboratory_code_lab": client_lab.platform_id if client_lab else None,
            "is_pool": row["sample__is_pool"],
            "pool": _number(row["sample__pool_id"]),
        },
        "establishment": {
            "code": establishment.code,
            "name": establishment.name,
            "territory": territory.code if territory else None,
            "territory_path": territory.path if territory else None,
        }
        if establishment
        else None,
        "laboratory": {"id": laboratory.platform_id, "name": laboratory.name} if laboratory else None,
    }
    if row["sample__is_pool"]:
        payload["sample"]["members"] = [_number(pk) for pk in members]
    if row["kind"] in RESULT_KINDS:
        value = lookups.result_value(data.get("result"))
        payload["result"] = {
            "code": data.get("result"),
            "snomed": value.snomed_code if value else None,
            "interpretation": value.interpretation if value else None,
            "version": data.get("version", 1),
            "previous": data.get("previous"),
            "reason": row["reason"] or None,
        }
    elif row["kind"] in {"rejected", "returned", "cancelled"}:
        payload["reason"] = {"code": data.get("reason") or None, "text": row["reason"] or None}
    elif row["kind"] == "forwarded":
        payload["forwarded"] = {"from": data.get("from_laboratory"), "to": data.get("to_laboratory")}
    return payload


def patient_snapshot(patient: Any) -> dict[str, Any]:
    """The tested person, for subscriptions entitled to personal data (`include_patient`)."""
    document_type = lookups.by_pk(IdentityDocumentType, patient.document_type_id)
    residence = lookups.by_pk(Territory, patient.residence_id)
    return {
        "document": {
            "type": document_type.code if document_type else None,
            "number": patient.document_number,
            "issuer": patient.document_issuer or None,
        },
        "given_names": patient.given_names,
        "surnames": [s for s in (patient.paternal_surname, patient.maternal_surname) if s],
        "birth_date": _iso(patient.birth_date),
        "sex": patient.sex,
        "residence": residence.code if residence else None,
        "address": patient.address or None,
        "phone": patient.phone or None,
        "email": patient.email or None,
    }


# --- FHIR R4B ---------------------------------------------------------------------------------------------------

_SPECIMEN_STATUS = {"rejected": "unsatisfactory", "cancelled": "unavailable"}


def _subject(payload: dict[str, Any]) -> dict[str, Any] | None:
    patient = payload.get("patient")
    if not patient:
        return None
    document = patient["document"]
    system = systems.document_system(document["type"] or "", document.get("issuer") or "")
    return {
        "type": "Patient",
        "identifier": {"system": system, "value": document["number"]},
        "display": " ".join([patient["given_names"], *patient["surnames"]]),
    }


def _specimen(payload: dict[str, Any], kind: str) -> dict[str, Any]:
    sample = payload["sample"]
    number = str(sample["number"])
    resource: dict[str, Any] = {
        "resourceType": "Specimen",
        "id": number,
        "identifier": [{"system": systems.SAMPLE_NUMBER, "value": number}],
        "status": _SPECIMEN_STATUS.get(kind, "available"),
        "collection": {"collectedDateTime": sample["collected_at"]},
    }
    if sample.get("laboratory_code"):
        # Codes are unique within a laboratory: the system names it (snapshots older than that field do not).
        lab = sample.get("laboratory_code_lab")
        lab_system = systems.lab_sample_code_system(lab) if lab else systems.LAB_SAMPLE_CODE
        resource["accessionIdentifier"] = {"system": lab_system, "value": sample["laboratory_code"]}
    if sample.get("sample_type"):
        resource["type"] = {"coding": [{"system": systems.SNOMED, "code": sample["sample_type"]["snomed"]}]}
    if kind == "received":
        resource["receivedTime"] = payload["occurred_at"]
    if sample.get("members"):
        # As in /fhir/: R4 has no pooled specimen, so the pool tube's parents are its members' specimens.
        resource["parent"] = [{"reference": f"Specimen/{member}"} for member in sample["members"]]
    reason = payload.get("reason")
    if reason and (reason.get("text") or reason.get("code")):
        resource["note"] = [{"text": reason.get("text") or reason.get("code")}]
    subject = _subject(payload)
    if subject:
        resource["subject"] = subject
    return resource


def _diagnostic_report(payload: dict[str, Any], kind: str) -> dict[str, Any]:
    sample = payload["sample"]
    result = payload["result"]
    number = str(sample["number"])
    test = sample.get("test") or {}
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": f"{number}-{result['version']}",
        "identifier": [{"system": systems.SAMPLE_NUMBER, "value": f"{number}-{result['version']}"}],
        "status": "corrected" if kind == "result_corrected" else "final",
        "category": [
            {"coding": [{"system": systems.DIAGNOSTIC_SERVICE_SECTION, "code": "MB"}]},
        ],
        "code": {
            "coding": [{"system": systems.LOINC, "code": test.get("loinc") or "unknown"}],
            "text": test.get("code"),
        },
        "effectiveDateTime": sample["collected_at"],
        "issued": payload["occurred_at"],
        "specimen": [{"reference": f"Specimen/{number}"}],
        "conclusion": result["code"],
    }
    if result.get("snomed"):
        resource["conclusionCode"] = [{"coding": [{"system": systems.SNOMED, "code": result["snomed"]}]}]
    if payload.get("laboratory"):
        resource["performer"] = [
            {"identifier": {"system": systems.LABORATORY, "value": str(payload["laboratory"]["id"])}}
        ]
    subject = _subject(payload)
    if subject:
        resource["subject"] = subject
    return resource


def fhir_resource(payload: dict[str, Any], kind: str) -> dict[str, Any]:
    """The FHIR R4B resource of an event snapshot, validated by fhir.resources, as a JSON-ready dict."""
    from fhir.resources.R4B.diagnosticreport import DiagnosticReport  # imported on first use: heavy
    from fhir.resources.R4B.specimen import Specimen

    if kind in RESULT_KINDS:
        model: Any = DiagnosticReport.model_validate(_diagnostic_report(payload, kind))
    else:
        model = Specimen.model_validate(_specimen(payload, kind))
    return model.model_dump(mode="json", exclude_none=True)  # type: ignore[no-any-return]
