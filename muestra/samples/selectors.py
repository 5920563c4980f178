"""Read-side queries on samples, their chain of custody, results, shipments, and the reference lists that the outer
layers (REST API, later the screens) show next to them.

Every queryset of records passes through `scoped(actor, ...)`, so a record outside the caller's scope is simply
absent and the caller answers 404 exactly as for a missing one. Selectors never write, and they load what the
serialisers will touch in a bounded number of queries (joins, one prefetch per relation, correlated subqueries for
"the latest result"), whatever the page size.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar

from django.db.models import Count, Model, OuterRef, Prefetch, Q, QuerySet, Subquery, prefetch_related_objects

from muestra.accounts.scoping import Actor, scoped
from muestra.catalog.models import (
    Disease,
    HealthInsurance,
    IdentityDocumentType,
    Interpretation,
    RejectionReason,
    ResultValue,
    SampleType,
    Strategy,
    Test,
)
from muestra.facilities.models import Establishment, LabAssignment, Laboratory
from muestra.patients.documents import DocumentInvalid, normalise_run
from muestra.samples import lookups
from muestra.samples.models import (
    PUBLIC_NUMBER_OFFSET,
    CorrectionAuthorization,
    CorrectionRequest,
    Result,
    Sample,
    SampleEvent,
    SampleState,
    Shipment,
    ShipmentItem,
)

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

#: Joined for every sample shown; reference rows (catalogue, places) are attached from the look-up cache instead
#: (see lookups.attach_reference_rows).
SAMPLE_RELATED = ("patient",)

M = TypeVar("M", Sample, Shipment)
T = TypeVar("T")


# --- public numbers and cursors -----------------------------------------------------------------------------


def pk_from_public_number(number: int | str) -> int | None:
    """Samples and shipments share the 10-digit public numbering (offset + primary key)."""
    return Sample.pk_from_number(number)


def public_number(pk: int) -> int:
    return PUBLIC_NUMBER_OFFSET + pk


class InvalidCursor(ValueError):
    """The cursor was not produced by this server (or was altered)."""


_CURSOR_PREFIX = "v1:"


def encode_cursor(last_id: int) -> str:
    """An opaque cursor: clients must not build or parse it, so its form may change without breaking them."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        text = base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursor(cursor) from exc
    if not text.startswith(_CURSOR_PREFIX) or not text[len(_CURSOR_PREFIX) :].isdigit():
        raise InvalidCursor(cursor)
    return int(text[len(_CURSOR_PREFIX) :])


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


AnyModel = TypeVar("AnyModel", bound=Model)


def paginate(queryset: QuerySet[AnyModel], *, after_id: int | None, limit: int) -> Page[AnyModel]:
    """Keyset pagination on the primary key: stable under concurrent inserts and O(limit) at any depth."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    if after_id is not None:
        queryset = queryset.filter(pk__gt=after_id)
    rows = list(queryset.order_by("pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1].pk) if more and rows else None)


# --- samples ------------------------------------------------------------------------------------------------


def _with_representation(queryset: QuerySet[Sample]) -> QuerySet[Sample]:
    """Everything the sample representation reads that the look-up cache does not hold, in one query."""
    latest = Result.objects.filter(sample=OuterRef("pk")).order_by("-version")
    return queryset.select_related(*SAMPLE_RELATED).annotate(
        latest_result_version=Subquery(latest.values("version")[:1]),
        latest_result_report=Subquery(latest.values("report")[:1]),
    )


def _complete(samples: list[Sample]) -> list[Sample]:
    """Attaches cached reference rows, and the members of pooled tubes (one query, only when there are pools)."""
    lookups.attach_reference_rows(samples)
    pools = [sample for sample in samples if sample.is_pool]
    if pools:
        prefetch_related_objects(
            pools, Prefetch("members", queryset=Sample.objects.only("id", "pool_id").order_by("id"))
        )
    return samples


def sample_just_written(sample: Sample) -> Sample:
    """The representation of a sample a service has just returned, without reading it back.

    The service's instance already carries its patient; reference rows come from the cache and the latest result
    version from the instance's own state, so answering a registration costs no extra query."""
    if not hasattr(sample, "latest_result_version"):
        latest = (
            sample.results.order_by("-version").values("version", "report").first() if sample.result_value_id else None
        )
        sample.latest_result_version = latest["version"] if latest else None  # type: ignore[attr-defined]
        sample.latest_result_report = latest["report"] if latest else ""  # type: ignore[attr-defined]
    return _complete([sample])[0]


