"""Results that arrived by HL7 whose sample could not be identified without doubt ("held"): the lab's staff see
what the message said, search the sample within their scope and confirm it; the result is then applied through the
same services (`integrations.hl7.processing.held_resolve`). Nothing is ever matched automatically."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from muestra.core.errors import DomainError
from muestra.integrations.hl7 import er7, processing
from muestra.samples import selectors
from muestra.samples.models import Sample
from muestra.samples.selectors import SampleFilters
from muestra.web.access import request_actor, staff_required
from muestra.web.forms import add_domain_error
from muestra.web.matching.forms import ConfirmForm, SearchForm

PAGE_SIZE = 25
MAX_CANDIDATES = 20


def _lab_actor(request: HttpRequest) -> Any:
    actor = request_actor(request)
    if not actor.laboratory_ids:
        raise Http404
    return actor


@staff_required
def held_list(request: HttpRequest) -> HttpResponse:
    actor = _lab_actor(request)
    page = Paginator(processing.held_items(actor), PAGE_SIZE).get_page(request.GET.get("page"))
    items = list(page.object_list)
    for item in items:
        item.collected_at = er7.parse_ts(str(item.data.get("collected", "")))  # type: ignore[attr-defined]
    return render(request, "web/matching/list.html", {"page": page, "items": items})


def _candidates(actor: Any, text: str) -> list[Sample]:
    """The samples of the actor's labs a person's search names: number or tube barcode, or the patient's document."""
    if not text:
        return []
    found: dict[int, Sample] = {}
    scanned = selectors.sample_by_scan(actor, text)
    if scanned is not None:
        found[scanned.pk] = scanned
    by_document = selectors.sample_list(actor, SampleFilters(patient_document=text))[:MAX_CANDIDATES]
    for sample in selectors.samples_complete(list(by_document)):
        found.setdefault(sample.pk, sample)
    return [s for s in found.values() if s.laboratory_id in actor.laboratory_ids]


@staff_required
@require_http_methods(["GET", "POST"])
def held_detail(request: HttpRequest, item_id: int) -> HttpResponse:
    actor = _lab_actor(request)
    item = processing.held_get(actor, item_id)
    if item is None:
        raise Http404
    item.collected_at = er7.parse_ts(str(item.data.get("collected", "")))  # type: ignore[attr-defined]
    search = SearchForm(request.GET or None, initial={"q": (item.data.get("patient") or {}).get("document", "")})
    text = search.cleaned_data["q"] if search.is_valid() else ""
    confirm = ConfirmForm(request.POST or None)
    if request.method == "POST" and confirm.is_valid():
        sample_id = selectors.pk_from_public_number(confirm.cleaned_data["sample"])
        try:
            if sample_id is None:
                raise Http404
            new = processing.held_resolve(actor=actor, item_id=item.pk, sample_id=sample_id)
        except DomainError as exc:
            add_domain_error(confirm, exc, {"sample": "sample"})
        else:
            messages.success(
                request,
                _("The result was recorded on sample %(number)s.") % {"number": confirm.cleaned_data["sample"]}
                if new.outcome == "accepted"
                else _("Sample %(number)s already had this result.") % {"number": confirm.cleaned_data["sample"]},
            )
            return redirect("matching:list")
        text = text or str(confirm.data.get("sample", ""))
    context = {
        "item": item,
        "data": item.data,
        "search": search if request.method == "GET" else SearchForm(initial={"q": text}),
        "candidates": _candidates(actor, text),
        "searched": bool(text),
        "confirm": confirm,
    }
    return render(request, "web/matching/detail.html", context)
