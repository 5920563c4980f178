"""Shipments: the establishment's manifests, opened, filled by scanning tubes, dispatched, printed.

The list and the writes belong to sample takers and establishment managers. A shipment's page and its manifest are
open to every role that sees the shipment through scoping (the destination lab, an authority viewer, an
administrator), read-only for them. Scanning works three ways: htmx posts one scan and shows its outcome in place;
without JavaScript the form posts, the server redirects back and shows the outcome once; a keyboard-wedge scanner
types the code and Enter in either.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from muestra.accounts.scoping import Actor
from muestra.api.common import audit_reads
from muestra.core.errors import DomainError
from muestra.facilities.models import Establishment
from muestra.samples import documents, selectors, services
from muestra.samples.models import Channel, Shipment, ShipmentItem
from muestra.web.access import request_actor, staff_required
from muestra.web.forms import add_domain_error
from muestra.web.shipping.forms import ScanForm, ShipmentForm

PAGE_SIZE = 25
FEEDBACK_SESSION_KEY = "shipping_scan_feedback"

STATE_TABS = (
    (Shipment.State.OPEN, "neutral"),
    (Shipment.State.DISPATCHED, "neutral"),
    (Shipment.State.RECEIVED, "good"),
)
STATE_TONE: dict[str, str] = dict(STATE_TABS)
ITEM_TONE: dict[str, str] = {
    ShipmentItem.Outcome.PENDING: "neutral",
    ShipmentItem.Outcome.RECEIVED: "good",
    ShipmentItem.Outcome.MISSING: "bad",
    ShipmentItem.Outcome.DAMAGED: "bad",
}


def _establishment_side(actor: Actor) -> None:
    """The list and the new-shipment page belong to the establishments' staff; anyone else gets 404."""
    if not actor.establishment_ids:
        raise Http404


def _my_establishments(actor: Actor) -> list[Establishment]:
    """The person's own establishments, with the labs assigned to each (one query and one prefetch)."""
    return [e for e in selectors.establishments(actor) if e.pk in actor.establishment_ids]


def _visible_shipment(actor: Actor, number: int) -> Shipment:
    shipment = selectors.shipment_header(actor, selectors.pk_from_public_number(number))
    if shipment is None:
        raise Http404
    return shipment


def _may_fill(actor: Actor, shipment: Shipment) -> bool:
    """Whether to offer scanning, removing and dispatching (the services decide again)."""
    return (
        services.may_write(actor)
        and actor.acts_for_establishment(shipment.establishment_id)
        and shipment.state == Shipment.State.OPEN
    )


def _writable_shipment(actor: Actor, number: int) -> Shipment:
    """A shipment the person may change: out of scope is 404, and so is one they may only read."""
    shipment = _visible_shipment(actor, number)
    if not (services.may_write(actor) and actor.acts_for_establishment(shipment.establishment_id)):
        raise Http404
    return shipment


# --- list and creation ------------------------------------------------------------------------------------------


@staff_required
def shipment_list(request: HttpRequest) -> HttpResponse:
    actor = request_actor(request)
    _establishment_side(actor)
    ids = sorted(actor.establishment_ids)
    state = request.GET.get("state", Shipment.State.OPEN)
    if state not in Shipment.State.values:
        state = Shipment.State.OPEN
    counts = selectors.shipment_state_counts(actor, ids)
    tabs = [{"state": s, "label": Shipment.State(s).label, "count": counts.get(s, 0)} for s, _tone in STATE_TABS]
    paginator = Paginator(selectors.establishment_shipments(actor, ids, state=state), PAGE_SIZE)
    paginator.count = counts.get(state, 0)  # type: ignore[misc,assignment]
    page = paginator.get_page(request.GET.get("page"))
    context = {
        "tabs": tabs,
        "state": state,
        "state_label": Shipment.State(state).label,
        "page": page,
        "rows": [{"shipment": s, "tone": STATE_TONE.get(s.state, "neutral")} for s in page.object_list],
        "page_query": urlencode({"state": state}),
    }
    return render(request, "web/shipping/list.html", context)


@staff_required
@require_http_methods(["GET", "POST"])
def shipment_new(request: HttpRequest) -> HttpResponse:
    actor = request_actor(request)
    _establishment_side(actor)
    establishments = _my_establishments(actor)
    form = ShipmentForm(request.POST if request.method == "POST" else None, establishments=establishments)
    if request.method == "POST" and form.is_valid():
        try:
            shipment = services.shipment_create(
                actor=actor,
                establishment_code=form.cleaned_data["establishment"],
                laboratory_id=form.cleaned_data["laboratory"],
                note=form.cleaned_data["note"],
            )
        except DomainError as exc:
            add_domain_error(form, exc)
        else:
            messages.success(request, _("Shipment %(number)s is open: scan its tubes.") % {"number": shipment.number})
            return redirect("shipping:detail", number=shipment.number)
    return render(request, "web/shipping/new.html", {"form": form, "has_labs": _any_lab(establishments)})


def _any_lab(establishments: list[Establishment]) -> bool:
    return any(a.laboratory.active for e in establishments for a in e.assignments.all())


# --- one shipment ----------------------------------------------------------------------------------------------


