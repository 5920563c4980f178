"""My samples: the establishment's samples by state, a sample's full record and timeline, its tube label, and the
edits allowed before the lab receives it.

The list is for sample takers and establishment managers (their establishments). A sample's detail page is open to
every role that sees the sample through scoping (lab, authority viewer, administrator), with the actions each
may take. Reads of personal data and results are audited as the REST API audits them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from muestra.accounts.scoping import Actor
from muestra.api.common import audit_reads
from muestra.core.errors import DomainError
from muestra.facilities.models import Establishment
from muestra.samples import documents, lookups, selectors, services
from muestra.samples.models import Channel, EventKind, Result, Sample, SampleEvent, SampleState
from muestra.samples.states import ALLOWED_FROM, Step
from muestra.web.access import request_actor, staff_required
from muestra.web.forms import add_domain_error
from muestra.web.mysamples.forms import SampleCancelForm, SampleEditForm

S = SampleState
PAGE_SIZE = 25
SEARCH_MAX = 100


@dataclass(frozen=True)
class Tab:
    key: str
    label: Promise
    states: tuple[str, ...]


TABS = (
    Tab("to_send", gettext_lazy("To send"), (S.REGISTERED,)),
    Tab("sent", gettext_lazy("Sent"), (S.DISPATCHED,)),
    Tab("received", gettext_lazy("Received"), (S.RECEIVED,)),
    Tab("result", gettext_lazy("With result"), (S.RESULT,)),
    Tab("rejected", gettext_lazy("Rejected or returned"), (S.REJECTED, S.RETURNED)),
    Tab("cancelled", gettext_lazy("Cancelled"), (S.CANCELLED,)),
)
TAB_BY_KEY = {tab.key: tab for tab in TABS}

#: How each state looks in a badge: good news, bad news, or on its way.
STATE_TONE = {
    S.REGISTERED: "neutral",
    S.DISPATCHED: "neutral",
    S.RECEIVED: "neutral",
    S.RESULT: "good",
    S.REJECTED: "bad",
    S.RETURNED: "bad",
    S.CANCELLED: "bad",
}

#: Steps taken at the laboratory: the timeline names the lab as the place; other steps name the establishment.
LAB_EVENTS = {
    EventKind.RECEIVED,
    EventKind.REJECTED,
    EventKind.RETURNED,
    EventKind.FORWARDED,
    EventKind.RESULT_DELIVERED,
    EventKind.RESULT_CORRECTED,
    EventKind.MISSING,
    EventKind.DAMAGED,
}


def _establishment_side(actor: Actor) -> None:
    """The list and the label sheet belong to sample takers and establishment managers; anyone else gets 404."""
    if not actor.establishment_ids:
        raise Http404


def _visible_sample(actor: Actor, number: int) -> Sample:
    sample = selectors.sample_get(actor, selectors.pk_from_public_number(number))
    if sample is None:
        raise Http404
    return sample


def may_print_label(actor: Actor, sample: Sample) -> bool:
    """The establishment that took the sample and the lab that holds it print labels; read-only roles do not."""
    return services.may_write(actor) and (
        actor.acts_for_establishment(sample.establishment_id) or actor.acts_for_laboratory(sample.laboratory_id)
    )


def _establishment_may_change(actor: Actor, sample: Sample, step: Step) -> bool:
    """Whether to offer an edit or cancel: the establishment's side, the state table, and not a pool member.
    The service decides again when the form is sent."""
    side = actor.acts_for_establishment(sample.establishment_id) or (
        sample.client_lab_id is not None and actor.acts_for_laboratory(sample.client_lab_id)
    )
    return services.may_write(actor) and side and sample.pool_id is None and sample.state in ALLOWED_FROM[step]


def _state_badge(state: str) -> dict[str, Any]:
    return {"label": S(state).label, "tone": STATE_TONE.get(S(state), "neutral")}


# --- the list ----------------------------------------------------------------------------------------------------


@staff_required
def sample_list(request: HttpRequest) -> HttpResponse:
    actor = request_actor(request)
    _establishment_side(actor)
    establishments = sorted(
        (e for pk in actor.establishment_ids if (e := lookups.by_pk(Establishment, pk)) is not None),
        key=lambda e: e.name,
    )
    chosen = request.GET.get("est", "")
    ids = [e.pk for e in establishments if e.code == chosen] or [e.pk for e in establishments]
    search = request.GET.get("q", "").strip()[:SEARCH_MAX]
    tab = TAB_BY_KEY.get(request.GET.get("tab", ""), TABS[0])

    base = selectors.establishment_samples(actor, ids, search=search)
    counts = selectors.sample_state_counts(base)
    tabs = [{"tab": t, "count": sum(counts.get(s, 0) for s in t.states)} for t in TABS]
    total = next(item["count"] for item in tabs if item["tab"] is tab)

    paginator = Paginator(selectors.establishment_sample_list(base, tab.states), PAGE_SIZE)
    # The tab's count is already known: spare the paginator its own COUNT query.
    paginator.count = total  # type: ignore[misc,assignment]
    page = paginator.get_page(request.GET.get("page"))
    rows = selectors.samples_complete(list(page.object_list))
    if rows:
        audit_reads(actor, "sample.list", [s.number for s in rows], channel=Channel.WEB)

    query = {"q": search, "tab": tab.key}
    if len(establishments) > 1 and chosen in {e.code for e in establishments}:
        query["est"] = chosen
    context = {
        "tabs": tabs,
        "tab": tab,
        "search": search,
        "establishments": establishments,
        "chosen_establishment": chosen,
        "page": page,
        "rows": [{"sample": s, "state": _state_badge(s.state)} for s in rows],
        "query": query,
        "tab_query": urlencode({k: v for k, v in query.items() if k != "tab" and v}),
        "page_query": urlencode({k: v for k, v in query.items() if v}),
        "max_labels": documents.MAX_LABELS,
    }
    template = "web/mysamples/_results.html" if request.headers.get("HX-Request") else "web/mysamples/list.html"
    return render(request, template, context)


# --- labels ------------------------------------------------------------------------------------------------------


def _pdf_response(content: bytes, filename: str, *, attachment: bool = False) -> HttpResponse:
    response = HttpResponse(content, content_type="application/pdf")
    disposition = "attachment" if attachment else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@staff_required
def label(request: HttpRequest, number: int) -> HttpResponse:
    """The tube label of one sample, sized for a label printer (50 × 25 mm)."""
    actor = request_actor(request)
    sample = _visible_sample(actor, number)
    if not may_print_label(actor, sample):
        raise Http404
    content = documents.labels_pdf([documents.label_data(sample)])
    audit_reads(actor, "sample.label.print", [sample.number], channel=Channel.WEB)
    return _pdf_response(content, f"muestra-label-{sample.number}.pdf")


def _numbers(values: Sequence[str]) -> list[int]:
    seen: dict[int, None] = {}
    for value in values:
        text = value.strip()
        if text.isdigit():
            seen.setdefault(int(text), None)
    return list(seen)


@staff_required
def labels(request: HttpRequest) -> HttpResponse:
    """The labels of the selected samples: an A4 sheet in a grid, or one label per page for a label printer."""
    actor = request_actor(request)
    _establishment_side(actor)
    numbers = _numbers(request.GET.getlist("n"))
    back = request.GET.get("back", "")
    back_url = back if back.startswith(reverse("mysamples:list")) else reverse("mysamples:list")
    if not numbers:
        messages.error(request, _("Select at least one sample to print its label."))
        return redirect(back_url)
    if len(numbers) > documents.MAX_LABELS:
        messages.error(request, _("At most %(max)d labels can be printed at once.") % {"max": documents.MAX_LABELS})
        return redirect(back_url)
    pks = [selectors.pk_from_public_number(n) for n in numbers]
    found = selectors.samples_by_ids(actor, [pk for pk in pks if pk is not None])
    samples = [found.get(pk) for pk in pks if pk is not None]
    # Any number that is unknown, out of scope or not printable by this person: 404, like a single missing one.
    if len(samples) != len(numbers) or not all(s is not None and may_print_label(actor, s) for s in samples):
        raise Http404
    printable = [s for s in samples if s is not None]
    sheet = request.GET.get("layout", "sheet") != "roll"
    content = documents.labels_pdf([documents.label_data(s) for s in printable], sheet=sheet)
    audit_reads(actor, "sample.label.print", [s.number for s in printable], channel=Channel.WEB)
    return _pdf_response(content, "muestra-labels.pdf")


# --- the detail page ---------------------------------------------------------------------------------------------


@dataclass
class TimelineEntry:
    event: SampleEvent
    title: str
    who: str
    where: str
    channel: str
    details: list[tuple[str, str]]
    shipment_number: int | None = None


def _who(event: SampleEvent) -> str:
    if event.actor_user is not None:
        return event.actor_user.get_full_name() or event.actor_user.username
    if event.actor.startswith("apikey:"):
        return _("Connected system (API key)")
    if event.actor == "system":
        return _("Muestra (automatic)")
    return event.actor


def _field_label(name: str) -> str:
    try:
        field = Sample._meta.get_field(name)
    except Exception:  # an old event may name a field that no longer exists
        return name
    return str(getattr(field, "verbose_name", name))


def _event_details(event: SampleEvent) -> list[tuple[str, str]]:
    data = event.data or {}
    details: list[tuple[str, str]] = []
    if event.reason:
        details.append((_("Reason"), event.reason))
    if data.get("result"):
        value = lookups.result_value(data["result"])
        details.append((_("Result"), value.display_name if value is not None else str(data["result"])))
    if event.kind == EventKind.REJECTED and data.get("reason"):
        reason = lookups.rejection_reason(data["reason"])
        details.append((_("Rejection reason"), reason.display_name if reason is not None else str(data["reason"])))
    if event.kind == EventKind.FORWARDED and data.get("to_laboratory"):
        lab = lookups.laboratory(data["to_laboratory"])
        details.append((_("Forwarded to"), lab.name if lab is not None else str(data["to_laboratory"])))
    if event.kind == EventKind.EDITED and data.get("fields"):
        details.append((_("Changed"), ", ".join(_field_label(name) for name in data["fields"])))
    if data.get("pool"):
        details.append((_("Pooled tube"), str(data["pool"])))
    if data.get("implicit"):
        details.append((_("Note"), _("Recorded when the laboratory delivered the result.")))
    return details


def timeline(events: Sequence[SampleEvent]) -> list[TimelineEntry]:
    entries = []
    for event in events:
        place = event.laboratory if event.kind in LAB_EVENTS else event.establishment
        shipment = event.data.get("shipment") if isinstance(event.data, dict) else None
        entries.append(
            TimelineEntry(
                event=event,
                title=str(EventKind(event.kind).label) if event.kind in EventKind.values else event.kind,
                who=_who(event),
                where=place.name if place is not None else "",
                channel=str(Channel(event.channel).label) if event.channel in Channel.values else event.channel,
                details=_event_details(event),
                shipment_number=int(shipment) if isinstance(shipment, int | str) and str(shipment).isdigit() else None,
            )
        )
    return entries


@staff_required
def detail(request: HttpRequest, number: int) -> HttpResponse:
    actor = request_actor(request)
    sample = _visible_sample(actor, number)
    events = selectors.sample_events(actor, sample.pk)
    results: list[Result] = selectors.sample_results(actor, sample.pk)
    audit_reads(actor, "sample.read", [sample.number], channel=Channel.WEB)
    if results:
        audit_reads(actor, "sample.results.read", [sample.number], channel=Channel.WEB)
    members = list(sample.members.all()) if sample.is_pool else []
    context = {
        "sample": sample,
        "patient": sample.patient,
        "state": _state_badge(sample.state),
        "timeline": timeline(events),
        "results": list(reversed(results)),
        "members": members,
        "pool_number": selectors.public_number(sample.pool_id) if sample.pool_id else None,
        "shipment_number": selectors.public_number(sample.shipment_id) if sample.shipment_id else None,
        "can_label": may_print_label(actor, sample),
        "can_edit": _establishment_may_change(actor, sample, Step.EDIT),
        "can_cancel": _establishment_may_change(actor, sample, Step.CANCEL),
        "from_list": bool(actor.establishment_ids),
    }
    return render(request, "web/mysamples/detail.html", context)


@staff_required
def report(request: HttpRequest, number: int) -> HttpResponse:
    """The signed result report (PDF), streamed from storage; audited like the API's download."""
    actor = request_actor(request)
    pk = selectors.pk_from_public_number(number)
    version_text = request.GET.get("version", "")
    version = int(version_text) if version_text.isdigit() else None
    result = selectors.sample_report(actor, pk, version) if pk is not None else None
    if result is None:
        raise Http404
    audit_reads(actor, "report.download", [number], {"version": result.version}, channel=Channel.WEB)
    response = FileResponse(
        result.report.open("rb"),
        content_type=result.report_content_type or "application/pdf",
        as_attachment=True,
        filename=f"muestra-{number}-v{result.version}.pdf",
    )
    response["X-Content-SHA256"] = result.report_sha256
    response["Cache-Control"] = "no-store"
    return response  # type: ignore[return-value]  # a streamed file: the gate passes any response through