@dataclass
class SampleFilters:
    state: str | None = None
    establishment: str | None = None  # establishment code
    laboratory: int | None = None  # lab platform id
    disease: str | None = None  # disease code
    test: str | None = None  # test code
    collected_from: datetime | None = None
    collected_to: datetime | None = None
    updated_since: datetime | None = None
    patient_document: str | None = None
    result: str | None = None  # result value code


def _document_variants(raw: str) -> set[str]:
    """The stored forms a document number typed by a person may have (RUN with dots, lower-case k...)."""
    text = raw.strip()
    variants = {text, text.upper()}
    with contextlib.suppress(DocumentInvalid):
        variants.add(normalise_run(text))
    return {v for v in variants if v}


def _filter_samples(queryset: QuerySet[Sample], filters: SampleFilters) -> QuerySet[Sample]:
    q = Q()
    if filters.state:
        q &= Q(state=filters.state)
    if filters.establishment:
        q &= Q(establishment__code=filters.establishment)
    if filters.laboratory is not None:
        q &= Q(laboratory__platform_id=filters.laboratory)
    if filters.disease:
        q &= Q(disease__code=filters.disease)
    if filters.test:
        q &= Q(test__code=filters.test)
    if filters.collected_from is not None:
        q &= Q(collected_at__gte=filters.collected_from)
    if filters.collected_to is not None:
        q &= Q(collected_at__lt=filters.collected_to)
    if filters.updated_since is not None:
        q &= Q(updated_at__gte=filters.updated_since)
    if filters.patient_document:
        q &= Q(patient__document_number__in=_document_variants(filters.patient_document))
    if filters.result:
        q &= Q(result_value__code=filters.result)
    return queryset.filter(q)


def sample_page(
    actor: Actor, filters: SampleFilters, *, after_id: int | None = None, limit: int = DEFAULT_PAGE_SIZE
) -> Page[Sample]:
    """One page of the samples the actor may see, oldest first (a sync client walks forward to the newest)."""
    queryset = _filter_samples(scoped(actor, Sample.objects.all()), filters)
    page = paginate(_with_representation(queryset), after_id=after_id, limit=limit)
    _complete(page.items)
    return page


def sample_list(actor: Actor, filters: SampleFilters) -> QuerySet[Sample]:
    """The visible samples matching `filters`, newest collection first, ready to be sliced into a page.

    Call `samples_complete` on the page's rows to attach their reference rows (from the look-up cache)."""
    queryset = _filter_samples(scoped(actor, Sample.objects.all()), filters)
    return _with_representation(queryset).order_by("-collected_at", "-pk")


def samples_complete(samples: list[Sample]) -> list[Sample]:
    """Attaches reference rows (and pool members) to samples read through `sample_list`."""
    return _complete(samples)


def sample_get(actor: Actor, sample_id: int | None) -> Sample | None:
    """One sample with everything its representation needs, or None when missing or out of scope."""
    if sample_id is None:
        return None
    sample = _with_representation(scoped(actor, Sample.objects.filter(pk=sample_id))).first()
    if sample is not None:
        _complete([sample])
    return sample


