"""Supervision of what arrives from other systems: every upload, HL7 message, FHIR Bundle and national API call
of the last days with its outcome, the items still failing (fix and process again), the samples received without
a result past the target, and outbound deliveries waiting or failing.

Lab staff and managers see their labs; national administrators every lab (filter `lab`). Everyone else gets 404.
Reads go through `integrations.selectors` (`scoped`): an intake or item of another lab answers 404 like a missing
one. Fixing is `integrations.services.intake_item_reprocess`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from muestra.accounts.scoping import Actor
from muestra.core.errors import DomainError
from muestra.facilities.models import Laboratory
from muestra.integrations import selectors, services
from muestra.integrations.models import Intake, IntakeChannel, IntakeItem
from muestra.samples.selectors import public_number
from muestra.web.access import actor_or_404, staff_required
from muestra.web.forms import add_domain_error
from muestra.web.supervision.forms import ContentFixForm, RowFixForm

PAGE_SIZE = 50
#: Keys the services add to an item's data for their own bookkeeping, not part of what was received.
INTERNAL_DATA = frozenset({"fixed_from", "matched_by", "matched_from"})
OUTCOME_TONE: dict[str, str] = {
    IntakeItem.Outcome.ACCEPTED: "good",
    IntakeItem.Outcome.UNCHANGED: "neutral",
    IntakeItem.Outcome.REJECTED: "bad",
    IntakeItem.Outcome.HELD: "warn",
}


def _actor_or_404(request: HttpRequest) -> Actor:
    return actor_or_404(request, selectors.may_supervise)


def _chosen_lab(request: HttpRequest, labs: list[Laboratory]) -> Laboratory | None:
    wanted = request.GET.get("lab", "").strip()
    return next((lab for lab in labs if str(lab.platform_id) == wanted), None)


def _tone_items(items: list[IntakeItem]) -> list[IntakeItem]:
    for item in items:
        item.tone = OUTCOME_TONE.get(item.outcome, "neutral")  # type: ignore[attr-defined]
    return items


@staff_required
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    actor = _actor_or_404(request)
    labs = selectors.supervised_laboratories(actor)
    chosen = _chosen_lab(request, labs)
    days = selectors.clamp_days(request.GET.get("days") or selectors.DEFAULT_DAYS)
    now = timezone.now()
    summary = selectors.supervision_summary(actor, days=days, laboratory_id=chosen.pk if chosen else None, now=now)
    for sample in summary.overdue:
        sample.hours = selectors.hours_since(sample.received_at, now)  # type: ignore[attr-defined]
    query = {"days": days, **({"lab": chosen.platform_id} if chosen else {})}
    return render(
        request,
        "web/supervision/overview.html",
        {
            "summary": summary,
            "failures": _tone_items(summary.failures),
            "labs": labs,
            "chosen_lab": chosen,
            "days": days,
            "day_choices": (1, 3, 7, 14, 30),
            "query": urlencode(query),
            "is_admin": actor.is_admin,
        },
    )


def _intake_or_404(actor: Actor, pk: int) -> Intake:
    intake = selectors.supervision_intake_get(actor, pk)
    if intake is None:
        raise Http404
    return intake


@staff_required
@require_GET
def intake_detail(request: HttpRequest, pk: int) -> HttpResponse:
    actor = _actor_or_404(request)
    intake = _intake_or_404(actor, pk)
    outcome = request.GET.get("outcome", "")
    if outcome not in IntakeItem.Outcome.values:
        outcome = ""
    items = selectors.intake_items(actor, intake.pk, outcome=outcome or None)
    page = Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "web/supervision/intake.html",
        {
            "intake": intake,
            "page": page,
            "items": _tone_items(list(page.object_list)),
            "outcome": outcome,
            "outcomes": IntakeItem.Outcome.choices,
            "extra": f"&outcome={outcome}" if outcome else "",
            "is_upload": intake.channel == IntakeChannel.FILE,
        },
    )


def _item_or_404(actor: Actor, pk: int) -> IntakeItem:
    item = selectors.supervision_item_get(actor, pk)
    if item is None:
        raise Http404
    return item


def _fix_form(item: IntakeItem, data: Any = None) -> RowFixForm | ContentFixForm | None:
    if services.reprocess_refusal(item):
        return None
    if item.intake.channel == IntakeChannel.FILE:
        wrong = [str(e.get("field", "")) for e in item.errors]
        return RowFixForm(data, row=item.data or {}, error_fields=wrong)
    return ContentFixForm(data, initial={"content": services.stored_content(item)})


@staff_required
@require_http_methods(["GET", "POST"])
def item_detail(request: HttpRequest, pk: int) -> HttpResponse:
    actor = _actor_or_404(request)
    item = _item_or_404(actor, pk)
    form = _fix_form(item, request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form is None:
            messages.error(request, services.reprocess_refusal(item))
            return redirect("supervision:item", pk=item.pk)
        if form.is_valid():
            try:
                done = services.intake_item_reprocess(actor=actor, item_id=item.pk, data=dict(form.cleaned_data))
            except DomainError as exc:
                add_domain_error(form, exc, {"content": "content", **{name: name for name in form.fields}})
            else:
                new = done.replacement
                outcome = new.get_outcome_display() if new is not None else ""
                messages.success(request, _("Processed again: %(outcome)s.") % {"outcome": outcome})
                return redirect("supervision:item", pk=new.pk if new is not None else item.pk)
        status = 422
    refusal = services.reprocess_refusal(item)
    return render(
        request,
        "web/supervision/item.html",
        {
            "item": _tone_items([item])[0],
            "intake": item.intake,
            "form": form,
            "row_form": form if isinstance(form, RowFixForm) else None,
            "content_form": form if isinstance(form, ContentFixForm) else None,
            "refusal": refusal,
            "is_pntm": item.intake.channel == IntakeChannel.PNTM,
            "is_held": item.outcome == IntakeItem.Outcome.HELD and item.superseded_by_id is None,
            "sample_number": public_number(item.sample_id) if item.sample_id else None,
            "data_rows": sorted(
                (str(k), v)
                for k, v in (item.data or {}).items()
                if not isinstance(v, dict | list) and k not in INTERNAL_DATA
            ),
        },
        status=status,
    )
