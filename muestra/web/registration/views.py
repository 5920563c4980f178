"""The sample taker's registration form: one page, built for a keyboard and a barcode scanner.

    GET  /register/             the form (remembered settings, a new person, collected now); ?saved=<number>
                                shows the confirmation of the sample just registered
    POST /register/             registers (once per form token) and redirects to the next empty form
    POST /register/check/       live validation of one field (?field=name) by the service's own rules
    POST /register/patient/     look-up by identity document: a known, visible patient fills the form
    POST /register/refresh/     the labs, sample types and result fields for the chosen establishment and test

The look-up is a POST so that document numbers never appear in URLs or access logs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from muestra.accounts.services import registration_defaults_remember
from muestra.audit.services import audit_record
from muestra.core.errors import DomainError
from muestra.patients.selectors import patient_by_document
from muestra.samples import selectors, services
from muestra.samples.models import Channel, Sample
from muestra.web.access import request_actor, staff_required
from muestra.web.forms import add_domain_error
from muestra.web.registration.forms import (
    FIELD_MAP,
    Offer,
    RegistrationForm,
    initial_values,
    make_offer,
    may_register,
    new_token,
    patient_values,
)
from muestra.web.registration.idempotency import submit_once, valid_token

TEMPLATE = "web/registration/new.html"


def _actor_or_404(request: HttpRequest) -> Any:
    actor = request_actor(request)
    if not may_register(actor):
        raise Http404
    return actor


def _context(form: RegistrationForm, **extra: Any) -> dict[str, Any]:
    return {
        "form": form,
        "offer": form.offer,
        "document_kind": form.document_kind(),
        **extra,
    }


def _bound(request: HttpRequest, actor: Any, data: QueryDict | dict[str, Any] | None = None) -> RegistrationForm:
    data = request.POST if data is None else data
    offer = make_offer(actor, data)
    return RegistrationForm(data, actor=actor, offer=offer)


def in_establishment_time(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Runs the view in the establishment's time zone: a Vietnamese site types and reads Vietnamese local times
    (collection and result times), whatever the server's zone. The establishment is the one being registered for
    (posted), else the remembered one, else the person's first."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user: Any = request.user
        values = request.POST if request.method == "POST" else (user.registration_defaults or {})
        profile = make_offer(request_actor(request), values).profile
        if profile is None or not profile.time_zone:
            return view(request, *args, **kwargs)
        with timezone.override(ZoneInfo(profile.time_zone)):
            return view(request, *args, **kwargs)

    return wrapper


@staff_required
@require_http_methods(["GET", "POST"])
@in_establishment_time
def new(request: HttpRequest) -> HttpResponse:
    actor = _actor_or_404(request)
    if request.method == "POST":
        return _submit(request, actor)
    user: Any = request.user
    remembered = user.registration_defaults or {}
    offer = make_offer(actor, remembered)
    form = RegistrationForm(initial=initial_values(actor, offer, remembered), actor=actor, offer=offer)
    form.fields["document_number"].widget.attrs["autofocus"] = True
    saved = _saved_sample(actor, request.GET.get("saved", ""))
    return render(request, TEMPLATE, _context(form, saved=saved, remembered=bool(remembered)))


def _saved_sample(actor: Any, number: str) -> Sample | None:
    if not number.isdigit():
        return None
    return selectors.sample_get(actor, selectors.pk_from_public_number(number))


def _submit(request: HttpRequest, actor: Any) -> HttpResponse:
    form = _bound(request, actor)
    token = str(request.POST.get("idempotency_token") or "")
    if not form.is_valid():
        # Everything at once: what the form could not read, and what the service would refuse besides.
        form, errors = _field_errors(request, actor)
        for name, messages in errors.items():
            for message in messages:
                if message not in form.errors.get(name, []):
                    form.add_error(name if name in form.fields else None, message)
        return _invalid(request, form)
    if not valid_token(token):
        # A form without its token (an old page, a hand-made request): give it one and let the person send it.
        return _invalid(request, _with_new_token(request, actor))
    data = form.sample_input()

    def write() -> str:
        sample, _created = services.sample_register(actor=actor, data=data, channel=Channel.WEB)
        registration_defaults_remember(user=request.user, values=form.remembered())  # type: ignore[arg-type]
        return f"{reverse('registration:new')}?{urlencode({'saved': sample.number})}"

    try:
        outcome = submit_once(request, actor, token, write)
    except DomainError as exc:
        if exc.code == "idempotency_key_reused":
            form = _with_new_token(request, actor)
            form.is_valid()
        add_domain_error(form, exc, FIELD_MAP)
        return _invalid(request, form)
    return _see_other(outcome.location)


def _see_other(location: str) -> HttpResponse:
    response = HttpResponse(status=303)
    response["Location"] = location
    return response


def _with_new_token(request: HttpRequest, actor: Any) -> RegistrationForm:
    data = request.POST.copy()
    data["idempotency_token"] = new_token()
    return _bound(request, actor, data)


def _invalid(request: HttpRequest, form: RegistrationForm) -> HttpResponse:
    form.mark_invalid()
    return render(request, TEMPLATE, _context(form, has_errors=True), status=422)


def _field_errors(request: HttpRequest, actor: Any) -> tuple[RegistrationForm, dict[str, list[str]]]:
    """Every error the service would report for the form as it stands, by form field."""
    form = _bound(request, actor)
    form.is_valid()
    errors: dict[str, list[str]] = {name: [str(e) for e in errs] for name, errs in form.errors.items()}
    for item in services.sample_register_check(actor=actor, data=form.sample_input()):
        name = FIELD_MAP.get(item.field, item.field)
        if name not in errors:  # a value the form could not even parse speaks first
            errors.setdefault(f"+{name}", []).append(str(item.message))
    merged: dict[str, list[str]] = {}
    for name, messages in errors.items():
        merged.setdefault(name.lstrip("+"), []).extend(messages)
    return form, merged


@staff_required
@require_POST
@in_establishment_time
def check(request: HttpRequest) -> HttpResponse:
    """The error message of one field (empty when it is fine), for the slot next to it."""
    actor = _actor_or_404(request)
    name = request.GET.get("field", "")
    form, errors = _field_errors(request, actor)
    if name not in form.fields:
        return HttpResponse("", content_type="text/plain; charset=utf-8")
    return HttpResponse(" ".join(errors.get(name, [])), content_type="text/plain; charset=utf-8")


@staff_required
@require_POST
@in_establishment_time
def patient(request: HttpRequest) -> HttpResponse:
    """Looks the document up: a patient this actor may see fills the patient details; otherwise they stay as typed.

    The number is checked by the service's document rule first (a wrong RUN check digit is said at once)."""
    actor = _actor_or_404(request)
    form, errors = _field_errors(request, actor)
    number_errors = [*errors.get("document_number", []), *errors.get("document_issuer", [])]
    found = None
    if not number_errors and form.is_valid():
        found = patient_by_document(
            actor,
            document_type=form.cleaned_data["document_type"],
            document_number=form.cleaned_data["document_number"],
            document_issuer=form.cleaned_data["document_issuer"],
        )
    if found is not None:
        with transaction.atomic():
            # Who looked whom up is recorded (ids only), like every read of personal data.
            audit_record(
                actor=actor.label,
                action="patient.lookup",
                object_type="patient",
                object_id=found.pk,
                data={"channel": Channel.WEB},
            )
        data = request.POST.copy()
        profile_code = form.offer.profile.code if form.offer.profile is not None else ""
        for name, value in patient_values(found, profile_code).items():
            data[name] = value
        form = _bound(request, actor, data)
    context = _context(form, known_patient=found, looked_up=True, number_errors=number_errors)
    response = render(request, "web/registration/_patient_lookup.html", context)
    if found is None:
        # Nothing to fill: what the person typed meanwhile stays untouched; only the status and the message change.
        response["HX-Reswap"] = "none"
    return response


@staff_required
@require_POST
@in_establishment_time
def refresh(request: HttpRequest) -> HttpResponse:
    """The part of the form that depends on the establishment and the test, for the values now chosen."""
    actor = _actor_or_404(request)
    data = request.POST.copy()
    offer: Offer = make_offer(actor, data)
    # Keep a lab / sample type still on offer; otherwise the first one offered.
    for name, options in (
        ("laboratory", [str(lab.platform_id) for lab in offer.laboratories]),
        ("sample_type", [t.code for t in offer.sample_types]),
    ):
        if data.get(name) not in options:
            keep_blank = (name == "laboratory" and offer.point_of_care) or (name == "sample_type" and len(options) > 1)
            data[name] = "" if keep_blank or not options else options[0]
    form = RegistrationForm(data, actor=actor, offer=offer)
    return HttpResponse(render_to_string("web/registration/_sample_options.html", _context(form), request=request))