def sample_by_scan(actor: Actor, code: str) -> Sample | None:
    """The visible sample a scanned or typed code names: its 10-digit public number or its tube barcode.

    Labels printed by Muestra carry the public number; pre-labelled tubes carry their own barcode (`tube_code`).
    None when nothing matches or the match is out of the actor's scope (the two are not told apart).
    """
    code = (code or "").strip()
    if not code:
        return None
    sample_id = pk_from_public_number(code) if code.isdigit() else None
    if sample_id is not None:
        found = sample_get(actor, sample_id)
        if found is not None:
            return found
    match = scoped(actor, Sample.objects.filter(tube_code=code)).values_list("pk", flat=True).first()
    return sample_get(actor, match) if match is not None else None


def samples_by_ids(actor: Actor, sample_ids: Sequence[int]) -> dict[int, Sample]:
    """The visible samples among `sample_ids`, by primary key (after a batch write, to show the outcomes)."""
    ids = [i for i in sample_ids if i is not None]
    if not ids:
        return {}
    samples = _complete(list(_with_representation(scoped(actor, Sample.objects.filter(pk__in=ids)))))
    return {s.pk: s for s in samples}


class IdentifierKind(StrEnum):
    """What a sample identifier sent by another system is, when the sender says so."""

    NUMBER = "number"  # our 10-digit public number
    TUBE = "tube"  # the barcode pre-printed on the tube
    CLIENT = "client"  # the laboratory's own code (unique within that lab)
    ANY = "any"  # not said: tried as each of the three


@dataclass(frozen=True)
class SampleIdentifier:
    value: str
    kind: IdentifierKind = IdentifierKind.ANY


@dataclass
class IdentifiedSamples:
    """What `samples_by_identifiers` found: the visible samples by pk, and which samples each identifier names."""

    samples: dict[int, Sample]
    named: dict[SampleIdentifier, set[int]]

    def candidates(self, identifiers: Iterable[SampleIdentifier]) -> list[Sample]:
        """The distinct samples any of `identifiers` names, by pk: one = identified, none = unknown (or out of
        scope, not told apart), several = ambiguous."""
        pks: set[int] = set()
        for identifier in identifiers:
            pks |= self.named.get(_clean_identifier(identifier), set())
        return [self.samples[pk] for pk in sorted(pks)]


def _number_pk(value: str) -> int | None:
    """The pk a public number names (digits only, and short enough for the database's integers)."""
    return pk_from_public_number(value) if value.isdigit() and len(value) <= 18 else None


def _clean_identifier(identifier: SampleIdentifier) -> SampleIdentifier:
    value = (identifier.value or "").strip()
    return identifier if value == identifier.value else SampleIdentifier(value, identifier.kind)


#: What identification itself reads of each sample (always loaded when `fields` narrows the rows).
IDENTIFICATION_FIELDS = ("id", "tube_code", "client_code", "client_lab_id")


def _identifier_query(actor: Actor, wanted: set[SampleIdentifier]) -> Q:
    pks: set[int] = set()
    tubes: set[str] = set()
    codes: set[str] = set()
    for identifier in wanted:
        kind, value = identifier.kind, identifier.value
        if kind in (IdentifierKind.NUMBER, IdentifierKind.ANY) and (pk := _number_pk(value)) is not None:
            pks.add(pk)
        if kind in (IdentifierKind.TUBE, IdentifierKind.ANY):
            tubes.add(value)
        if kind in (IdentifierKind.CLIENT, IdentifierKind.ANY):
            codes.add(value)
    # `in_array`: one array parameter per list, so the statement is the same for any number of identifiers.
    q = Q(pk__in_array=sorted(pks)) if pks else Q()
    if tubes:
        q |= Q(tube_code__in_array=sorted(tubes))
    if codes and actor.laboratory_ids:
        q |= Q(client_lab_id__in_array=sorted(actor.laboratory_ids), client_code__in_array=sorted(codes))
    return q


def _wanted(identifiers: Iterable[SampleIdentifier]) -> set[SampleIdentifier]:
    return {i for i in map(_clean_identifier, identifiers) if i.value}


