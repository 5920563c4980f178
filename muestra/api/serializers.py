"""Stored rows -> response schemas. Pure functions over what the selectors loaded: no queries here when the rows
come from a selector (joins, prefetches and annotations cover every attribute touched), so a page costs the same
number of queries whatever its size.
"""

from __future__ import annotations

from functools import cache

from django.urls import reverse

from muestra.api import schemas as s
from muestra.catalog.models import (
    Disease,
    HealthInsurance,
    IdentityDocumentType,
    RejectionReason,
    ResultValue,
    SampleType,
    Strategy,
    Test,
)
from muestra.core.errors import FieldError
from muestra.facilities.models import Establishment, Laboratory
from muestra.patients.models import Patient
from muestra.samples.models import (
    CorrectionAuthorization,
    EventKind,
    Result,
    Sample,
    SampleEvent,
    SampleState,
    Shipment,
)
from muestra.samples.selectors import public_number


@cache
def api_root() -> str:
    # Resolved once: the mount point of the API ("/api/v1/"), so links follow wherever it is mounted.
    return reverse("api-v1:api-root")


def report_url(sample_number: int, version: int | None = None) -> str:
    url = f"{api_root()}samples/{sample_number}/report"
    return f"{url}?version={version}" if version is not None else url


def field_errors(errors: list[FieldError]) -> list[s.FieldErrorOut]:
    return [s.FieldErrorOut(field=e.field, code=e.code, message=str(e.message)) for e in errors]


def _code_name(entry: Disease | Strategy | RejectionReason | None) -> s.CodeName | None:
    return None if entry is None else s.CodeName(code=entry.code, name=entry.display_name)


def establishment_ref(establishment: Establishment) -> s.EstablishmentRef:
    return s.EstablishmentRef(code=establishment.code, name=establishment.name)


def laboratory_ref(laboratory: Laboratory | None) -> s.LaboratoryRef | None:
    return None if laboratory is None else s.LaboratoryRef(platform_id=laboratory.platform_id, name=laboratory.name)


def patient_out(patient: Patient | None) -> s.PatientOut | None:
    if patient is None:
        return None
    return s.PatientOut(
        document_type=patient.document_type.code,
        document_number=patient.document_number,
        document_issuer=patient.document_issuer,
        given_names=patient.given_names,
        paternal_surname=patient.paternal_surname,
        maternal_surname=patient.maternal_surname,
        birth_date=patient.birth_date,
        sex=patient.sex,
        residence=patient.residence.code if patient.residence is not None else None,
        address=patient.address,
        phone=patient.phone,
        email=patient.email,
        insurance=patient.insurance.code if patient.insurance is not None else None,
        nationality=patient.nationality.iso_numeric or None if patient.nationality is not None else None,
    )


def _latest_result(sample: Sample) -> tuple[int | None, bool]:
    """(latest version, has a report) from the selector's annotations, or one query for a bare row."""
    if hasattr(sample, "latest_result_version"):
        return sample.latest_result_version, bool(getattr(sample, "latest_result_report", ""))
    latest = sample.results.order_by("-version").values("version", "report").first()
    return (latest["version"], bool(latest["report"])) if latest else (None, False)


def result_out(sample: Sample) -> s.ResultOut | None:
    value: ResultValue | None = sample.result_value
    if value is None:
        return None
    version, has_report = _latest_result(sample)
    return s.ResultOut(
        value=value.code,
        name=value.display_name,
        interpretation=value.interpretation,
        reported_at=sample.result_at,
        version=version,
        corrected=bool(version and version > 1),
        report_url=report_url(sample.number) if has_report else None,
    )


def _member_numbers(sample: Sample) -> list[int]:
    if not sample.is_pool:
        return []
    return [public_number(m.pk) for m in sample.members.all()]


def sample_out(sample: Sample) -> s.SampleOut:
    test: Test = sample.test
    sample_type: SampleType = sample.sample_type
    return s.SampleOut(
        number=sample.number,
        state=sample.state,
        state_label=str(SampleState(sample.state).label),
        establishment=establishment_ref(sample.establishment),
        laboratory=laboratory_ref(sample.laboratory),
        disease=s.CodeName(code=sample.disease.code, name=sample.disease.display_name),
        test=s.TestRef(code=test.code, name=test.display_name, loinc_code=test.loinc_code),
        sample_type=s.SampleTypeRef(
            code=sample_type.code, name=sample_type.display_name, snomed_code=sample_type.snomed_code
        ),
        strategy=_code_name(sample.strategy),
        substrategy=_code_name(sample.substrategy) if sample.substrategy_id else None,
        active_case_finding=sample.active_case_finding,
        collected_at=sample.collected_at,
        received_at=sample.received_at,
        result=result_out(sample),
        retest_needed=sample.retest_needed,
        rejection_reason=_code_name(sample.rejection_reason),
        client_code=sample.client_code,
        tube_code=sample.tube_code,
        is_pool=sample.is_pool,
        pool=public_number(sample.pool_id) if sample.pool_id else None,
        members=_member_numbers(sample),
        shipment=public_number(sample.shipment_id) if sample.shipment_id else None,
        patient=patient_out(sample.patient),
        channel=sample.channel,
        created_at=sample.created_at,
        updated_at=sample.updated_at,
    )


