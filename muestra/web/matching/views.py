"""Results of every lab channel (HL7, FHIR) whose sample could not be identified without doubt ("held"): the lab's
staff see what the sender said, search the sample within their scope and confirm it, or dismiss the result with a
reason (not theirs, a duplicate). Both go through `integrations.matching`; nothing is ever matched automatically."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from muestra.accounts.scoping import Actor
from muestra.core.errors import DomainError, NotFound
from muestra.integrations import matching
from muestra.samples import selectors
from muestra.web.access import actor_or_404, staff_required
from muestra.web.forms import add_domain_error
from muestra.web.matching.forms import ConfirmForm, DismissForm, SearchForm

PAGE_SIZE = 25


def _lab_actor(request: HttpRequest) -> Actor:
    return actor_or_404(request, lambda actor: actor.laboratory_ids)


@staff_required
def held_list(request: HttpRequest) -> HttpResponse:
    actor = _lab_actor(request)
    page = Paginator(matching.held_items(actor), PAGE_SIZE).get_page(request.GET.get("page"))
    items = [matching.describe(item) for item in page.object_list]
    return render(request, "web/matching/list.html", {"page": page, "items": items})


@staff_required
@require_http_methods(["GET", "POST"])
def held_detail(request: HttpRequest, item_id: int) -> HttpResponse:
    actor = _lab_actor(request)
    item = matching.held_get(actor, item_id)
    if item is None:
        raise Http404
    summary = matching.describe(item)
    search = SearchForm(request.GET or None, initial={"q": summary.patient_document})
    text = search.cleaned_data["q"] if search.is_valid() else ""
    action = request.POST.get("action", "confirm") if request.method == "POST" else ""
    confirm = ConfirmForm(request.POST if action == "confirm" else None)
    dismiss = DismissForm(request.POST if action == "dismiss" else None)
    if action == "confirm" and confirm.is_valid():
        number = confirm.cleaned_data["sample"]
        try:
            sample_id = selectors.pk_from_public_number(number)
            if sample_id is None:
                raise NotFound(_("Unknown sample."), field="sample")
            new = matching.held_resolve(actor=actor, item_id=item.pk, sample_id=sample_id)
        except DomainError as exc:
            add_domain_error(confirm, exc, {"sample": "sample"})
        else:
            messages.success(
                request,
                _("The result was recorded on sample %(number)s.") % {"number": number}
                if new.outcome == "accepted"
                else _("Sample %(number)s already had this result.") % {"number": number},
            )
            return redirect("matching:list")
        text = text or str(confirm.data.get("sample", ""))
    elif action == "dismiss" and dismiss.is_valid():
        try:
            matching.held_dismiss(actor=actor, item_id=item.pk, reason=dismiss.cleaned_data["reason"])
        except DomainError as exc:
            add_domain_error(dismiss, exc, {"reason": "reason"})
        else:
            messages.success(request, _("The result was dismissed; it stays in the intake log with your reason."))
            return redirect("matching:list")
    context: dict[str, Any] = {
        "item": item,
        "summary": summary,
        "search": search if request.method == "GET" else SearchForm(initial={"q": text}),
        "candidates": matching.candidate_samples(actor, text),
        "searched": bool(text),
        "confirm": confirm,
        "dismiss": dismiss,
    }
    return render(request, "web/matching/detail.html", context)