# --- edit and cancel ---------------------------------------------------------------------------------------------


@staff_required
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, number: int) -> HttpResponse:
    actor = request_actor(request)
    sample = _visible_sample(actor, number)
    if not _establishment_may_change(actor, sample, Step.EDIT):
        raise Http404
    form = SampleEditForm(request.POST if request.method == "POST" else None, sample=sample)
    if request.method == "POST" and form.is_valid():
        changes = form.changes()
        if not changes:
            messages.info(request, _("Nothing was changed."))
            return redirect("mysamples:detail", number=sample.number)
        try:
            services.sample_update(actor=actor, sample_id=sample.pk, changes=changes, channel=Channel.WEB)
        except DomainError as exc:
            add_domain_error(form, exc)
        else:
            messages.success(request, _("Sample %(number)s was updated.") % {"number": sample.number})
            return redirect("mysamples:detail", number=sample.number)
    return render(request, "web/mysamples/edit.html", {"sample": sample, "form": form})


@staff_required
@require_http_methods(["GET", "POST"])
def cancel(request: HttpRequest, number: int) -> HttpResponse:
    actor = request_actor(request)
    sample = _visible_sample(actor, number)
    if not _establishment_may_change(actor, sample, Step.CANCEL):
        raise Http404
    form = SampleCancelForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.sample_cancel(
                actor=actor, sample_id=sample.pk, reason=form.cleaned_data["reason"], channel=Channel.WEB
            )
        except DomainError as exc:
            add_domain_error(form, exc)
        else:
            messages.success(request, _("Sample %(number)s was cancelled.") % {"number": sample.number})
            return redirect("mysamples:detail", number=sample.number)
    return render(request, "web/mysamples/cancel.html", {"sample": sample, "form": form})
