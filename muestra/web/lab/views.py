"""The laboratory's screens: worklists, receiving by scanning (a whole shipment or tube by tube), the actions on one
sample (reject, return, forward, result, correction or correction request) and the result grid.

Every write calls a service in `muestra/samples/services.py` with the web channel; every read goes through a
selector. Only people with a laboratory role open these pages; anyone else gets 404, as for a missing record.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods, require_POST

from muestra.accounts.scoping import Actor
from muestra.core.errors import DomainError
from muestra.samples import lookups, selectors, services
from muestra.samples.models import Channel, Sample, SampleState, Shipment
from muestra.samples.selectors import WorklistTab
from muestra.web.access import request_actor, staff_required
from muestra.web.forms import add_domain_error
from muestra.web.lab.forms import (
    CorrectForm,
    CorrectionRequestForm,
    DamageForm,
    ForwardForm,
    GridRowForm,
    ManifestForm,
    RejectForm,
    ResultForm,
    ReturnForm,
    ScanForm,
)

WORKLIST_PAGE_SIZE = 50
#: Each row of the grid may carry a file; Django refuses more than DATA_UPLOAD_MAX_NUMBER_FILES (100) per request.
GRID_PAGE_SIZE = 25
RECEIVE_KEY = "lab_receive"
SUMMARY_KEY = "lab_receive_summary"
TUBE_LOG_KEY = "lab_receive_tubes"
TUBE_LOG_LENGTH = 20


def _tab_label(tab: WorklistTab) -> str:
    # Written out so that makemessages finds every label.
    return {
        WorklistTab.TO_RECEIVE: _("To receive"),
        WorklistTab.IN_PROCESS: _("In process"),
        WorklistTab.FINISHED: _("Finished"),
        WorklistTab.REJECTED: _("Rejected or returned"),
    }[tab]


def _lab_actor(request: HttpRequest) -> Actor:
    """The caller, when they work for a laboratory; anyone else is answered 404 (the pages do not exist for them)."""
    actor = request_actor(request)
    if not actor.laboratory_ids:
        raise Http404
    return actor


def _is_htmx(request: HttpRequest) -> bool:
    return bool(request.headers.get("HX-Request"))


def _selected_labs(request: HttpRequest, actor: Actor) -> tuple[list[Any], Any, list[int]]:
    """The actor's labs, the one chosen with ?lab=<platform id> (None: all of them), and the ids to show."""
    labs = sorted(
        (lab for lab in (lookups.laboratory_by_pk(pk) for pk in actor.laboratory_ids) if lab is not None),
        key=lambda lab: lab.name,
    )
    chosen = next((lab for lab in labs if str(lab.platform_id) == request.GET.get("lab", "")), None)
    return labs, chosen, [chosen.pk] if chosen else [lab.pk for lab in labs]


@dataclass
class Age:
    hours: int
    overdue: bool


