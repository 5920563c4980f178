"""Bulk files in the staff screens: my uploads, sending one, following its progress, and its outcome report.

Lab staff (results and samples) and establishment users (samples) may use it; everyone else gets 404. The list and
each upload are read through the intake log's selectors (`scoped`): a lab sees its lab's uploads, an establishment
its establishment's, and an upload of another scope answers 404 like a missing one. The upload itself is
`bulk.services.upload_submit` (stored, processed in the background by the task worker).
"""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from muestra.accounts.scoping import Actor
from muestra.core.errors import DomainError
from muestra.integrations import selectors
from muestra.integrations.bulk import report, services
from muestra.integrations.bulk.templates import KINDS, template_csv, template_xlsx
from muestra.integrations.models import Intake, IntakeChannel, IntakeItem
from muestra.web.access import request_actor, staff_required
from muestra.web.forms import add_domain_error
from muestra.web.uploads.forms import UploadForm

PAGE_SIZE = 25
ROWS_PAGE_SIZE = 50
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STATE_TONE: dict[str, str] = {Intake.State.DONE: "good", Intake.State.FAILED: "bad"}


def _actor_or_404(request: HttpRequest) -> Actor:
    actor = request_actor(request)
    if not services.may_upload(actor):
        raise Http404
    return actor


def _upload_or_404(actor: Actor, pk: int) -> Intake:
    intake = selectors.intake_get(actor, pk)
    if intake is None or intake.channel != IntakeChannel.FILE:
        raise Http404
    return intake


@staff_required
@require_http_methods(["GET", "POST"])
def upload_list(request: HttpRequest) -> HttpResponse:
    actor = _actor_or_404(request)
    kinds = services.kinds_for(actor)
    form = UploadForm(request.POST or None, request.FILES or None, kinds=kinds)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            intake, created = services.upload_submit(
                actor=actor,
                kind=form.cleaned_data["kind"],
                filename=upload.name or "",
                content=upload.read(services.MAX_UPLOAD_BYTES + 1),
            )
        except DomainError as exc:
            add_domain_error(form, exc, {"kind": "kind", "file": "file"})
        else:
            if not created:
                messages.info(
                    request, _("This file was already uploaded: here is that upload. Nothing was changed again.")
                )
            return redirect("uploads:detail", pk=intake.pk)
    uploads = selectors.intakes(actor).filter(channel=IntakeChannel.FILE).select_related("submitted_by", "api_key")
    page = Paginator(uploads, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "web/uploads/list.html",
        {"form": form, "page": page, "kinds": kinds, "labels": {k.code: k.label for k in KINDS.values()}},
        status=422 if request.method == "POST" else 200,
    )


def _status_context(actor: Actor, intake: Intake, page_number: str | None) -> dict[str, object]:
    # Rows fixed and re-processed since (supervision page) are no longer rejected: their new outcome stands.
    rejected = selectors.intake_items(actor, intake.pk, outcome=IntakeItem.Outcome.REJECTED).filter(
        superseded_by__isnull=True
    )
    unchanged = (
        selectors.intake_items(actor, intake.pk, outcome=IntakeItem.Outcome.UNCHANGED).count()
        if intake.state in (Intake.State.DONE, Intake.State.FAILED)
        else 0
    )
    running = intake.state in (Intake.State.RECEIVED, Intake.State.PROCESSING)

    return {
        "upload": intake,
        "kind_label": KINDS[intake.kind].label if intake.kind in KINDS else intake.kind,
        "running": running,
        "percent": int(100 * intake.processed / intake.total) if intake.total else (0 if running else 100),
        "unchanged": unchanged,
        "changed": intake.accepted - unchanged,
        "rejected_page": None if running else Paginator(rejected, ROWS_PAGE_SIZE).get_page(page_number),
        "tone": STATE_TONE.get(intake.state, "neutral"),
    }


@staff_required
@require_GET
def upload_detail(request: HttpRequest, pk: int) -> HttpResponse:
    actor = _actor_or_404(request)
    intake = _upload_or_404(actor, pk)
    context = _status_context(actor, intake, request.GET.get("page"))
    if request.headers.get("HX-Request"):
        return render(request, "web/uploads/_status.html", context)
    return render(request, "web/uploads/detail.html", context)


@staff_required
@require_GET
def upload_report(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    actor = _actor_or_404(request)
    intake = _upload_or_404(actor, pk)
    if fmt not in report.FORMATS:
        raise Http404
    items = selectors.intake_items(actor, intake.pk)
    name = f"upload-{intake.pk}-outcomes.{fmt}"
    if fmt == "csv":
        response = StreamingHttpResponse(report.csv_stream(items), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return cast(HttpResponse, response)
    return cast(
        HttpResponse, FileResponse(report.xlsx_file(items), as_attachment=True, filename=name, content_type=XLSX)
    )


@staff_required
@require_GET
def template_download(request: HttpRequest, kind: str, fmt: str) -> HttpResponse:
    _actor_or_404(request)
    found = KINDS.get(kind)
    if found is None or fmt not in ("csv", "xlsx"):
        raise Http404
    if fmt == "csv":
        response = HttpResponse(template_csv(found), content_type="text/csv; charset=utf-8")
    else:
        response = HttpResponse(template_xlsx(found), content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="muestra-{kind}.{fmt}"'
    return response