def _named(
    actor: Actor, wanted: set[SampleIdentifier], found: Iterable[tuple[int, str | None, str, int | None]]
) -> dict[SampleIdentifier, set[int]]:
    """Which of the found samples (pk, tube code, client code, client lab) each identifier names."""
    pks: set[int] = set()
    by_tube: dict[str, int] = {}
    by_code: dict[str, set[int]] = {}
    for pk, tube_code, client_code, client_lab_id in found:
        pks.add(pk)
        if tube_code:
            by_tube[tube_code] = pk
        if client_code and client_lab_id in actor.laboratory_ids:
            by_code.setdefault(client_code, set()).add(pk)
    named: dict[SampleIdentifier, set[int]] = {}
    for identifier in wanted:
        kind, value = identifier.kind, identifier.value
        names: set[int] = set()
        if kind in (IdentifierKind.NUMBER, IdentifierKind.ANY):
            numbered = _number_pk(value)
            if numbered is not None and numbered in pks:
                names.add(numbered)
        if kind in (IdentifierKind.TUBE, IdentifierKind.ANY) and value in by_tube:
            names.add(by_tube[value])
        if kind in (IdentifierKind.CLIENT, IdentifierKind.ANY) and value in by_code:
            names |= by_code[value]
        if names:
            named[identifier] = names
    return named


def samples_by_identifiers(
    actor: Actor, identifiers: Iterable[SampleIdentifier], *, fields: Sequence[str] | None = None
) -> IdentifiedSamples:
    """The visible samples that identifiers sent by a lab system name, for many identifiers in ONE query.

    An identifier is our 10-digit public number or the tube barcode (as `sample_by_scan` reads a scanned code), or
    the laboratory's own code of one of the actor's labs. An identifier without a kind is tried as all three, so a
    code may name several samples: the caller decides (a result is only applied when exactly one sample is named).
    Rows are plain samples (no joins); `fields` loads only those columns (batch callers that read few of them:
    building thousands of full rows costs more than the query), any other column read later is one query each.
    """
    wanted = _wanted(identifiers)
    q = _identifier_query(actor, wanted)
    if not q:
        return IdentifiedSamples({}, {})
    queryset = scoped(actor, Sample.objects.filter(q))
    if fields is not None:
        queryset = queryset.only(*dict.fromkeys([*IDENTIFICATION_FIELDS, *fields]))
    samples = {s.pk: s for s in queryset}
    found = ((s.pk, s.tube_code, s.client_code, s.client_lab_id) for s in samples.values())
    return IdentifiedSamples(samples, _named(actor, wanted, found))


@dataclass
class IdentifiedValues:
    """What `sample_values_by_identifiers` found: the visible samples' asked values by pk, and which samples each
    identifier names."""

    values: dict[int, dict[str, Any]]
    named: dict[SampleIdentifier, set[int]]


def sample_values_by_identifiers(
    actor: Actor, identifiers: Iterable[SampleIdentifier], *, values: Sequence[str]
) -> IdentifiedValues:
    """`samples_by_identifiers` for callers that only read a few values of each sample (`values` may follow a
    relation, `patient__document_number`): plain dictionaries from one query, no model instances. A file of
    results checks each row's patient this way: for 500 rows, a fifth of the CPU of loading the samples and then
    their patients."""
    wanted = _wanted(identifiers)
    q = _identifier_query(actor, wanted)
    if not q:
        return IdentifiedValues({}, {})
    rows = {
        row["id"]: row
        for row in scoped(actor, Sample.objects.filter(q)).values(*dict.fromkeys([*IDENTIFICATION_FIELDS, *values]))
    }
    found = ((pk, row["tube_code"], row["client_code"], row["client_lab_id"]) for pk, row in rows.items())
    return IdentifiedValues(rows, _named(actor, wanted, found))