def _age(since: datetime | None, now: datetime) -> Age | None:
    if since is None:
        return None
    delta = now - since
    return Age(
        max(0, int(delta.total_seconds() // 3600)), delta > timedelta(hours=settings.MUESTRA["LAB_TARGET_HOURS"])
    )


def _with_age(samples: list[Sample], now: datetime) -> list[Sample]:
    """Hours waiting, for the samples that wait: since receipt in process, since collection before receipt."""
    for sample in samples:
        since = None
        if sample.state == SampleState.RECEIVED:
            since = sample.received_at
        elif sample.state in (SampleState.REGISTERED, SampleState.DISPATCHED):
            since = sample.collected_at
        sample.age = _age(since, now)  # type: ignore[attr-defined]
    return samples


# --- worklists --------------------------------------------------------------------------------------------------


@staff_required
def worklist(request: HttpRequest) -> HttpResponse:
    actor = _lab_actor(request)
    try:
        tab = WorklistTab(request.GET.get("tab") or WorklistTab.TO_RECEIVE)
    except ValueError:
        tab = WorklistTab.TO_RECEIVE
    labs, chosen, lab_ids = _selected_labs(request, actor)
    now = timezone.now()
    counts = selectors.lab_worklist_counts(actor, lab_ids, now=now)
    paginator = Paginator(selectors.lab_worklist(actor, lab_ids, tab, now=now), WORKLIST_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    rows = _with_age(selectors.samples_complete(list(page.object_list)), now)
    lab_query = f"&lab={chosen.platform_id}" if chosen else ""
    tabs = [
        {
            "key": t.value,
            "label": _tab_label(t),
            "count": counts[t.value],
            "url": f"{reverse('lab:worklist')}?tab={t.value}{lab_query}",
            "current": t == tab,
        }
        for t in WorklistTab
    ]
    return render(
        request,
        "web/lab/worklist.html",
        {
            "tab": tab.value,
            "tab_label": _tab_label(tab),
            "tabs": tabs,
            "rows": rows,
            "page": page,
            "labs": labs,
            "chosen_lab": chosen,
            "lab_query": lab_query,
            "target_hours": settings.MUESTRA["LAB_TARGET_HOURS"],
            "recent_days": selectors.WORKLIST_RECENT_DAYS,
        },
    )


# --- receiving: a whole shipment ---------------------------------------------------------------------------------


@dataclass
class Feedback:
    outcome: str  # ok | warn | error
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"outcome": self.outcome, "message": self.message}


@dataclass
class Tube:
    sample: Sample
    status: str  # expected | arrived | damaged
    reason: str = ""


@dataclass
class Receipt:
    """A shipment being received: its tubes, and what has been scanned so far (kept in the session)."""

    shipment: Shipment
    tubes: list[Tube] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for t in self.tubes if t.status == status)

    @property
    def arrived(self) -> int:
        return self.count("arrived")

    @property
    def damaged(self) -> int:
        return self.count("damaged")

    @property
    def expected(self) -> int:
        return self.count("expected")


def _receipt_state(request: HttpRequest) -> dict[str, Any] | None:
    state = request.session.get(RECEIVE_KEY)
    return state if isinstance(state, dict) and "shipment" in state else None


def _load_receipt(request: HttpRequest, actor: Actor) -> Receipt | None:
    """The shipment in progress with each tube's status, or None (and the state dropped) when it is gone."""
    state = _receipt_state(request)
    if state is None:
        return None
    shipment = selectors.shipment_get(actor, state["shipment"])
    if (
        shipment is None
        or not actor.acts_for_laboratory(shipment.laboratory_id)
        or shipment.state != Shipment.State.DISPATCHED
    ):
        request.session.pop(RECEIVE_KEY, None)
        return None
    arrived = set(state.get("arrived", []))
    damaged: dict[str, str] = state.get("damaged", {})
    samples = [item.sample for item in shipment.items.all()]
    lookups.attach_reference_rows(samples)
    tubes = []
    for sample in samples:
        if str(sample.pk) in damaged:
            tubes.append(Tube(sample, "damaged", damaged[str(sample.pk)]))
        else:
            tubes.append(Tube(sample, "arrived" if sample.pk in arrived else "expected"))
    return Receipt(shipment, tubes, list(state.get("unexpected", [])))


def _save_receipt(request: HttpRequest, receipt: Receipt, feedback: Feedback | None = None) -> None:
    request.session[RECEIVE_KEY] = {
        "shipment": receipt.shipment.pk,
        "arrived": [t.sample.pk for t in receipt.tubes if t.status == "arrived"],
        "damaged": {str(t.sample.pk): t.reason for t in receipt.tubes if t.status == "damaged"},
        "unexpected": receipt.unexpected[-50:],
        "last": feedback.as_dict() if feedback else None,
    }


def _pop_feedback(request: HttpRequest, key: str) -> Feedback | None:
    state = request.session.get(key)
    if isinstance(state, dict) and state.get("last"):
        last = state["last"]
        state["last"] = None
        request.session[key] = state
        return Feedback(last["outcome"], last["message"])
    return None


def _matches(sample: Sample, code: str) -> bool:
    return code == str(sample.number) or (bool(sample.tube_code) and code == sample.tube_code)


def _manifest_number(code: str) -> int | None:
    """The shipment's public number in a scanned manifest code (its digits; a printed prefix is tolerated)."""
    digits = re.search(r"(\d{10,})$", code.strip())
    return selectors.pk_from_public_number(digits.group(1)) if digits else None


def _open_shipments(actor: Actor) -> list[Shipment]:
    page = selectors.shipment_page(actor, selectors.ShipmentFilters(state=Shipment.State.DISPATCHED), limit=20)
    return [s for s in page.items if actor.acts_for_laboratory(s.laboratory_id)]


@staff_required
def receive(request: HttpRequest) -> HttpResponse:
    actor = _lab_actor(request)
    receipt = _load_receipt(request, actor)
    context: dict[str, Any] = {"receipt": receipt, "tube_log": request.session.get(TUBE_LOG_KEY, {}).get("log", [])}
    if receipt is not None:
        context["scan_form"] = ScanForm(auto_id="id_shipment_%s")
        context["scan_form"].fields["code"].widget.attrs["autofocus"] = True
        context["damage_form"] = DamageForm(tubes=_tube_choices(receipt))
        context["feedback"] = _pop_feedback(request, RECEIVE_KEY)
    else:
        context["manifest_form"] = ManifestForm()
        context["manifest_form"].fields["manifest"].widget.attrs["autofocus"] = True
        context["tube_form"] = ScanForm(auto_id="id_tube_%s")
        context["open_shipments"] = _open_shipments(actor)
        context["tube_feedback"] = _pop_feedback(request, TUBE_LOG_KEY)
    return render(request, "web/lab/receive.html", context)


def _tube_choices(receipt: Receipt) -> list[tuple[int, str]]:
    return [(t.sample.pk, f"{t.sample.number} · {t.sample.test.display_name}") for t in receipt.tubes]


@staff_required
@require_POST
def receive_start(request: HttpRequest) -> HttpResponse:
    """Scanning a manifest's barcode opens the shipment for receipt (or a listed shipment's button does)."""
    actor = _lab_actor(request)
    form = ManifestForm(request.POST)
    shipment = None
    if form.is_valid():
        shipment = selectors.shipment_get(actor, _manifest_number(form.cleaned_data["manifest"]))
        if shipment is None or not actor.acts_for_laboratory(shipment.laboratory_id):
            form.add_error(
                "manifest",
                _("No shipment with number %(code)s is addressed to your laboratory.")
                % {"code": form.cleaned_data["manifest"]},
            )
        elif shipment.state == Shipment.State.OPEN:
            form.add_error("manifest", _("This shipment has not been dispatched yet."))
        elif shipment.state == Shipment.State.RECEIVED:
            form.add_error("manifest", _("This shipment was already received."))
    if not form.is_valid() or shipment is None:
        form.fields["manifest"].widget.attrs["autofocus"] = True
        context = {
            "receipt": None,
            "manifest_form": form,
            "tube_form": ScanForm(auto_id="id_tube_%s"),
            "open_shipments": _open_shipments(actor),
            "tube_log": request.session.get(TUBE_LOG_KEY, {}).get("log", []),
        }
        return render(request, "web/lab/receive.html", context, status=422)
    request.session[RECEIVE_KEY] = {"shipment": shipment.pk, "arrived": [], "damaged": {}, "unexpected": []}
    return redirect("lab:receive")


def _scan_tube(actor: Actor, receipt: Receipt, code: str) -> Feedback:
    tube = next((t for t in receipt.tubes if _matches(t.sample, code)), None)
    if tube is None:
        found = selectors.sample_by_scan(actor, code)
        if found is None:
            return Feedback("error", _("No sample with code %(code)s was found.") % {"code": code})
        if code not in receipt.unexpected:
            receipt.unexpected.append(code)
        return Feedback(
            "error",
            _("Sample %(number)s is not in this shipment. Set it aside and receive it tube by tube.")
            % {"number": found.number},
        )
    number = tube.sample.number
    if tube.status == "damaged":
        return Feedback("warn", _("Sample %(number)s is marked damaged.") % {"number": number})
    if tube.status == "arrived":
        return Feedback("warn", _("Sample %(number)s was already scanned.") % {"number": number})
    tube.status = "arrived"
    return Feedback(
        "ok",
        _("Sample %(number)s arrived (%(done)d of %(total)d).")
        % {"number": number, "done": receipt.arrived + receipt.damaged, "total": len(receipt.tubes)},
    )


def _back_to_receive(request: HttpRequest) -> HttpResponse:
    url = reverse("lab:receive")
    if _is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return HttpResponseRedirect(url)


ReceiptView = Callable[[HttpRequest, Actor, Receipt], HttpResponse]


def _with_receipt(missing: Promise | None = None) -> Callable[[ReceiptView], Callable[[HttpRequest], HttpResponse]]:
    """A step of the shipment in progress: the view gets the lab actor and the receipt; without a receipt (none
    started, or gone since) the caller goes back to the receiving page, told `missing` when given."""

    def decorate(view: ReceiptView) -> Callable[[HttpRequest], HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest) -> HttpResponse:
            actor = _lab_actor(request)
            receipt = _load_receipt(request, actor)
            if receipt is None:
                if missing is not None:
                    messages.error(request, str(missing))
                return _back_to_receive(request)
            return view(request, actor, receipt)

        return wrapper

    return decorate


@staff_required
@require_POST
@_with_receipt(missing=gettext_lazy("No shipment is being received. Scan its manifest first."))
def receive_scan(request: HttpRequest, actor: Actor, receipt: Receipt) -> HttpResponse:
    """One tube of the shipment in progress was scanned."""
    form = ScanForm(request.POST, auto_id="id_shipment_%s")
    if form.is_valid():
        feedback = _scan_tube(actor, receipt, form.cleaned_data["code"])
    else:
        feedback = Feedback("error", _("Scan or type the tube's code."))
    if _is_htmx(request):
        _save_receipt(request, receipt)
        return render(request, "web/lab/_shipment_scan_result.html", {"feedback": feedback, "receipt": receipt})
    _save_receipt(request, receipt, feedback)
    return redirect("lab:receive")


@staff_required
@require_POST
@_with_receipt()
def receive_damage(request: HttpRequest, actor: Actor, receipt: Receipt) -> HttpResponse:
    """Marks a tube of the shipment in progress as damaged (with what is wrong), or clears that mark."""
    if request.POST.get("clear"):
        tube = next((t for t in receipt.tubes if str(t.sample.pk) == request.POST.get("sample")), None)
        if tube is not None and tube.status == "damaged":
            tube.status, tube.reason = "expected", ""
        _save_receipt(request, receipt)
        return redirect("lab:receive")
    form = DamageForm(request.POST, tubes=_tube_choices(receipt))
    if not form.is_valid():
        scan_form = ScanForm(auto_id="id_shipment_%s")
        context = {"receipt": receipt, "scan_form": scan_form, "damage_form": form, "damage_open": True}
        return render(request, "web/lab/receive.html", context, status=422)
    tube = next(t for t in receipt.tubes if t.sample.pk == form.cleaned_data["sample"])
    tube.status, tube.reason = "damaged", form.cleaned_data["reason"].strip()
    _save_receipt(
        request, receipt, Feedback("warn", _("Sample %(number)s marked damaged.") % {"number": tube.sample.number})
    )
    return redirect("lab:receive")


@staff_required
@require_POST
@_with_receipt()
def receive_finish(request: HttpRequest, actor: Actor, receipt: Receipt) -> HttpResponse:
    """Records the receipt: scanned tubes received, damaged ones rejected, the others missing."""
    damaged = {t.sample.pk: t.reason for t in receipt.tubes if t.status == "damaged"}
    try:
        outcome = services.shipment_receive(
            actor=actor,
            shipment_id=receipt.shipment.pk,
            received_sample_ids=[t.sample.pk for t in receipt.tubes if t.status == "arrived"],
            damaged_sample_ids=list(damaged),
            damage_reasons=damaged,
            channel=Channel.WEB,
        )
    except DomainError as exc:
        messages.error(request, str(exc.message))
        return redirect("lab:receive")
    numbers = {t.sample.pk: t.sample.number for t in receipt.tubes}
    request.session[SUMMARY_KEY] = {
        "shipment": receipt.shipment.number,
        "establishment": receipt.shipment.establishment.name,
        "received": [numbers[pk] for pk in outcome.received],
        "already_received": [numbers[pk] for pk in outcome.already_received],
        "missing": [numbers[pk] for pk in outcome.missing],
        "damaged": [[numbers[pk], damaged.get(pk, "")] for pk in outcome.damaged],
        "unexpected": receipt.unexpected,
    }
    request.session.pop(RECEIVE_KEY, None)
    return redirect("lab:receive_summary")


@staff_required
@require_POST
def receive_cancel(request: HttpRequest) -> HttpResponse:
    """Forgets the scans of the shipment in progress (nothing was recorded yet)."""
    _lab_actor(request)
    request.session.pop(RECEIVE_KEY, None)
    return redirect("lab:receive")


@staff_required
def receive_summary(request: HttpRequest) -> HttpResponse:
    _lab_actor(request)
    summary = request.session.get(SUMMARY_KEY)
    if not isinstance(summary, dict):
        return redirect("lab:receive")
    # Damaged tubes are rejected with the catalogue's reason for them; its name is shown in the user's language.
    damage_reason = lookups.rejection_reason(services.REJECTION_DAMAGED)
    return render(request, "web/lab/receive_summary.html", {"summary": summary, "damage_reason": damage_reason})


# --- receiving: tube by tube ----------------------------------------------------------------------------------


@staff_required
@require_POST
def receive_tube(request: HttpRequest) -> HttpResponse:
    """Receives one scanned tube without its shipment (`sample_receive` is idempotent)."""
    actor = _lab_actor(request)
    form = ScanForm(request.POST, auto_id="id_tube_%s")
    if not form.is_valid():
        feedback = Feedback("error", _("Scan or type the tube's code."))
    else:
        feedback = _receive_one(actor, form.cleaned_data["code"])
    state = request.session.get(TUBE_LOG_KEY) or {}
    log = [feedback.as_dict(), *state.get("log", [])][:TUBE_LOG_LENGTH]
    if _is_htmx(request):
        request.session[TUBE_LOG_KEY] = {"log": log, "last": None}
        return render(request, "web/lab/_tube_scan_result.html", {"feedback": feedback, "tube_log": log})
    request.session[TUBE_LOG_KEY] = {"log": log, "last": feedback.as_dict()}
    return redirect("lab:receive")


def _receive_one(actor: Actor, code: str) -> Feedback:
    sample = selectors.sample_by_scan(actor, code)
    if sample is None or not actor.acts_for_laboratory(sample.laboratory_id):
        return Feedback("error", _("No sample with code %(code)s is addressed to your laboratory.") % {"code": code})
    try:
        _sample, recorded = services.sample_receive(actor=actor, sample_id=sample.pk, channel=Channel.WEB)
    except DomainError as exc:
        return Feedback("error", f"{sample.number}: {exc.message}")
    if not recorded:
        return Feedback("warn", _("Sample %(number)s was already received.") % {"number": sample.number})
    return Feedback(
        "ok",
        _("Sample %(number)s received (%(test)s, %(establishment)s).")
        % {"number": sample.number, "test": sample.test.display_name, "establishment": sample.establishment.name},
    )


# --- one sample -------------------------------------------------------------------------------------------------


def _lab_sample_or_404(actor: Actor, number: int) -> Sample:
    sample = selectors.lab_sample(actor, selectors.pk_from_public_number(number))
    if sample is None:
        raise Http404
    return sample


ACTIONS = ("receive", "reject", "return", "forward", "result", "correct", "request")


def _sample_forms(sample: Sample, data: Any = None, files: Any = None, action: str = "") -> dict[str, Any]:
    """Every action form of the page; the submitted one (`action`) bound to the request's data."""
    values = selectors.result_choices(sample.test)

    def bound(name: str) -> dict[str, Any]:
        return {"data": data, "files": files} if name == action else {}

    forms: dict[str, Any] = {
        "reject": RejectForm(reasons=selectors.rejection_reasons(), prefix="reject", **bound("reject")),
        "return": ReturnForm(prefix="return", **bound("return")),
        "result": ResultForm(values=values, prefix="result", **bound("result")),
        "correct": CorrectForm(values=values, prefix="correct", **bound("correct")),
        "request": CorrectionRequestForm(values=values, prefix="request", **bound("request")),
    }
    if sample.state in (SampleState.DISPATCHED, SampleState.RECEIVED):
        forms["forward"] = ForwardForm(
            laboratories=selectors.forwarding_laboratories(sample), prefix="forward", **bound("forward")
        )
    return forms


def _perform(actor: Actor, sample: Sample, action: str, form: Any) -> str:
    """Calls the service behind `action`; returns the confirmation to show. DomainError propagates."""
    data = form.cleaned_data if form is not None else {}
    number = sample.number
    if action == "receive":
        _s, recorded = services.sample_receive(actor=actor, sample_id=sample.pk, channel=Channel.WEB)
        return (_("Sample %(number)s received.") if recorded else _("Sample %(number)s was already received.")) % {
            "number": number
        }
    if action == "reject":
        services.sample_reject(
            actor=actor, sample_id=sample.pk, reason=data["reason"], note=data["note"], channel=Channel.WEB
        )
        return _("Sample %(number)s rejected.") % {"number": number}
    if action == "return":
        services.sample_return(actor=actor, sample_id=sample.pk, reason=data["reason"], channel=Channel.WEB)
        return _("Sample %(number)s returned to its establishment.") % {"number": number}
    if action == "forward":
        services.sample_forward(
            actor=actor,
            sample_id=sample.pk,
            new_laboratory=data["laboratory"],
            reason=data["reason"],
            channel=Channel.WEB,
        )
        return _("Sample %(number)s forwarded.") % {"number": number}
    if action == "result":
        reported_at = data.get("reported_at")
        services.result_deliver(
            actor=actor,
            sample_id=sample.pk,
            value=data["value"],
            reported_at=reported_at,
            report=data.get("report"),
            channel=Channel.WEB,
        )
        return _("Result of sample %(number)s saved.") % {"number": number}
    if action == "correct":
        services.result_correct(
            actor=actor,
            sample_id=sample.pk,
            value=data["value"],
            reason=data["reason"],
            report=data.get("report"),
            channel=Channel.WEB,
        )
        return _("Result of sample %(number)s corrected.") % {"number": number}
    services.correction_request_create(
        actor=actor,
        sample_id=sample.pk,
        proposed_value=data["proposed_value"],
        reason=data["reason"],
        channel=Channel.WEB,
    )
    return _("Correction request for sample %(number)s sent to the national administrators.") % {"number": number}


FIELD_MAPS = {
    "result": {"result": "value", "report": "report", "reported_at": "reported_at"},
    "correct": {"result": "value", "report": "report", "reason": "reason"},
    "request": {"result": "proposed_value", "proposed_value": "proposed_value", "reason": "reason"},
    "reject": {"reason": "reason"},
    "return": {"reason": "reason"},
    "forward": {"new_laboratory": "laboratory", "reason": "reason"},
}


@staff_required
@require_http_methods(["GET", "POST"])
def sample_detail(request: HttpRequest, number: int) -> HttpResponse:
    actor = _lab_actor(request)
    sample = _lab_sample_or_404(actor, number)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    if request.method == "POST" and action not in ACTIONS:
        raise Http404
    forms = _sample_forms(sample, request.POST, request.FILES, action)
    if request.method == "POST":
        form = forms.get(action)
        if action != "receive" and form is None:
            raise Http404
        if form is None or form.is_valid():
            try:
                done = _perform(actor, sample, action, form)
            except DomainError as exc:
                if form is None:
                    messages.error(request, str(exc.message))
                    return redirect("lab:sample", number=sample.number)
                add_domain_error(form, exc, FIELD_MAPS.get(action))
            else:
                messages.success(request, done)
                return redirect("lab:sample", number=sample.number)
    results = selectors.sample_results(actor, sample.pk)
    context = {
        "sample": sample,
        "forms": forms,
        "action": action,
        "results": results,
        "events": selectors.sample_events(actor, sample.pk),
        "correction": selectors.correction_option(actor, sample, results).value,
        "correction_requests": selectors.correction_requests_for_sample(actor, sample.pk),
        "age": _with_age([sample], timezone.now())[0].age,  # type: ignore[attr-defined]
        "target_hours": settings.MUESTRA["LAB_TARGET_HOURS"],
        "window_days": settings.MUESTRA["CORRECTION_WINDOW_DAYS"],
        "max_report": settings.MUESTRA["MAX_REPORT_BYTES"],
    }
    return render(request, "web/lab/sample.html", context, status=422 if action else 200)


# --- result grid ----------------------------------------------------------------------------------------------


@dataclass
class GridRow:
    sample: Sample
    form: GridRowForm
    outcome: str = ""  # "" (untouched) | saved | error
    message: str = ""
    refile: bool = False  # a file was attached to a failed row: the browser cannot keep it, ask for it again


def _grid_rows(samples: list[Sample], data: Any = None, files: Any = None) -> list[GridRow]:
    choices: dict[int, list[Any]] = {}
    rows = []
    for sample in samples:
        if sample.test_id not in choices:
            choices[sample.test_id] = selectors.result_choices(sample.test)
        form = GridRowForm(data, files, values=choices[sample.test_id], prefix=f"r{sample.pk}")
        rows.append(GridRow(sample, form))
    return rows


@staff_required
@require_http_methods(["GET", "POST"])
def results_grid(request: HttpRequest) -> HttpResponse:
    """Many received samples on one page: a result and a signed report per row, saved row by row."""
    actor = _lab_actor(request)
    labs, chosen, lab_ids = _selected_labs(request, actor)
    now = timezone.now()
    context: dict[str, Any] = {"labs": labs, "chosen_lab": chosen, "max_report": settings.MUESTRA["MAX_REPORT_BYTES"]}
    if request.method == "POST":
        ids = [int(pk) for pk in request.POST.getlist("row") if pk.isdigit()][:GRID_PAGE_SIZE]
        by_id = selectors.lab_samples_by_ids(actor, ids)
        rows = _grid_rows(_with_age([by_id[pk] for pk in ids if pk in by_id], now), request.POST, request.FILES)
        saved = failed = 0
        for row in rows:
            if row.form.is_blank:
                # Nothing entered: shown again as it was, without an error.
                row.form = GridRowForm(values=row.form.values, prefix=row.form.prefix)
                continue
            if row.form.is_valid():
                try:
                    result, _recorded = services.result_deliver(
                        actor=actor,
                        sample_id=row.sample.pk,
                        value=row.form.cleaned_data["value"],
                        report=row.form.cleaned_data.get("report"),
                        channel=Channel.WEB,
                    )
                except DomainError as exc:
                    add_domain_error(row.form, exc, {"result": "value", "report": "report"})
                else:
                    row.outcome, row.message, saved = "saved", result.value.display_name, saved + 1
                    continue
            row.outcome, failed = "error", failed + 1
            row.refile = bool(request.FILES.get(row.form.add_prefix("report")))
        context.update(
            {"rows": rows, "posted": True, "saved": saved, "failed": failed, "summary": summary_text(saved, failed)}
        )
        return render(request, "web/lab/results.html", context, status=422 if failed else 200)
    paginator = Paginator(selectors.lab_worklist(actor, lab_ids, WorklistTab.IN_PROCESS, now=now), GRID_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    samples = _with_age(selectors.samples_complete(list(page.object_list)), now)
    context.update(
        {"rows": _grid_rows(samples), "page": page, "lab_query": f"&lab={chosen.platform_id}" if chosen else ""}
    )
    return render(request, "web/lab/results.html", context)


def summary_text(saved: int, failed: int) -> str:
    return ngettext("%(n)d result saved.", "%(n)d results saved.", saved) % {"n": saved} + (
        " " + ngettext("%(n)d row has an error.", "%(n)d rows have errors.", failed) % {"n": failed} if failed else ""
    )
