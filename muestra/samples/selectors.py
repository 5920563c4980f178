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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from django.db.models import OuterRef, Prefetch, Q, QuerySet, Subquery, prefetch_related_objects

from muestra.accounts.scoping import Actor, scoped
from muestra.catalog.models import (
    Disease,
    HealthInsurance,
    IdentityDocumentType,
    RejectionReason,
    ResultValue,
    SampleType,
    Strategy,
    Test,
)
from muestra.facilities.models import Establishment, LabAssignment, Laboratory
from muestra.patients.documents import DocumentInvalid, normalise_run
from muestra.samples import lookups
from muestra.samples.models import PUBLIC_NUMBER_OFFSET, Result, Sample, SampleEvent, Shipment, ShipmentItem

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


def _paginate(queryset: QuerySet[M], *, after_id: int | None, limit: int) -> Page[M]:
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
    return queryset.filter(q)


def sample_page(
    actor: Actor, filters: SampleFilters, *, after_id: int | None = None, limit: int = DEFAULT_PAGE_SIZE
) -> Page[Sample]:
    """One page of the samples the actor may see, oldest first (a sync client walks forward to the newest)."""
    queryset = _filter_samples(scoped(actor, Sample.objects.all()), filters)
    page = _paginate(_with_representation(queryset), after_id=after_id, limit=limit)
    _complete(page.items)
    return page


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


def sample_events(actor: Actor, sample_id: int) -> list[SampleEvent]:
    """The chain of custody of a sample the caller has already been shown (scoped again all the same)."""
    return list(
        scoped(actor, SampleEvent.objects.filter(sample_id=sample_id))
        .select_related("laboratory", "establishment")
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
    return _paginate(_shipment_representation(queryset), after_id=after_id, limit=limit)


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