def _items_context(actor: Actor, shipment: Shipment) -> dict[str, Any]:
    items = selectors.shipment_items(actor, shipment.pk)
    return {
        "shipment": shipment,
        "items": [{"item": i, "sample": i.sample, "tone": ITEM_TONE.get(i.outcome, "neutral")} for i in items],
        "may_fill": _may_fill(actor, shipment),
        "show_outcome": shipment.state != Shipment.State.OPEN,
    }


@staff_required
def shipment_detail(request: HttpRequest, number: int) -> HttpResponse:
    actor = request_actor(request)
    shipment = _visible_shipment(actor, number)
    context = _items_context(actor, shipment)
    feedback = request.session.pop(FEEDBACK_SESSION_KEY, None)
    if not (isinstance(feedback, dict) and feedback.get("shipment") == shipment.number):
        feedback = None
    if context["items"]:
        # The page shows the patients' names next to their tubes: audited as the API audits a list.
        audit_reads(actor, "sample.list", [row["sample"].number for row in context["items"]], channel=Channel.WEB)
    context.update(
        {
            "tone": STATE_TONE.get(shipment.state, "neutral"),
            "scan_form": ScanForm(),
            "feedback": feedback,
            "from_list": bool(actor.establishment_ids),
        }
    )
    return render(request, "web/shipping/detail.html", context)


def _scan(actor: Actor, shipment: Shipment, code: str) -> dict[str, Any]:
    """Adds the scanned tube to the shipment; the outcome is ok, warn (nothing to do) or error (refused)."""
    if not code:
        return {"outcome": "error", "message": _("Scan or type a sample number or tube barcode.")}
    sample = selectors.sample_by_scan(actor, code)
    if sample is None:
        # Missing and out of scope are one answer: a tube of another establishment is not revealed.
        return {"outcome": "error", "message": _("No sample of yours has the code %(code)s.") % {"code": code}}
    if sample.shipment_id == shipment.pk:
        return {
            "outcome": "warn",
            "message": _("Sample %(number)s is already in this shipment.") % {"number": sample.number},
        }
    try:
        outcome = services.shipment_add_samples(actor=actor, shipment_id=shipment.pk, sample_ids=[sample.pk])[0]
    except DomainError as exc:
        return {"outcome": "error", "message": str(exc.message)}
    if outcome.errors:
        return {"outcome": "error", "message": str(outcome.errors[0].message)}
    if not outcome.created:
        return {
            "outcome": "warn",
            "message": _("Sample %(number)s is already in this shipment.") % {"number": sample.number},
        }
    who = sample.patient.full_name if sample.patient is not None else _("pooled tube")
    return {
        "outcome": "ok",
        "message": _("Sample %(number)s added (%(who)s).") % {"number": sample.number, "who": who},
    }


@staff_required
@require_POST
def shipment_scan(request: HttpRequest, number: int) -> HttpResponse:
    actor = request_actor(request)
    shipment = _writable_shipment(actor, number)
    form = ScanForm(request.POST)
    code = (form.data.get("code") or "").strip()[:60]
    feedback = _scan(actor, shipment, code)
    feedback["shipment"] = shipment.number
    feedback["code"] = code
    if request.headers.get("HX-Request"):
        context = _items_context(actor, selectors.shipment_header(actor, shipment.pk) or shipment)
        context["feedback"] = feedback
        return render(request, "web/shipping/_scan_result.html", context)
    request.session[FEEDBACK_SESSION_KEY] = feedback
    return redirect("shipping:detail", number=shipment.number)


@staff_required
@require_POST
def shipment_remove(request: HttpRequest, number: int) -> HttpResponse:
    actor = request_actor(request)
    shipment = _writable_shipment(actor, number)
    sample_id = selectors.pk_from_public_number(request.POST.get("sample", ""))
    if sample_id is not None:
        try:
            services.shipment_remove_sample(actor=actor, shipment_id=shipment.pk, sample_id=sample_id)
        except DomainError as exc:
            messages.error(request, str(exc.message))
        else:
            messages.success(
                request,
                _("Sample %(number)s was taken out of the shipment.") % {"number": selectors.public_number(sample_id)},
            )
    return redirect("shipping:detail", number=shipment.number)


@staff_required
@require_POST
def shipment_dispatch(request: HttpRequest, number: int) -> HttpResponse:
    actor = request_actor(request)
    shipment = _writable_shipment(actor, number)
    try:
        dispatched = services.shipment_dispatch(actor=actor, shipment_id=shipment.pk, channel=Channel.WEB)
    except DomainError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(
            request,
            _("Shipment %(number)s was dispatched. Print its manifest and put it in the box.")
            % {"number": dispatched.number},
        )
    return redirect("shipping:detail", number=shipment.number)


@staff_required
def manifest(request: HttpRequest, number: int) -> HttpResponse:
    """The manifest PDF: the shipment's barcode, origin, destination, dispatch time and tubes, no patient data."""
    actor = request_actor(request)
    shipment = _visible_shipment(actor, number)
    items = selectors.shipment_items(actor, shipment.pk)
    content = documents.manifest_pdf(documents.manifest_data(shipment, [i.sample for i in items]))
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="muestra-manifest-{shipment.number}.pdf"'
    response["Cache-Control"] = "no-store"
    return response