def sample_events(actor: Actor, sample_id: int) -> list[SampleEvent]:
    """The chain of custody of a sample the caller has already been shown (scoped again all the same)."""
    return list(
        scoped(actor, SampleEvent.objects.filter(sample_id=sample_id))
        .select_related("laboratory", "establishment", "actor_user")
        .order_by("at", "id")
    )


def sample_results(actor: Actor, sample_id: int) -> list[Result]:
    """Every version of the sample's result, first delivery first."""
    return list(
        scoped(actor, Result.objects.filter(sample_id=sample_id))
        .select_related("value", "laboratory", "from_pool_result")
        .order_by("version")
    )


def sample_report(actor: Actor, sample_id: int, version: int | None = None) -> Result | None:
    """The result version whose signed report is downloaded: the given one, or the latest that has a report."""
    queryset = scoped(actor, Result.objects.filter(sample_id=sample_id)).exclude(report="")
    if version is not None:
        queryset = queryset.filter(version=version)
    return queryset.order_by("-version").first()


# --- shipments ----------------------------------------------------------------------------------------------


@dataclass
class ShipmentFilters:
    state: str | None = None
    laboratory: int | None = None  # lab platform id
    establishment: str | None = None  # establishment code


def _shipment_representation(queryset: QuerySet[Shipment]) -> QuerySet[Shipment]:
    return queryset.select_related("establishment", "laboratory").prefetch_related(
        Prefetch("items", queryset=ShipmentItem.objects.select_related("sample").order_by("id"))
    )


def shipment_page(
    actor: Actor, filters: ShipmentFilters, *, after_id: int | None = None, limit: int = DEFAULT_PAGE_SIZE
) -> Page[Shipment]:
    queryset = scoped(actor, Shipment.objects.all())
    if filters.state:
        queryset = queryset.filter(state=filters.state)
    if filters.laboratory is not None:
        queryset = queryset.filter(laboratory__platform_id=filters.laboratory)
    if filters.establishment:
        queryset = queryset.filter(establishment__code=filters.establishment)
    return paginate(_shipment_representation(queryset), after_id=after_id, limit=limit)


def shipment_get(actor: Actor, shipment_id: int | None) -> Shipment | None:
    if shipment_id is None:
        return None
    return _shipment_representation(scoped(actor, Shipment.objects.filter(pk=shipment_id))).first()


# --- places the caller may see ------------------------------------------------------------------------------


def laboratories(actor: Actor) -> list[Laboratory]:
    return list(scoped(actor, Laboratory.objects.filter(active=True)).select_related("territory").order_by("name"))


def establishments(actor: Actor) -> list[Establishment]:
    """Visible establishments with the labs each may send to (one prefetch)."""
    assignments = LabAssignment.objects.filter(active=True).select_related("laboratory").order_by("laboratory_id")
    return list(
        scoped(actor, Establishment.objects.filter(active=True))
        .select_related("territory")
        .prefetch_related(Prefetch("assignments", queryset=assignments))
        .order_by("name")
    )


# --- catalogue ----------------------------------------------------------------------------------------------
# Reference data is public to every authenticated caller and holds no personal data, so it has no scoping rule
# (scoped() refuses models it does not know, on purpose). Only active entries are offered for new data.


def diseases() -> list[Disease]:
    return list(Disease.objects.filter(active=True).order_by("code"))


def tests() -> list[Test]:
    return list(
        Test.objects.filter(active=True)
        .select_related("disease")
        .prefetch_related(
            Prefetch("sample_types", queryset=SampleType.objects.filter(active=True).order_by("code")),
            Prefetch("result_values", queryset=ResultValue.objects.filter(active=True).order_by("code")),
        )
        .order_by("code")
    )


def sample_types() -> list[SampleType]:
    return list(SampleType.objects.filter(active=True).order_by("code"))


def result_values() -> list[ResultValue]:
    return list(ResultValue.objects.filter(active=True).order_by("code"))


def rejection_reasons() -> list[RejectionReason]:
    return list(RejectionReason.objects.filter(active=True).order_by("code"))


