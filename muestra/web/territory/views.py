"""Read-only lists of a territory's samples for health-authority viewers and national administrators, with export.

What a person sees is decided by `scoped()` (a viewer: the establishments inside their territory; an
administrator: everything). Other roles get 404, as for a page that does not exist. Both the list and the export
show patients' identities, so both are recorded in the audit trail (ids and filters only, never names).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from muestra.accounts.scoping import Actor
from muestra.audit.services import AuditItem, audit_record_many
from muestra.samples import selectors
from muestra.samples.models import Channel, Sample, SampleState
from muestra.web.access import request_actor, staff_required
from muestra.web.territory import export
from muestra.web.territory.forms import TerritoryFilterForm
from muestra.web.territory.nav import may_use

PAGE_SIZE = 50
#: Rows read per query while an export is written (bounded memory and query count per thousand rows).
EXPORT_CHUNK = 500
FORMATS = ("csv", "xlsx")

STATE_TONE: dict[str, str] = {
    SampleState.RESULT: "good",
    SampleState.REJECTED: "bad",
    SampleState.CANCELLED: "neutral",
    SampleState.RETURNED: "bad",
}


def export_max_rows() -> int:
    return int(getattr(settings, "MUESTRA_EXPORT_MAX_ROWS", 10_000))


def detail_url(number: int) -> str:
    """The sample's page (with its timeline), or "" while that page does not exist."""
    try:
        return reverse("mysamples:detail", args=[number])
    except NoReverseMatch:
        return ""


def _actor_or_404(request: HttpRequest) -> Actor:
    actor = request_actor(request)
    if not may_use(actor):
        raise Http404
    return actor


def _audit_reads(actor: Actor, numbers: Sequence[int], facts: dict[str, Any]) -> None:
    """One entry per sample whose patient was shown, like the APIs' reads (ids and facts only)."""
    data = {"channel": Channel.WEB.value, **facts}
    audit_record_many(actor=actor.label, items=[AuditItem("sample.read", "sample", n, data) for n in numbers])


@require_GET
@staff_required
def sample_list(request: HttpRequest) -> HttpResponse:
    actor = _actor_or_404(request)
    form = TerritoryFilterForm(request.GET, actor=actor)
    page = None
    rows: list[dict[str, Any]] = []
    if form.is_valid():
        paginator = Paginator(selectors.sample_list(actor, form.filters()), PAGE_SIZE)
        page = paginator.get_page(request.GET.get("page"))
        samples = selectors.samples_complete(list(page.object_list))
        rows = [{"sample": s, "url": detail_url(s.number), "tone": STATE_TONE.get(s.state, "")} for s in samples]
        if samples:
            _audit_reads(actor, [s.number for s in samples], {"view": "territory.list"})
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "rows": rows,
        "query": query.urlencode(),
        "export_max_rows": number_format(export_max_rows(), force_grouping=True),
    }
    template = "web/territory/_results.html" if request.headers.get("HX-Request") else "web/territory/list.html"
    return render(request, template, context)


def _export_rows(actor: Actor, form: TerritoryFilterForm, ids: list[int]) -> Iterator[Sample]:
    """The selected samples in list order, read a chunk at a time (scoped again on every read)."""
    base = selectors.sample_list(actor, form.filters())
    for start in range(0, len(ids), EXPORT_CHUNK):
        chunk = ids[start : start + EXPORT_CHUNK]
        yield from selectors.samples_complete(list(base.filter(pk__in=chunk)))


@require_GET
@staff_required
def sample_export(request: HttpRequest, fmt: str) -> HttpResponse:
    actor = _actor_or_404(request)
    if fmt not in FORMATS:
        raise Http404
    form = TerritoryFilterForm(request.GET, actor=actor)
    back = f"{reverse('territory:list')}?{request.GET.urlencode()}"
    if not form.is_valid():
        return redirect(back)  # the list shows what is wrong with the filters, next to each field
    cap = export_max_rows()
    ids = list(selectors.sample_list(actor, form.filters()).values_list("pk", flat=True)[: cap + 1])
    if len(ids) > cap:
        messages.error(
            request,
            _(
                "The export is limited to %(max)s samples and these filters select more. Narrow them "
                "(for example a shorter date range or one establishment) and export again."
            )
            % {"max": number_format(cap, force_grouping=True)},
        )
        return redirect(back)
    export_id = uuid.uuid4().hex[:16]
    audit_record_many(
        actor=actor.label,
        items=[
            AuditItem(
                "samples.export",
                "export",
                export_id,
                {"channel": Channel.WEB.value, "format": fmt, "rows": len(ids), "filters": form.applied()},
            ),
            *(
                AuditItem(
                    "sample.read",
                    "sample",
                    Sample(pk=pk).number,
                    {"channel": Channel.WEB.value, "view": "territory.export", "export": export_id},
                )
                for pk in ids
            ),
        ],
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    filename = f"muestra-samples-{stamp}.{fmt}"
    samples = _export_rows(actor, form, ids)
    if fmt == "csv":
        response: HttpResponseBase = StreamingHttpResponse(
            export.csv_stream(samples), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    else:
        response = FileResponse(
            export.xlsx_file(samples, sheet_title=_("Samples")),
            as_attachment=True,
            filename=filename,
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    response["Cache-Control"] = "no-store"
    return cast(HttpResponse, response)  # streamed or file responses: same headers, a different body
