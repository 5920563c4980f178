"""/samples: registration (one or a batch), reads (list, detail, chain of custody, results, report), and every
step of a sample's life. Endpoints only translate: wire schema -> service input -> service -> response schema."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any, Literal

import pydantic
from django.conf import settings
from django.http import FileResponse, HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router
from ninja.responses import Status
from pydantic import BaseModel, Field

from muestra.accounts.scoping import Actor
from muestra.api import schemas as s
from muestra.api import serializers
from muestra.api.auth import actor_of
from muestra.api.common import (
    ERRORS,
    after_id,
    audit_reads,
    present_sample,
    sample_not_found,
    sample_pk,
    visible_sample,
)
from muestra.api.errors import field_errors_from_pydantic
from muestra.api.idempotency import idempotent
from muestra.core.errors import FieldError, NotFound, ValidationFailed
from muestra.samples import selectors, services
from muestra.samples.inputs import PatientInput, SampleInput
from muestra.samples.models import Channel
from muestra.samples.services import ItemOutcome, ReportFile

router = Router(tags=["samples"])

PDF_MAGIC = b"%PDF-"


# --- wire -> service inputs -----------------------------------------------------------------------------------


def to_patient_input(data: s.PatientIn) -> PatientInput:
    return PatientInput(
        document_type=data.document_type,
        document_number=data.document_number,
        document_issuer=data.document_issuer,
        given_names=data.given_names,
        paternal_surname=data.paternal_surname,
        maternal_surname=data.maternal_surname,
        birth_date=data.birth_date,
        sex=data.sex,
        residence=data.residence,
        address=data.address,
        phone=data.phone,
        email=data.email,
        insurance=data.insurance,
        nationality=data.nationality,
        guardian=to_patient_input(data.guardian) if data.guardian is not None else None,
    )


def to_sample_input(data: s.SampleIn) -> SampleInput:
    return SampleInput(
        establishment=data.establishment,
        laboratory=data.laboratory,
        test=data.test,
        sample_type=data.sample_type,
        collected_at=data.collected_at,
        patient=to_patient_input(data.patient) if data.patient is not None else None,
        pool_members=[to_patient_input(m) for m in data.pool_members] if data.pool_members else None,
        strategy=data.strategy,
        substrategy=data.substrategy,
        active_case_finding=data.active_case_finding,
        client_code=data.client_code,
        tube_code=data.tube_code,
        responsible_run=data.responsible_run,
        ordering_physician_run=data.ordering_physician_run,
        without_medical_order=data.without_medical_order,
        surveillance_number=data.surveillance_number,
        answers=data.answers,
        result=data.result,
        result_at=data.result_at,
    )


def validation_failed(errors: list[FieldError]) -> ValidationFailed:
    message = errors[0].message if len(errors) == 1 else _("Some fields are invalid.")
    return ValidationFailed(message, errors=errors)


# --- registration ---------------------------------------------------------------------------------------------


@router.post(
    "",
    response={200: s.SampleOut, 201: s.SampleOut, **ERRORS},
    summary="Register a sample",
    description=(
        "Registers one sample (or a pooled tube with `pool_members`). 201 when created; 200 when a LIS retries "
        "with the same `client_code` and the same content (the stored sample is returned, nothing is written); "
        "409 when that code is already used by a different sample."
    ),
)
@idempotent
def sample_create(request: HttpRequest, payload: s.SampleIn) -> Status:
    actor = actor_of(request)
    sample, created = services.sample_register(actor=actor, data=to_sample_input(payload), channel=Channel.API)
    # The caller may see what it has just registered, so the service's instance is shown without a reload.
    return Status(201 if created else 200, serializers.sample_out(selectors.sample_just_written(sample)))


@router.post(
    "/batch",
    response={200: s.BatchOut, **ERRORS},
    summary="Register many samples, item by item",
    description=(
        "Each item is shaped like the body of `POST /samples` and gets its own outcome: `created`, `existing` "
        "(a LIS retry) or `error` with the reasons. Good items are stored, bad ones are not; the answer is 200 "
        "whenever the batch itself could be read. At most `MAX_BATCH_ITEMS` items."
    ),
)
@idempotent
def sample_create_batch(request: HttpRequest, payload: s.SampleBatchIn) -> s.BatchOut:
    actor = actor_of(request)
    max_items = settings.MUESTRA["MAX_BATCH_ITEMS"]
    if len(payload.items) > max_items:
        # The service refuses it too; checked first so a huge body is not parsed item by item for nothing.
        raise ValidationFailed(_("A batch holds at most %(max)d items.") % {"max": max_items}, field="items")
    wire_errors: dict[int, list[FieldError]] = {}
    inputs: list[tuple[int, SampleInput]] = []
    for index, raw in enumerate(payload.items):
        try:
            inputs.append((index, to_sample_input(s.SampleIn.model_validate(raw))))
        except pydantic.ValidationError as exc:
            wire_errors[index] = field_errors_from_pydantic(exc.errors(), strip_source=False)
    outcomes = services.sample_register_batch(actor=actor, items=[data for _i, data in inputs], channel=Channel.API)
    items: list[s.BatchItemOut | None] = [None] * len(payload.items)
    for index, errors in wire_errors.items():
        items[index] = s.BatchItemOut(index=index, status="error", sample=None, errors=serializers.field_errors(errors))
    for (index, _data), outcome in zip(inputs, outcomes, strict=True):
        if outcome.sample is None:
            items[index] = s.BatchItemOut(
                index=index, status="error", sample=None, errors=serializers.field_errors(outcome.errors)
            )
            continue
        items[index] = s.BatchItemOut(
            index=index,
            status="created" if outcome.created else "existing",
            sample=s.SampleRefOut(
                number=outcome.sample.number, state=outcome.sample.state, client_code=outcome.sample.client_code
            ),
            errors=[],
        )
    done = [item for item in items if item is not None]
    counts = s.BatchCounts(
        created=sum(1 for i in done if i.status == "created"),
        existing=sum(1 for i in done if i.status == "existing"),
        error=sum(1 for i in done if i.status == "error"),
    )
    return s.BatchOut(counts=counts, items=done)


# --- reads ----------------------------------------------------------------------------------------------------

StateName = Literal["registered", "dispatched", "received", "result", "rejected", "returned", "cancelled"]


class SampleListQuery(BaseModel):
    state: StateName | None = None
    establishment: str | None = Field(None, description="Establishment code")
    laboratory: int | None = Field(None, description="Lab platform id")
    disease: str | None = Field(None, description="Disease code")
    test: str | None = Field(None, description="Test code")
    collected_from: datetime | None = Field(None, description="Collected at or after (ISO 8601)")
    collected_to: datetime | None = Field(None, description="Collected before (ISO 8601)")
    updated_since: datetime | None = Field(None, description="Changed at or after (ISO 8601), for synchronisation")
    patient_document: str | None = Field(None, description="The patient's identity document number")
    cursor: str | None = Field(None, description="`next_cursor` of the previous page")
    limit: int = Field(selectors.DEFAULT_PAGE_SIZE, ge=1, le=selectors.MAX_PAGE_SIZE)


def _aware_or_none(value: datetime | None) -> datetime | None:
    return s._aware(value) if value is not None else None


@router.get(
    "",
    response={200: s.SamplePage, **ERRORS},
    summary="List samples",
    description=(
        "The samples the caller may see, oldest first, a page at a time: pass `next_cursor` back as `cursor` "
        "until it is null. Every returned sample is recorded in the audit trail (`sample.list`)."
    ),
)
def sample_list(request: HttpRequest, filters: Query[SampleListQuery]) -> s.SamplePage:
    actor = actor_of(request)
    page = selectors.sample_page(
        actor,
        selectors.SampleFilters(
            state=filters.state,
            establishment=filters.establishment,
            laboratory=filters.laboratory,
            disease=filters.disease,
            test=filters.test,
            collected_from=_aware_or_none(filters.collected_from),
            collected_to=_aware_or_none(filters.collected_to),
            updated_since=_aware_or_none(filters.updated_since),
            patient_document=filters.patient_document,
        ),
        after_id=after_id(filters.cursor),
        limit=filters.limit,
    )
    items = [serializers.sample_out(sample) for sample in page.items]
    audit_reads(actor, "sample.list", [item.number for item in items])
    return s.SamplePage(items=items, next_cursor=page.next_cursor)


@router.get("/{int:number}", response={200: s.SampleOut, **ERRORS}, summary="One sample")
def sample_detail(request: HttpRequest, number: int) -> s.SampleOut:
    actor = actor_of(request)
    out = serializers.sample_out(visible_sample(actor, number))
    audit_reads(actor, "sample.read", [out.number])
    return out


@router.get("/{int:number}/events", response={200: list[s.EventOut], **ERRORS}, summary="The sample's chain of custody")
def sample_event_list(request: HttpRequest, number: int) -> list[s.EventOut]:
    actor = actor_of(request)
    sample = visible_sample(actor, number)
    events = [serializers.event_out(e) for e in selectors.sample_events(actor, sample.pk)]
    audit_reads(actor, "sample.events.read", [sample.number])
    return events


@router.get(
    "/{int:number}/results",
    response={200: list[s.ResultVersionOut], **ERRORS},
    summary="Every version of the sample's result",
)
def sample_result_list(request: HttpRequest, number: int) -> list[s.ResultVersionOut]:
    actor = actor_of(request)
    sample = visible_sample(actor, number)
    results = [serializers.result_version_out(r, sample.number) for r in selectors.sample_results(actor, sample.pk)]
    audit_reads(actor, "sample.results.read", [sample.number])
    return results


@router.get(
    "/{int:number}/report",
    response={200: None, **ERRORS},
    summary="Download the signed result report (PDF)",
    description="The current result's report, or `?version=N` for an earlier version. Audited (`report.download`).",
    openapi_extra={
        "responses": {200: {"description": "The report file", "content": {"application/pdf": {"schema": {}}}}}
    },
)
def sample_report(request: HttpRequest, number: int, version: int | None = None) -> FileResponse:
    actor = actor_of(request)
    pk = sample_pk(number)
    result = selectors.sample_report(actor, pk, version)
    if result is None:
        if selectors.sample_get(actor, pk) is None:
            raise sample_not_found()
        raise NotFound(_("This sample has no report file."), field="report")
    audit_reads(actor, "report.download", [number], {"version": result.version})
    response = FileResponse(
        result.report.open("rb"),
        content_type=result.report_content_type or "application/pdf",
        as_attachment=True,
        filename=f"muestra-{number}-v{result.version}.pdf",
    )
    response["X-Content-SHA256"] = result.report_sha256
    return response


# --- edits before receipt -------------------------------------------------------------------------------------


@router.patch(
    "/{int:number}",
    response={200: s.SampleOut, **ERRORS},
    summary="Edit a sample the lab has not received yet",
    description="Send only the fields to change; `null` clears an optional code (strategy, substrategy).",
)
@idempotent
def sample_patch(request: HttpRequest, number: int, payload: s.SampleUpdateIn) -> s.SampleOut:
    actor = actor_of(request)
    changes = payload.model_dump(exclude_unset=True)
    sample = services.sample_update(actor=actor, sample_id=sample_pk(number), changes=changes, channel=Channel.API)
    return present_sample(actor, sample)


@router.post("/{int:number}/cancel", response={200: s.SampleOut, **ERRORS}, summary="Cancel a sample before dispatch")
@idempotent
def sample_cancel(request: HttpRequest, number: int, payload: s.ReasonIn) -> s.SampleOut:
    actor = actor_of(request)
    sample = services.sample_cancel(actor=actor, sample_id=sample_pk(number), reason=payload.reason)
    return present_sample(actor, sample)


# --- laboratory steps -----------------------------------------------------------------------------------------


@router.post(
    "/receive",
    response={200: s.ItemsOut, **ERRORS},
    summary="Receive many samples (a scan session)",
    description="Each number gets its own outcome: `received`, `already_received` (harmless repeat) or `error`.",
)
@idempotent
def sample_receive_many(request: HttpRequest, payload: s.ReceiveManyIn) -> s.ItemsOut:
    actor = actor_of(request)
    ids = [sample_pk(n) for n in payload.samples]
    outcomes = services.samples_receive(actor=actor, sample_ids=ids, received_at=payload.received_at)
    return items_out(actor, payload.samples, outcomes, ok="received", repeat="already_received")


def items_out(actor: Actor, numbers: list[int], outcomes: list[ItemOutcome], *, ok: str, repeat: str) -> s.ItemsOut:
    """Per-item outcomes of a many-sample step, in the order the numbers were sent."""
    stored = selectors.samples_by_ids(actor, [o.sample.pk for o in outcomes if o.sample is not None])
    items = []
    counts = {ok: 0, repeat: 0, "error": 0}
    for outcome, number in zip(outcomes, numbers, strict=True):
        status = "error" if outcome.sample is None else (ok if outcome.created else repeat)
        counts[status] += 1
        row = stored.get(outcome.sample.pk, outcome.sample) if outcome.sample is not None else None
        items.append(
            s.ItemOutcomeOut(
                index=outcome.index,
                number=number,
                status=status,
                sample=serializers.sample_out(row) if row is not None else None,
                errors=serializers.field_errors(outcome.errors),
            )
        )
    return s.ItemsOut(counts=counts, items=items)


@router.post(
    "/{int:number}/receive",
    response={200: s.SampleOut, **ERRORS},
    summary="Receive a sample at its destination lab",
    description="A repeated receipt is harmless and records nothing. Only the sample's destination lab may do it.",
)
@idempotent
def sample_receive(request: HttpRequest, number: int, payload: s.ReceiveIn | None = None) -> s.SampleOut:
    actor = actor_of(request)
    received_at = payload.received_at if payload is not None else None
    sample, _recorded = services.sample_receive(
        actor=actor, sample_id=sample_pk(number), received_at=received_at, channel=Channel.API
    )
    return present_sample(actor, sample)


@router.post("/{int:number}/reject", response={200: s.SampleOut, **ERRORS}, summary="Reject a sample")
@idempotent
def sample_reject(request: HttpRequest, number: int, payload: s.RejectIn) -> s.SampleOut:
    actor = actor_of(request)
    sample = services.sample_reject(
        actor=actor, sample_id=sample_pk(number), reason=payload.reason, note=payload.note, channel=Channel.API
    )
    return present_sample(actor, sample)


@router.post(
    "/{int:number}/return", response={200: s.SampleOut, **ERRORS}, summary="Return a sample to its establishment"
)
@idempotent
def sample_return(request: HttpRequest, number: int, payload: s.OptionalReasonIn | None = None) -> s.SampleOut:
    actor = actor_of(request)
    reason = payload.reason if payload is not None else ""
    sample = services.sample_return(actor=actor, sample_id=sample_pk(number), reason=reason, channel=Channel.API)
    return present_sample(actor, sample)


@router.post("/{int:number}/forward", response={200: s.SampleOut, **ERRORS}, summary="Forward a sample to another lab")
@idempotent
def sample_forward(request: HttpRequest, number: int, payload: s.ForwardIn) -> s.SampleOut:
    actor = actor_of(request)
    sample = services.sample_forward(
        actor=actor,
        sample_id=sample_pk(number),
        new_laboratory=payload.new_laboratory,
        reason=payload.reason,
        channel=Channel.API,
    )
    return present_sample(actor, sample)


# --- results --------------------------------------------------------------------------------------------------


def _form_fields_schema(*, correction: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "value": {"type": "string", "description": "Result value code (positive, negative...)"},
        "reported_at": {"type": "string", "format": "date-time"},
        "report": {"type": "string", "format": "binary", "description": "The signed PDF report"},
    }
    required = ["value"]
    if correction:
        properties["reason"] = {"type": "string"}
        required.append("reason")
    return {"type": "object", "properties": properties, "required": required}


def _result_body_doc(json_schema: type[s.ResultJsonIn], *, correction: bool) -> dict[str, Any]:
    # The body is read by hand (JSON or multipart), so ninja cannot describe it: it is declared here.
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": _form_fields_schema(correction=correction)},
                "application/json": {"schema": json_schema.model_json_schema()},
            },
        }
    }


def _parse_result_body(
    request: HttpRequest, json_schema: type[s.ResultJsonIn], form_schema: type[s.ResultFormIn]
) -> tuple[Any, ReportFile | None]:
    """The result fields and the report, from a multipart form (file part `report`) or JSON (`report_base64`)."""
    content_type = (request.content_type or "").lower()
    if content_type.startswith("multipart/") or content_type == "application/x-www-form-urlencoded":
        fields = {k: v for k, v in request.POST.items() if k != "csrfmiddlewaretoken"}
        try:
            data: Any = form_schema.model_validate(fields)
        except pydantic.ValidationError as exc:
            raise validation_failed(field_errors_from_pydantic(exc.errors(), strip_source=False)) from None
        upload = request.FILES.get("report")
        report = None
        if upload is not None:
            if upload.size is not None and upload.size > settings.MUESTRA["MAX_REPORT_BYTES"]:
                # Refused before reading it into memory (the service would refuse it after).
                raise ValidationFailed(_("The report file is too large."), field="report")
            report = ReportFile(upload.read(), "application/pdf", upload.name or "report.pdf")
        return data, _checked_pdf(report, "report")
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed(_("Enter a valid JSON."), code="invalid_json") from None
    try:
        data = json_schema.model_validate(body)
    except pydantic.ValidationError as exc:
        raise validation_failed(field_errors_from_pydantic(exc.errors(), strip_source=False)) from None
    report = None
    if data.report_base64:
        try:
            content = base64.b64decode(data.report_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationFailed(
                _("The report is not valid base64."), code="invalid_base64", field="report_base64"
            ) from None
        report = ReportFile(content, data.report_content_type or "application/pdf")
    return data, _checked_pdf(report, "report_base64")


def _checked_pdf(report: ReportFile | None, field: str) -> ReportFile | None:
    # The API promises a PDF: anything else is refused here, before it could be stored as a signed report.
    if report is not None and report.content and not report.content.startswith(PDF_MAGIC):
        raise ValidationFailed(_("The report must be a PDF file."), code="not_pdf", field=field)
    if report is not None:
        report.content_type = "application/pdf"
    return report


@router.post(
    "/{int:number}/result",
    response={200: s.SampleOut, 201: s.SampleOut, **ERRORS},
    summary="Deliver the result with its signed report",
    description=(
        "Multipart form (`value`, `reported_at`, file `report`) or JSON (`value`, `reported_at`, "
        "`report_base64`). 201 when recorded; 200 when the same result was already delivered (a LIS retry); "
        "409 when a different result exists (send a correction). Only the destination lab may deliver."
    ),
    openapi_extra=_result_body_doc(s.ResultJsonIn, correction=False),
)
@idempotent
def sample_result_deliver(request: HttpRequest, number: int) -> Status:
    actor = actor_of(request)
    pk = sample_pk(number)
    data, report = _parse_result_body(request, s.ResultJsonIn, s.ResultFormIn)
    result, recorded = services.result_deliver(
        actor=actor, sample_id=pk, value=data.value, reported_at=data.reported_at, report=report, channel=Channel.API
    )
    return Status(201 if recorded else 200, present_sample(actor, result.sample))


@router.post(
    "/{int:number}/result/correction",
    response={201: s.SampleOut, **ERRORS},
    summary="Correct the delivered result",
    description=(
        "Same body as the delivery, plus `reason`. Once within the correction window; later, or a second time, "
        "only with an administrator's authorisation (403 `authorisation_required` otherwise)."
    ),
    openapi_extra=_result_body_doc(s.ResultCorrectionJsonIn, correction=True),
)
@idempotent
def sample_result_correct(request: HttpRequest, number: int) -> Status:
    actor = actor_of(request)
    pk = sample_pk(number)
    data, report = _parse_result_body(request, s.ResultCorrectionJsonIn, s.ResultCorrectionFormIn)
    result = services.result_correct(
        actor=actor,
        sample_id=pk,
        value=data.value,
        reason=data.reason,
        reported_at=data.reported_at,
        report=report,
        channel=Channel.API,
    )
    return Status(201, present_sample(actor, result.sample))


@router.post(
    "/{int:number}/correction-authorisations",
    response={201: s.CorrectionAuthorisationOut, **ERRORS},
    summary="Authorise one more correction (national administrators)",
)
@idempotent
def sample_correction_authorise(request: HttpRequest, number: int, payload: s.ReasonIn) -> Status:
    actor = actor_of(request)
    authorisation = services.correction_authorise(
        actor=actor, sample_id=sample_pk(number), reason=payload.reason, channel=Channel.API
    )
    return Status(201, serializers.correction_authorisation_out(authorisation))