def strategies() -> list[Strategy]:
    return list(Strategy.objects.filter(active=True).select_related("parent").order_by("code"))


def identity_document_types() -> list[IdentityDocumentType]:
    return list(IdentityDocumentType.objects.filter(active=True).order_by("code"))


def health_insurances() -> list[HealthInsurance]:
    return list(HealthInsurance.objects.filter(active=True).order_by("code"))


# --- laboratory worklists -----------------------------------------------------------------------------------


class WorklistTab(StrEnum):
    TO_RECEIVE = "to_receive"
    IN_PROCESS = "in_process"
    FINISHED = "finished"
    REJECTED = "rejected"


#: The states each worklist shows. "To receive" includes registered samples addressed to the lab: a tube may
#: arrive before its manifest was dispatched on screen.
WORKLIST_STATES: dict[WorklistTab, tuple[str, ...]] = {
    WorklistTab.TO_RECEIVE: (SampleState.REGISTERED, SampleState.DISPATCHED),
    WorklistTab.IN_PROCESS: (SampleState.RECEIVED,),
    WorklistTab.FINISHED: (SampleState.RESULT,),
    WorklistTab.REJECTED: (SampleState.REJECTED, SampleState.RETURNED),
}
#: Finished and rejected samples are shown for this many days after their last change (the lists stay short).
WORKLIST_RECENT_DAYS = 30
_WORKLIST_ORDER: dict[WorklistTab, tuple[str, ...]] = {
    WorklistTab.TO_RECEIVE: ("collected_at", "pk"),
    WorklistTab.IN_PROCESS: ("received_at", "pk"),
    WorklistTab.FINISHED: ("-state_changed_at", "-pk"),
    WorklistTab.REJECTED: ("-state_changed_at", "-pk"),
}


def _worklist_q(tab: WorklistTab, since: datetime) -> Q:
    q = Q(state__in=WORKLIST_STATES[tab])
    if tab in (WorklistTab.FINISHED, WorklistTab.REJECTED):
        q &= Q(state_changed_at__gte=since)
    return q


def _lab_samples(actor: Actor, laboratory_ids: Sequence[int]) -> QuerySet[Sample]:
    """Tubes (pool members follow their pool tube) currently assigned to the given labs of the actor."""
    labs = [pk for pk in laboratory_ids if actor.acts_for_laboratory(pk)]
    return scoped(actor, Sample.objects.filter(laboratory_id__in=labs, pool__isnull=True))


def lab_worklist_counts(actor: Actor, laboratory_ids: Sequence[int], *, now: datetime) -> dict[str, int]:
    """How many samples each worklist holds, in one query."""
    since = now - timedelta(days=WORKLIST_RECENT_DAYS)
    counts = _lab_samples(actor, laboratory_ids).aggregate(
        **{tab.value: Count("pk", filter=_worklist_q(tab, since)) for tab in WorklistTab}
    )
    return {key: value or 0 for key, value in counts.items()}


def lab_worklist(actor: Actor, laboratory_ids: Sequence[int], tab: WorklistTab, *, now: datetime) -> QuerySet[Sample]:
    """One worklist of the actor's labs, in working order, ready to be sliced into a page (then `samples_complete`
    the page's rows): oldest collection first to receive, oldest receipt first in process, newest first else."""
    since = now - timedelta(days=WORKLIST_RECENT_DAYS)
    queryset = _lab_samples(actor, laboratory_ids).filter(_worklist_q(tab, since))
    return queryset.select_related(*SAMPLE_RELATED).order_by(*_WORKLIST_ORDER[tab])


def lab_sample(actor: Actor, sample_id: int | None) -> Sample | None:
    """A sample the actor's lab currently holds (None when missing, out of scope or assigned to another lab)."""
    sample = sample_get(actor, sample_id)
    if sample is None or not actor.acts_for_laboratory(sample.laboratory_id):
        return None
    return sample