def event_out(event: SampleEvent) -> s.EventOut:
    return s.EventOut(
        at=event.at,
        occurred_at=event.occurred_at,
        kind=event.kind,
        kind_label=str(EventKind(event.kind).label) if event.kind in EventKind.values else event.kind,
        from_state=event.from_state,
        to_state=event.to_state,
        actor=event.actor,
        laboratory=event.laboratory.platform_id if event.laboratory is not None else None,
        establishment=event.establishment.code if event.establishment is not None else None,
        reason=event.reason,
        channel=event.channel,
        data=event.data or {},
    )


def result_version_out(result: Result, sample_number: int) -> s.ResultVersionOut:
    value: ResultValue = result.value
    return s.ResultVersionOut(
        version=result.version,
        value=value.code,
        name=value.display_name,
        interpretation=value.interpretation,
        reported_at=result.reported_at,
        entered_at=result.entered_at,
        laboratory=result.laboratory.platform_id if result.laboratory is not None else None,
        reason=result.reason,
        corrected=result.version > 1,
        authorised=result.authorization_id is not None,
        from_pool=public_number(result.from_pool_result.sample_id) if result.from_pool_result is not None else None,
        report_sha256=result.report_sha256,
        report_url=report_url(sample_number, result.version) if result.report else None,
    )


def correction_authorisation_out(authorisation: CorrectionAuthorization) -> s.CorrectionAuthorisationOut:
    return s.CorrectionAuthorisationOut(
        sample=public_number(authorisation.sample_id),
        reason=authorisation.reason,
        authorised_at=authorisation.authorised_at,
        used_at=authorisation.used_at,
    )


def shipment_out(shipment: Shipment) -> s.ShipmentOut:
    return s.ShipmentOut(
        number=shipment.number,
        state=shipment.state,
        state_label=str(Shipment.State(shipment.state).label),
        establishment=establishment_ref(shipment.establishment),
        laboratory=s.LaboratoryRef(platform_id=shipment.laboratory.platform_id, name=shipment.laboratory.name),
        created_at=shipment.created_at,
        dispatched_at=shipment.dispatched_at,
        received_at=shipment.received_at,
        note=shipment.note,
        items=[
            s.ShipmentItemOut(sample=public_number(item.sample_id), outcome=item.outcome, note=item.note)
            for item in shipment.items.all()
        ],
    )


# --- catalogue and places -------------------------------------------------------------------------------------


def disease_out(d: Disease) -> s.DiseaseOut:
    return s.DiseaseOut(code=d.code, name=d.display_name, national_name=d.pntm_name, snomed_code=d.snomed_code)


def test_out(t: Test) -> s.TestOut:
    return s.TestOut(
        code=t.code,
        name=t.display_name,
        national_name=t.pntm_name,
        disease=t.disease.code,
        loinc_code=t.loinc_code,
        method=t.method,
        result_at_registration=t.result_at_registration,
        pooling_allowed=t.pooling_allowed,
        sample_types=[st.code for st in t.sample_types.all()],
        result_values=[rv.code for rv in t.result_values.all()],
    )


def sample_type_out(st: SampleType) -> s.SampleTypeOut:
    return s.SampleTypeOut(code=st.code, name=st.display_name, national_name=st.pntm_name, snomed_code=st.snomed_code)


def result_value_out(rv: ResultValue) -> s.ResultValueOut:
    return s.ResultValueOut(
        code=rv.code,
        name=rv.display_name,
        national_name=rv.pntm_name,
        snomed_code=rv.snomed_code,
        interpretation=rv.interpretation,
        report_required=rv.report_required,
    )


def rejection_reason_out(r: RejectionReason) -> s.CatalogEntryOut:
    return s.CatalogEntryOut(code=r.code, name=r.display_name, national_name=r.pntm_name)


def strategy_out(st: Strategy) -> s.StrategyOut:
    return s.StrategyOut(
        code=st.code,
        name=st.display_name,
        national_name=st.pntm_name,
        parent=st.parent.code if st.parent is not None else None,
        active_case_finding=st.active_case_finding,
    )


def document_type_out(d: IdentityDocumentType) -> s.DocumentTypeOut:
    return s.DocumentTypeOut(
        code=d.code,
        name=d.display_name,
        national_name=d.pntm_name,
        validator=d.validator,
        profile=d.profile_code,
        requires_issuing_country=d.requires_issuing_country,
    )


def insurance_out(i: HealthInsurance) -> s.InsuranceOut:
    return s.InsuranceOut(code=i.code, name=i.display_name, national_name=i.pntm_name, profile=i.profile_code)


def laboratory_out(lab: Laboratory) -> s.LaboratoryOut:
    return s.LaboratoryOut(
        platform_id=lab.platform_id, name=lab.name, territory=lab.territory.code, is_public=lab.is_public
    )


def establishment_out(est: Establishment) -> s.EstablishmentOut:
    return s.EstablishmentOut(
        code=est.code,
        name=est.name,
        kind=est.kind,
        territory=est.territory.code,
        is_public=est.is_public,
        laboratories=[a.laboratory.platform_id for a in est.assignments.all()],
    )
