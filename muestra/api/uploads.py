"""/uploads: bulk files (CSV or XLSX, national or Muestra templates) processed row by row in the background.

`POST /uploads` stores the file and answers 202 at once with the upload's id and a status URL; the same bytes sent
again by the same sender return the earlier upload (`repeat: true`) and change nothing. `GET /uploads/{id}` tells
its state and counts, `/outcomes` every row's outcome, `/report.xlsx` the outcome report. An upload of another lab
or establishment answers 404, exactly like a missing one. Formats: docs/uploads.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.http import FileResponse, HttpRequest
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from ninja import File, Form, Query, Router, UploadedFile
from ninja.responses import Status
from pydantic import BaseModel, Field

from muestra.accounts.scoping import Actor
from muestra.api.auth import actor_of
from muestra.api.common import ERRORS, page_after
from muestra.core.errors import NotFound
from muestra.integrations import selectors
from muestra.integrations.bulk import report, services
from muestra.integrations.bulk.templates import KINDS
from muestra.integrations.models import Intake, IntakeChannel, IntakeItem
from muestra.samples.selectors import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, public_number

router = Router(tags=["uploads"])

UploadKind = Literal["results-national", "samples-national", "results", "samples"]
OutcomeName = Literal["accepted", "unchanged", "rejected", "held"]
assert set(UploadKind.__args__) == set(KINDS)  # type: ignore[attr-defined]


class UploadOut(BaseModel):
    id: int
    kind: str
    filename: str
    state: Literal["received", "processing", "done", "failed"]
    total: int = Field(description="Rows in the file (counted before processing starts)")
    processed: int
    accepted: int = Field(description="Rows that changed something")
    unchanged: int = Field(description="Rows already recorded: nothing changed")
    rejected: int
    error: str = Field(description="Why the file as a whole could not be read (state failed)")
    received_at: datetime
    finished_at: datetime | None
    status_url: str
    outcomes_url: str
    report_url: str


class UploadAcceptedOut(UploadOut):
    repeat: bool = Field(description="True when the same file was already sent: this is the earlier upload")


class RowErrorOut(BaseModel):
    field: str
    code: str
    message: str


class RowOutcomeOut(BaseModel):
    row: int = Field(description="1 = the first row under the header")
    reference: str
    outcome: OutcomeName
    sample: int | None = Field(description="The sample's public number, when the row names a visible sample")
    errors: list[RowErrorOut]


class OutcomePage(BaseModel):
    items: list[RowOutcomeOut]
    next_cursor: str | None


class OutcomeQuery(BaseModel):
    outcome: OutcomeName | None = None
    cursor: str | None = None
    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)


def _not_found() -> NotFound:
    return NotFound(_("Upload not found."), field="upload")


def _visible(actor: Actor, upload_id: int) -> Intake:
    intake = selectors.intake_get(actor, upload_id)
    if intake is None or intake.channel != IntakeChannel.FILE:
        raise _not_found()
    return intake


def _present(intake: Intake) -> dict[str, object]:
    unchanged = intake.items.filter(outcome=IntakeItem.Outcome.UNCHANGED).count() if intake.accepted else 0
    return {
        "id": intake.pk,
        "kind": intake.kind,
        "filename": intake.filename,
        "state": intake.state,
        "total": intake.total,
        "processed": intake.processed,
        "accepted": intake.accepted - unchanged,
        "unchanged": unchanged,
        "rejected": intake.rejected,
        "error": intake.error,
        "received_at": intake.received_at,
        "finished_at": intake.finished_at,
        "status_url": reverse("api-v1:upload_detail", args=[intake.pk]),
        "outcomes_url": reverse("api-v1:upload_outcomes", args=[intake.pk]),
        "report_url": reverse("api-v1:upload_report", args=[intake.pk]),
    }


@router.post(
    "",
    response={202: UploadAcceptedOut, **ERRORS},
    summary="Upload a bulk file",
    description=(
        "Multipart form: `file` (CSV with `;`, `,` or tab delimiters, UTF-8 or Latin-1; or XLSX) and `kind`. "
        "Answers 202 with the upload's id; poll `status_url` until `state` is `done` (or `failed`). Sending the "
        "same bytes again returns the earlier upload with `repeat: true` and processes nothing again."
    ),
)
def upload_create(request: HttpRequest, file: File[UploadedFile], kind: Form[UploadKind]) -> Status:
    actor = actor_of(request)
    intake, created = services.upload_submit(
        actor=actor, kind=kind, filename=file.name or "", content=file.read(services.MAX_UPLOAD_BYTES + 1)
    )
    intake.refresh_from_db()
    return Status(202, UploadAcceptedOut(**_present(intake), repeat=not created))  # type: ignore[arg-type]


@router.get(
    "/{int:upload_id}",
    response={200: UploadOut, **ERRORS},
    summary="An upload's state and counts",
    url_name="upload_detail",
)
def upload_detail(request: HttpRequest, upload_id: int) -> UploadOut:
    return UploadOut(**_present(_visible(actor_of(request), upload_id)))  # type: ignore[arg-type]


@router.get(
    "/{int:upload_id}/outcomes",
    response={200: OutcomePage, **ERRORS},
    summary="Every row's outcome",
    description="In row order, paginated; `outcome` filters (e.g. `rejected` to fix and send them again).",
    url_name="upload_outcomes",
)
def upload_outcomes(request: HttpRequest, upload_id: int, filters: Query[OutcomeQuery]) -> OutcomePage:
    actor = actor_of(request)
    intake = _visible(actor, upload_id)
    items = selectors.intake_items(actor, intake.pk, outcome=filters.outcome).order_by("pk")
    page = page_after(items, filters.cursor, filters.limit)
    return OutcomePage(
        items=[
            RowOutcomeOut(
                row=i.position,
                reference=i.reference,
                outcome=i.outcome,  # type: ignore[arg-type]
                sample=public_number(i.sample_id) if i.sample_id else None,
                errors=[RowErrorOut(**e) for e in i.errors],
            )
            for i in page.items
        ],
        next_cursor=page.next_cursor,
    )


@router.get(
    "/{int:upload_id}/report.xlsx",
    response={200: None, **ERRORS},
    summary="The outcome report (XLSX)",
    description="One line per row: row, reference, outcome, field and reason (in the uploader's language), sample.",
    url_name="upload_report",
)
def upload_report(request: HttpRequest, upload_id: int) -> FileResponse:
    actor = actor_of(request)
    intake = _visible(actor, upload_id)
    return FileResponse(
        report.xlsx_file(selectors.intake_items(actor, intake.pk)),
        as_attachment=True,
        filename=f"upload-{intake.pk}-outcomes.xlsx",
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