def lab_samples_by_ids(actor: Actor, sample_ids: Sequence[int]) -> dict[int, Sample]:
    """The samples among `sample_ids` that the actor's labs currently hold, by primary key."""
    return {pk: s for pk, s in samples_by_ids(actor, sample_ids).items() if actor.acts_for_laboratory(s.laboratory_id)}


def forwarding_laboratories(sample: Sample) -> list[Laboratory]:
    """Active labs authorised for the sample's disease, other than its current lab (reference data, one query)."""
    labs = Laboratory.objects.filter(active=True, diseases=sample.disease_id)
    if sample.laboratory_id is not None:
        labs = labs.exclude(pk=sample.laboratory_id)
    return list(labs.order_by("name"))


def result_choices(test: Test | None) -> list[ResultValue]:
    """The result values a lab may deliver for `test` (never the system's re-test marker), from the cache."""
    if test is None:
        return []
    return [
        value
        for value in lookups.active_result_values()
        if value.interpretation != Interpretation.RETEST and lookups.test_accepts(test, result_value_id=value.pk)
    ]


class CorrectionOption(StrEnum):
    NONE = "none"  # no result to correct
    DIRECT = "direct"  # within the window, first correction
    AUTHORISED = "authorised"  # an administrator's authorisation is waiting to be used
    PENDING = "pending"  # a request waits for a decision
    REQUEST = "request"  # a correction needs a request first


def correction_option(actor: Actor, sample: Sample, results: Sequence[Result]) -> CorrectionOption:
    """Which way the sample's lab may correct its result now (mirrors the rule in `services.result_correct`)."""
    from muestra.samples.services import correction_needs_authorisation

    if sample.state != SampleState.RESULT or not results:
        return CorrectionOption.NONE
    if not correction_needs_authorisation(results):
        return CorrectionOption.DIRECT
    if scoped(actor, CorrectionAuthorization.objects.filter(sample_id=sample.pk, used_at__isnull=True)).exists():
        return CorrectionOption.AUTHORISED
    if scoped(actor, CorrectionRequest.objects.filter(sample_id=sample.pk, state="pending")).exists():
        return CorrectionOption.PENDING
    return CorrectionOption.REQUEST


# --- late-correction requests -------------------------------------------------------------------------------


def _correction_request_representation(queryset: QuerySet[CorrectionRequest]) -> QuerySet[CorrectionRequest]:
    return queryset.select_related("sample", "requested_by", "decided_by")


def correction_requests_complete(requests: Sequence[CorrectionRequest]) -> list[CorrectionRequest]:
    """Attaches the reference rows (lab, values, the sample's own) from the look-up cache."""
    for request in requests:
        request._state.fields_cache["laboratory"] = lookups.laboratory_by_pk(request.laboratory_id)
        request._state.fields_cache["proposed_value"] = lookups.by_pk(ResultValue, request.proposed_value_id)
    lookups.attach_reference_rows([r.sample for r in requests])
    return list(requests)


def correction_requests(actor: Actor, *, state: str | None) -> QuerySet[CorrectionRequest]:
    """Correction requests the actor may see, oldest pending first (newest decided first for the history);
    slice into a page, then `correction_requests_complete` the rows."""
    queryset = scoped(actor, CorrectionRequest.objects.all())
    if state == "pending":
        queryset = queryset.filter(state="pending").order_by("requested_at", "pk")
    elif state:
        queryset = queryset.filter(state=state).order_by("-decided_at", "-pk")
    else:
        queryset = queryset.exclude(state="pending").order_by("-decided_at", "-pk")
    return _correction_request_representation(queryset)


def correction_request_get(actor: Actor, request_id: int | None) -> CorrectionRequest | None:
    if request_id is None:
        return None
    found = _correction_request_representation(scoped(actor, CorrectionRequest.objects.filter(pk=request_id))).first()
    return correction_requests_complete([found])[0] if found is not None else None


