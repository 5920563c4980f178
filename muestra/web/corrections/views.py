"""The national administrator's screen of late-correction requests: the pending ones (sample, lab, current and
proposed result, reason) and the decided ones; each is authorised or declined with a note.

Only national administrators open these pages; anyone else gets 404, as for a missing record.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from muestra.accounts.scoping import Actor
from muestra.core.errors import DomainError
from muestra.samples import selectors, services
from muestra.samples.models import Channel, CorrectionRequest
from muestra.web.access import actor_or_404, staff_required
from muestra.web.corrections.forms import DecisionForm
from muestra.web.forms import add_domain_error

PAGE_SIZE = 50


def _admin_actor(request: HttpRequest) -> Actor:
    return actor_or_404(request, lambda actor: actor.is_admin)


@staff_required
def request_list(request: HttpRequest) -> HttpResponse:
    actor = _admin_actor(request)
    tab = "decided" if request.GET.get("tab") == "decided" else "pending"
    queryset = selectors.correction_requests(actor, state="pending" if tab == "pending" else None)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = selectors.correction_requests_complete(list(page.object_list))
    context: dict[str, Any] = {
        "tab": tab,
        "rows": rows,
        "page": page,
        "pending_count": selectors.pending_correction_request_count(actor),
    }
    return render(request, "web/corrections/list.html", context)


@staff_required
@require_http_methods(["GET", "POST"])
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    actor = _admin_actor(request)
    correction_request = selectors.correction_request_get(actor, pk)
    if correction_request is None:
        raise Http404
    form = DecisionForm(request.POST or None)
    status = 200
    if request.method == "POST":
        authorise = request.POST.get("decision") == "authorise"
        if request.POST.get("decision") not in {"authorise", "decline"}:
            form.add_error(None, _("Choose to authorise or to decline."))
        elif form.is_valid():
            try:
                services.correction_request_decide(
                    actor=actor,
                    request_id=correction_request.pk,
                    authorise=authorise,
                    note=form.cleaned_data["note"],
                    channel=Channel.WEB,
                )
            except DomainError as exc:
                add_domain_error(form, exc, {"note": "note"})
            else:
                number = correction_request.sample.number
                messages.success(
                    request,
                    (
                        _("Correction of sample %(number)s authorised: the laboratory may now correct it once.")
                        if authorise
                        else _("Correction request for sample %(number)s declined.")
                    )
                    % {"number": number},
                )
                return redirect("corrections:list")
        status = 422
    results = selectors.sample_results(actor, correction_request.sample_id)
    context = {
        "cr": correction_request,
        "form": form,
        "results": results,
        "pending": correction_request.state == CorrectionRequest.State.PENDING,
    }
    return render(request, "web/corrections/decide.html", context, status=status)
