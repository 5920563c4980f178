"""/fhir/: the CapabilityStatement, POST of result Bundles, and read and search of our records as FHIR R4 JSON.

Authentication is the REST API's (`muestra.api.auth.authenticate`: `Authorization: Bearer mst_...`,
`X-API-Key`, or a logged-in session with CSRF for writes). Every answer is `application/fhir+json`; every failure
an OperationOutcome in the caller's language (Accept-Language). A record outside the caller's scope is a 404
exactly like a missing one. Reads of personal data and results are audited like the REST API's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from ninja.errors import HttpError

from muestra.accounts.scoping import Actor, scoped
from muestra.api.auth import authenticate
from muestra.api.common import audit_reads
from muestra.audit.services import AuditItem, audit_record_many
from muestra.catalog.models import IdentityDocumentType
from muestra.core.errors import DomainError
from muestra.integrations.fhir import capability, ingest, resources, systems
from muestra.integrations.fhir.outcomes import Issue, error_response, fhir_response, issues_from_domain_error
from muestra.patients.models import Patient
from muestra.samples import lookups, selectors
from muestra.samples.models import Channel, Sample

logger = logging.getLogger(__name__)

SAMPLE_TYPES = ("Specimen", "ServiceRequest", "Observation", "DiagnosticReport")
RESULT_TYPES = ("Observation", "DiagnosticReport")
READABLE = (*SAMPLE_TYPES, "Patient")
DEFAULT_COUNT = 50
MAX_COUNT = 500


class FhirError(Exception):
    def __init__(self, status: int, issue: Issue, headers: dict[str, str] | None = None) -> None:
        super().__init__(str(issue.diagnostics))
        self.status, self.issue, self.headers = status, issue, headers or {}


def _not_found() -> FhirError:
    return FhirError(404, Issue("error", "not-found", _("Not found.")))


def _authenticate(request: HttpRequest) -> Actor:
    try:
        actor = authenticate(request)
        if actor is not None:
            return actor
    except DomainError as exc:  # a role that may only read, posting
        raise FhirError(exc.status, issues_from_domain_error(exc, {})[0]) from None
    except HttpError as exc:  # CSRF with a session
        raise FhirError(
            exc.status_code,
            Issue("error", "security", _("CSRF check failed: send the X-CSRFToken header with session auth.")),
        ) from None
    raise FhirError(
        401,
        Issue(
            "error",
            "login",
            _("Authentication required: send an API key (Authorization: Bearer mst_... or X-API-Key) or log in."),
        ),
        {"WWW-Authenticate": 'Bearer realm="muestra"'},
    )


def _check_format(request: HttpRequest) -> None:
    wanted = (request.GET.get("_format") or request.headers.get("Accept") or "").casefold()
    if wanted and "xml" in wanted and "json" not in wanted and "*/*" not in wanted:
        raise FhirError(406, Issue("error", "not-supported", _("Only JSON is served: ask for application/fhir+json.")))


def base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/fhir").rstrip("/")


def _endpoint(methods: tuple[str, ...]) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt  # API keys send no cookie; a session is CSRF-checked by the session authenticator
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise FhirError(
                        405,
                        Issue(
                            "error",
                            "not-supported",
                            _("Method %(method)s is not allowed here.") % {"method": request.method},
                        ),
                        {"Allow": ", ".join(methods)},
                    )
                _check_format(request)
                actor = _authenticate(request)
                return view(request, actor, *args, **kwargs)
            except FhirError as exc:
                return error_response(exc.status, [exc.issue], exc.headers)
            except DomainError as exc:
                return error_response(exc.status, issues_from_domain_error(exc, {}))
            except Exception:
                # Logged with its traceback (never the body: it carries personal data); the caller gets the shape.
                logger.exception("Unhandled error in %s %s", request.method, request.path)
                if settings.DEBUG:
                    raise
                return error_response(500, [Issue("fatal", "exception", _("Internal error; it has been logged."))])

        wrapped.__name__ = view.__name__
        wrapped.__doc__ = view.__doc__
        return wrapped

    return decorate


# --- base: POST a Bundle ----------------------------------------------------------------------------------------


@_endpoint(("POST",))
def base(request: HttpRequest, actor: Actor) -> HttpResponse:
    """POST /fhir/ with a Bundle of results."""
    try:
        content = request.body
    except RequestDataTooBig:
        raise FhirError(413, Issue("fatal", "too-costly", _("The Bundle is too large."))) from None
    answer = ingest.process_bundle(actor, content)
    return fhir_response(answer.body, answer.status)


@_endpoint(("GET",))
def metadata(request: HttpRequest, actor: Actor) -> HttpResponse:
    return fhir_response(capability.capability_statement(base_url(request)))


# --- read -------------------------------------------------------------------------------------------------------


def _visible_sample(actor: Actor, resource_type: str, ident: str) -> Sample:
    pk = selectors.pk_from_public_number(ident) if ident.isdigit() else None
    sample = selectors.sample_get(actor, pk)
    if sample is None or (resource_type in RESULT_TYPES and sample.result_value_id is None):
        raise _not_found()
    return sample


def _as_resource(actor: Actor, resource_type: str, sample: Sample, base: str) -> dict[str, Any]:
    if resource_type == "Specimen":
        return resources.specimen(actor, sample)
    if resource_type == "ServiceRequest":
        return resources.service_request(actor, sample)
    if resource_type == "Observation":
        return resources.observation(actor, sample)
    return resources.diagnostic_report(actor, sample, base_url=base.removesuffix("/fhir"))


def _audit_samples(actor: Actor, resource_type: str, numbers: list[int], interaction: str) -> None:
    action = "sample.results.read" if resource_type in RESULT_TYPES else "sample.read"
    audit_reads(actor, action, numbers, {"fhir": f"{resource_type}.{interaction}"}, channel=Channel.FHIR)


def _audit_patients(actor: Actor, pks: list[int], interaction: str) -> None:
    audit_record_many(
        actor=actor.label,
        items=[
            AuditItem("patient.read", "patient", pk, {"channel": Channel.FHIR.value, "fhir": f"Patient.{interaction}"})
            for pk in pks
        ],
    )


@_endpoint(("GET",))
def read(request: HttpRequest, actor: Actor, resource_type: str, ident: str) -> HttpResponse:
    if resource_type not in READABLE:
        raise _not_found()
    if resource_type == "Patient":
        row = scoped(actor, Patient.objects.filter(pk=int(ident))).first() if ident.isdigit() else None
        if row is None:
            raise _not_found()
        _audit_patients(actor, [row.pk], "read")
        return fhir_response(resources.patient(_with_references(row)))
    sample = _visible_sample(actor, resource_type, ident)
    _audit_samples(actor, resource_type, [sample.number], "read")
    return fhir_response(_as_resource(actor, resource_type, sample, base_url(request)))


def _with_references(row: Patient) -> Patient:
    row._state.fields_cache["document_type"] = lookups.by_pk(IdentityDocumentType, row.document_type_id)
    return row


# --- search -----------------------------------------------------------------------------------------------------


def _invalid_param(name: str, message: Any) -> FhirError:
    return FhirError(400, Issue("error", "invalid", message, [name]))


def _token(value: str) -> tuple[str | None, str]:
    if "|" in value:
        system, code = value.split("|", 1)
        return system, code.strip()
    return None, value.strip()


def _reference_id(value: str, kind: str) -> str:
    text = value.strip().rstrip("/")
    if "/" in text:
        parts = text.split("/")
        if parts[-2] != kind:
            return ""
        return parts[-1]
    return text


_PREFIXES = {"ge": "gte", "gt": "gt", "le": "lte", "lt": "lt", "eq": "gte", "sa": "gt", "eb": "lt"}


def _last_updated(values: list[str]) -> Q:
    q = Q()
    for raw in values:
        prefix, text = (raw[:2], raw[2:]) if raw[:2] in _PREFIXES else ("eq", raw)
        when: datetime | None = parse_datetime(text)
        if when is None and (day := parse_date(text)) is not None:
            when = datetime(day.year, day.month, day.day)
        if when is None:
            raise _invalid_param("_lastUpdated", _("Enter a valid date/time."))
        if timezone.is_naive(when):
            when = timezone.make_aware(when)
        q &= Q(**{f"updated_at__{_PREFIXES[prefix]}": when})
    return q


def _sample_identifier_q(actor: Actor, value: str) -> Q:
    system, code = _token(value)
    q = Q(pk__in=[])
    kind = ingest._kind_of(system or "")
    if kind in ("number", "any") and code.isdigit() and (pk := Sample.pk_from_number(code)) is not None:
        q |= Q(pk=pk)
    if kind in ("tube", "any"):
        q |= Q(tube_code=code)
    if kind in ("client", "any"):
        labs = actor.laboratory_ids
        if system and system.startswith(systems.LAB_SAMPLE_CODE + "/"):
            platform = system.rsplit("/", 1)[1]
            q |= Q(client_code=code, client_lab__platform_id=platform) & (
                Q() if actor.is_admin else Q(client_lab_id__in=labs)
            )
        elif labs:
            q |= Q(client_code=code, client_lab_id__in=labs)
    return q


def _sample_search(actor: Actor, resource_type: str, params: Any) -> QuerySet[Sample]:
    queryset = scoped(actor, Sample.objects.all())
    if resource_type in RESULT_TYPES:
        queryset = queryset.filter(result_value__isnull=False)
    for value in params.getlist("identifier"):
        queryset = queryset.filter(_sample_identifier_q(actor, value))
    for name in ("specimen", "based-on", "_id"):
        for value in params.getlist(name):
            kind = "ServiceRequest" if name == "based-on" else ("Specimen" if name == "specimen" else resource_type)
            ident = _reference_id(value, kind)
            pk = Sample.pk_from_number(ident) if ident.isdigit() else None
            queryset = queryset.filter(pk=pk) if pk is not None else queryset.none()
    for name in ("patient", "subject"):
        for value in params.getlist(name):
            ident = _reference_id(value, "Patient")
            queryset = queryset.filter(patient_id=int(ident)) if ident.isdigit() else queryset.none()
    if params.getlist("_lastUpdated"):
        queryset = queryset.filter(_last_updated(params.getlist("_lastUpdated")))
    return queryset


def _patient_search(actor: Actor, params: Any) -> QuerySet[Patient]:
    queryset = scoped(actor, Patient.objects.all())
    for value in params.getlist("identifier"):
        system, code = _token(value)
        q = Q(document_number__in=selectors._document_variants(code)) if code else Q(pk__in=[])
        if system:
            document = systems.document_from_system(system)
            if document is None:
                queryset = queryset.none()
                continue
            q &= Q(document_type__code=document[0])
            if document[1]:
                q &= Q(document_issuer=document[1])
        queryset = queryset.filter(q)
    for value in params.getlist("_id"):
        queryset = queryset.filter(pk=int(value)) if value.isdigit() else queryset.none()
    if params.getlist("_lastUpdated"):
        queryset = queryset.filter(_last_updated(params.getlist("_lastUpdated")))
    return queryset


def _page_args(params: Any) -> tuple[int, int | None]:
    try:
        count = int(params.get("_count") or DEFAULT_COUNT)
    except ValueError:
        raise _invalid_param("_count", _("Enter a whole number.")) from None
    cursor = params.get("_cursor")
    after = None
    if cursor:
        try:
            after = selectors.decode_cursor(cursor)
        except selectors.InvalidCursor:
            raise _invalid_param(
                "_cursor", _("This cursor is not valid; use the next link of a previous page.")
            ) from None
    return max(1, min(count, MAX_COUNT)), after


def _links(request: HttpRequest, resource_type: str, next_after: int | None) -> list[dict[str, str]]:
    own = [(key, value) for key, values in request.GET.lists() if key != "_cursor" for value in values]
    url = f"{base_url(request)}/{resource_type}"
    links = [{"relation": "self", "url": request.build_absolute_uri()}]
    if next_after is not None:
        links.append(
            {"relation": "next", "url": f"{url}?{urlencode([*own, ('_cursor', selectors.encode_cursor(next_after))])}"}
        )
    return links


@_endpoint(("GET",))
def search(request: HttpRequest, actor: Actor, resource_type: str) -> HttpResponse:
    if resource_type not in READABLE:
        raise _not_found()
    count, after = _page_args(request.GET)
    base = base_url(request)
    entries: list[dict[str, Any]] = []
    if resource_type == "Patient":
        queryset = _patient_search(actor, request.GET)
        if after is not None:
            queryset = queryset.filter(pk__gt=after)
        rows = list(queryset.order_by("pk")[: count + 1])
        more = len(rows) > count
        rows = rows[:count]
        for row in rows:
            entries.append(_search_entry(base, "Patient", resources.patient(_with_references(row))))
        if rows:
            _audit_patients(actor, [row.pk for row in rows], "search")
        last = rows[-1].pk if more and rows else None
    else:
        sample_qs = _sample_search(actor, resource_type, request.GET)
        if after is not None:
            sample_qs = sample_qs.filter(pk__gt=after)
        pks = list(sample_qs.order_by("pk").values_list("pk", flat=True)[: count + 1])
        more = len(pks) > count
        pks = pks[:count]
        found = selectors.samples_by_ids(actor, pks)
        samples = [found[pk] for pk in pks if pk in found]
        for sample in samples:
            entries.append(_search_entry(base, resource_type, _as_resource(actor, resource_type, sample, base)))
        if samples:
            _audit_samples(actor, resource_type, [s.number for s in samples], "search")
        last = pks[-1] if more and pks else None
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": _links(request, resource_type, last),
        "entry": entries,
    }
    return fhir_response(bundle)


def _search_entry(base: str, resource_type: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"{base}/{resource_type}/{resource['id']}", "resource": resource, "search": {"mode": "match"}}


@csrf_exempt
def unknown(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    return error_response(404, [Issue("error", "not-found", _("Not found."))])