def correction_requests_for_sample(actor: Actor, sample_id: int) -> list[CorrectionRequest]:
    queryset = scoped(actor, CorrectionRequest.objects.filter(sample_id=sample_id)).order_by("requested_at", "pk")
    return correction_requests_complete(list(_correction_request_representation(queryset)))


def pending_correction_request_count(actor: Actor) -> int:
    return scoped(actor, CorrectionRequest.objects.filter(state="pending")).count()


# --- the establishment side: "my samples" and the shipments being prepared ------------------------------------


def _sample_search_q(text: str) -> Q:
    """What a person may type to find a sample: its number, tube barcode or the lab's own code, the patient's
    document number, or words of the patient's name (each word must appear in one of the names)."""
    q = Q(tube_code=text) | Q(client_code=text) | Q(patient__document_number__in=_document_variants(text))
    pk = pk_from_public_number(text) if text.isdigit() else None
    if pk is not None:
        q |= Q(pk=pk)
    words = text.split()
    if words and not any(ch.isdigit() for ch in text):
        name_q = Q()
        for word in words[:5]:
            name_q &= (
                Q(patient__given_names__icontains=word)
                | Q(patient__paternal_surname__icontains=word)
                | Q(patient__maternal_surname__icontains=word)
            )
        q |= name_q
    return q


def establishment_samples(actor: Actor, establishment_ids: Sequence[int], *, search: str = "") -> QuerySet[Sample]:
    """The samples of the given establishments that the actor sees, narrowed by a search (any state)."""
    queryset = scoped(actor, Sample.objects.filter(establishment_id__in=list(establishment_ids)))
    text = (search or "").strip()
    return queryset.filter(_sample_search_q(text)) if text else queryset


def sample_state_counts(queryset: QuerySet[Sample]) -> dict[str, int]:
    """How many samples of `queryset` are in each state, in one query."""
    rows = queryset.order_by().values("state").annotate(n=Count("pk")).values_list("state", "n")
    return {state: n for state, n in rows}


def establishment_sample_list(queryset: QuerySet[Sample], states: Sequence[str]) -> QuerySet[Sample]:
    """`queryset` (from `establishment_samples`) in the given states, newest collection first, ready to be sliced
    into a page; call `samples_complete` on the page's rows."""
    return _with_representation(queryset.filter(state__in=list(states))).order_by("-collected_at", "-pk")


def establishment_shipments(
    actor: Actor, establishment_ids: Sequence[int], *, state: str | None = None
) -> QuerySet[Shipment]:
    """The shipments of the given establishments that the actor sees, newest first, with their tube count."""
    queryset = scoped(actor, Shipment.objects.filter(establishment_id__in=list(establishment_ids)))
    if state:
        queryset = queryset.filter(state=state)
    return queryset.select_related("establishment", "laboratory").annotate(tube_count=Count("items")).order_by("-pk")


def shipment_state_counts(actor: Actor, establishment_ids: Sequence[int]) -> dict[str, int]:
    queryset = scoped(actor, Shipment.objects.filter(establishment_id__in=list(establishment_ids)))
    rows = queryset.order_by().values("state").annotate(n=Count("pk")).values_list("state", "n")
    return {state: n for state, n in rows}


def shipment_header(actor: Actor, shipment_id: int | None) -> Shipment | None:
    """One shipment with its origin and destination (no items), or None when missing or out of scope."""
    if shipment_id is None:
        return None
    return scoped(actor, Shipment.objects.filter(pk=shipment_id)).select_related("establishment", "laboratory").first()


def shipment_items(actor: Actor, shipment_id: int) -> list[ShipmentItem]:
    """The lines of a shipment the actor sees, in the order the tubes went in, each with its sample (patient
    joined, reference rows attached)."""
    items = list(
        scoped(actor, ShipmentItem.objects.filter(shipment_id=shipment_id))
        .select_related("sample", "sample__patient")
        .order_by("id")
    )
    lookups.attach_reference_rows([item.sample for item in items])
    return items
