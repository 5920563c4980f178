"""/supervision: what arrived from the caller's laboratory systems and what became of it, for a LIS to reconcile.

`GET /supervision` summarises the last days (units and items per channel and outcome, items still failing,
samples received without a result past the target, outbound deliveries waiting); `/supervision/items` lists every
item with its outcome, field and reason (cursor-paginated); `/supervision/overdue` the late samples;
`POST /supervision/items/{id}/reprocess` fixes a rejected file row, HL7 message or FHIR Bundle and processes it
again. An API key sees its own lab; a national administrator's session every lab. Anything else of another lab
answers 404, exactly like a missing one. See docs/supervision.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router
from pydantic import BaseModel, Field

from muestra.accounts.scoping import Actor
from muestra.api.auth import actor_of
from muestra.api.common import ERRORS, page_after
from muestra.api.idempotency import idempotent
from muestra.core.errors import NotFound, PermissionDenied, ValidationFailed
from muestra.facilities.models import Laboratory
from muestra.integrations import selectors, services
from muestra.integrations.models import IntakeItem
from muestra.samples.selectors import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, public_number, samples_complete

router = Router(tags=["supervision"])

ChannelName = Literal["file", "hl7", "fhir", "pntm"]
OutcomeName = Literal["accepted", "unchanged", "rejected", "held"]


# --- schemas -----------------------------------------------------------------------------------------------------


class ChannelOut(BaseModel):
    channel: ChannelName
    units: int = Field(description="Units received (files, HL7 messages or batches, Bundles, national API calls)")
    unreadable: int = Field(description="Units that could not be read at all (see `error` of the unit)")
    accepted: int
    unchanged: int = Field(description="Items already recorded: nothing changed")
    rejected: int = Field(description="Items refused and not fixed since")
    held: int = Field(description="Items waiting for a person to name their sample")


class ItemErrorOut(BaseModel):
    field: str
    code: str
    message: str


class ItemOut(BaseModel):
    id: int
    unit: int = Field(description="The received unit (upload, HL7 message or batch, Bundle, API call)")
    channel: ChannelName
    kind: str = Field(description="File template, HL7 message type, Bundle type or national API operation")
    laboratory: int | None = Field(description="The lab's platform_id")
    received_at: datetime
    position: int = Field(description="Row of the file (1 = first data row), message of a batch, entry of a Bundle")
    reference: str = Field(description="The identifiers as the sender wrote them")
    outcome: OutcomeName
    sample: int | None = Field(description="Public number of the sample the item concerns, when known")
    errors: list[ItemErrorOut]
    superseded_by: int | None = Field(description="The item that records the outcome after a fix, if any")
    reprocessable: bool = Field(description="Whether POST .../reprocess may fix it")


class OverdueOut(BaseModel):
    sample: int = Field(description="Public number")
    laboratory: int | None = Field(description="The lab's platform_id")
    test: str = Field(description="Catalogue code")
    received_at: datetime
    hours_waiting: int


class DeliveryOut(BaseModel):
    subscription: int
    name: str
    pending: int
    failing: int
    dead: int
    oldest_waiting: datetime | None


class SummaryOut(BaseModel):
    since: datetime
    days: int
    laboratory: int | None
    channels: list[ChannelOut]
    failing: int = Field(description="Rejected items not fixed since")
    held: int
    failures: list[ItemOut] = Field(description="The most recent failing items (all of them: /supervision/items)")
    overdue: int = Field(description="Samples received without a result past the target")
    overdue_hours: int = Field(description="The target (MUESTRA_LAB_TARGET_HOURS)")
    deliveries_scope: Literal["all", "laboratory"] = Field(
        description="`all` for administrators; `laboratory`: deliveries about the caller's lab's samples"
    )
    deliveries: list[DeliveryOut]


class ItemPage(BaseModel):
    items: list[ItemOut]
    next_cursor: str | None


class OverduePage(BaseModel):
    items: list[OverdueOut]
    next_cursor: str | None


class SummaryQuery(BaseModel):
    days: int = Field(selectors.DEFAULT_DAYS, ge=1, le=selectors.MAX_DAYS)
    laboratory: int | None = Field(None, description="A lab's platform_id (administrators: any lab)")


class ItemQuery(BaseModel):
    outcome: OutcomeName | None = None
    channel: ChannelName | None = None
    since: datetime | None = Field(None, description=f"Default: {selectors.DEFAULT_DAYS} days ago")
    laboratory: int | None = Field(None, description="A lab's platform_id (administrators: any lab)")
    current: bool = Field(False, description="Only items not superseded by a fix")
    cursor: str | None = None
    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)


class OverdueQuery(BaseModel):
    laboratory: int | None = Field(None, description="A lab's platform_id (administrators: any lab)")
    cursor: str | None = None
    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)


class ReprocessIn(BaseModel):
    data: dict[str, str] | None = Field(
        None, description="File row: the row's fields as in `GET .../items/{id}` (names of the stored row)"
    )
    content: str | None = Field(None, description="HL7 message or FHIR Bundle: the corrected raw content")


class ReprocessOut(BaseModel):
    item: ItemOut = Field(description="The item fixed, now superseded")
    unit: int = Field(description="The unit holding the new outcome (the same upload, or the new HL7/FHIR unit)")
    new_items: list[ItemOut]


class ItemDetailOut(ItemOut):
    data: dict[str, Any] = Field(description="The item as received, to correct and send back")


# --- helpers -----------------------------------------------------------------------------------------------------


def _supervisor(request: HttpRequest) -> Actor:
    actor = actor_of(request)
    if not selectors.may_supervise(actor):
        raise PermissionDenied(_("Supervision is for laboratories and national administrators."))
    return actor


def _lab_pk(actor: Actor, platform_id: int | None) -> int | None:
    if platform_id is None:
        return None
    pk = Laboratory.objects.filter(platform_id=platform_id).values_list("pk", flat=True).first()
    if pk is None or not actor.acts_for_laboratory(pk):
        raise NotFound(_("Laboratory not found."), field="laboratory")
    return int(pk)


def _item_out(item: IntakeItem) -> ItemOut:
    intake = item.intake
    return ItemOut(
        id=item.pk,
        unit=item.intake_id,
        channel=intake.channel,  # type: ignore[arg-type]
        kind=intake.kind,
        laboratory=intake.laboratory.platform_id if intake.laboratory else None,
        received_at=intake.received_at,
        position=item.position,
        reference=item.reference,
        outcome=item.outcome,  # type: ignore[arg-type]
        sample=public_number(item.sample_id) if item.sample_id else None,
        errors=[ItemErrorOut(**{k: str(e.get(k, "")) for k in ("field", "code", "message")}) for e in item.errors],
        superseded_by=item.superseded_by_id,
        reprocessable=not services.reprocess_refusal(item),
    )


def _visible_item(actor: Actor, item_id: int) -> IntakeItem:
    item = selectors.supervision_item_get(actor, item_id)
    if item is None:
        raise NotFound(_("Received item not found."), field="item")
    return item


# --- endpoints ---------------------------------------------------------------------------------------------------


@router.get("", response={200: SummaryOut, **ERRORS}, summary="What arrived and what became of it")
def supervision_summary(request: HttpRequest, filters: Query[SummaryQuery]) -> SummaryOut:
    actor = _supervisor(request)
    summary = selectors.supervision_summary(
        actor, days=filters.days, laboratory_id=_lab_pk(actor, filters.laboratory), overdue_limit=1
    )
    return SummaryOut(
        since=summary.since,
        days=summary.days,
        laboratory=filters.laboratory,
        channels=[
            ChannelOut(
                channel=c.channel,  # type: ignore[arg-type]
                units=c.intakes,
                unreadable=c.unreadable,
                accepted=c.accepted,
                unchanged=c.unchanged,
                rejected=c.rejected,
                held=c.held,
            )
            for c in summary.channels
        ],
        failing=summary.failures_total,
        held=summary.held_total,
        failures=[_item_out(i) for i in summary.failures],
        overdue=summary.overdue_total,
        overdue_hours=summary.overdue_hours,
        deliveries_scope=summary.deliveries_scope,  # type: ignore[arg-type]
        deliveries=[
            DeliveryOut(
                subscription=d.subscription_id,
                name=d.name,
                pending=d.pending,
                failing=d.failing,
                dead=d.dead,
                oldest_waiting=d.oldest_waiting,
            )
            for d in summary.deliveries
        ],
    )


@router.get(
    "/items",
    response={200: ItemPage, **ERRORS},
    summary="Every received item with its outcome",
    description=(
        "Oldest first, a page at a time (pass `next_cursor` back as `cursor`). Filters: `outcome`, `channel`, "
        "`since` (default: 7 days ago), `laboratory`, `current` (only items not superseded by a fix)."
    ),
)
def supervision_items(request: HttpRequest, filters: Query[ItemQuery]) -> ItemPage:
    actor = _supervisor(request)
    since = filters.since or timezone.now() - timedelta(days=selectors.DEFAULT_DAYS)
    if timezone.is_naive(since):
        since = timezone.make_aware(since)
    items = selectors.supervision_items(
        actor,
        since=since,
        laboratory_id=_lab_pk(actor, filters.laboratory),
        outcome=filters.outcome,
        channel=filters.channel,
        current_only=filters.current,
    )
    page = page_after(items, filters.cursor, filters.limit)
    return ItemPage(items=[_item_out(i) for i in page.items], next_cursor=page.next_cursor)


@router.get(
    "/items/{int:item_id}",
    response={200: ItemDetailOut, **ERRORS},
    summary="One received item, with what was received",
    url_name="supervision_item",
)
def supervision_item(request: HttpRequest, item_id: int) -> ItemDetailOut:
    item = _visible_item(_supervisor(request), item_id)
    return ItemDetailOut(**_item_out(item).model_dump(), data=item.data or {})


@router.get(
    "/overdue",
    response={200: OverduePage, **ERRORS},
    summary="Samples received without a result past the target",
    description="Samples in process for longer than `MUESTRA_LAB_TARGET_HOURS`, by id, a page at a time.",
)
def supervision_overdue(request: HttpRequest, filters: Query[OverdueQuery]) -> OverduePage:
    actor = _supervisor(request)
    now = timezone.now()
    samples = selectors.overdue_samples(actor, laboratory_id=_lab_pk(actor, filters.laboratory), now=now).order_by("pk")
    page = page_after(samples, filters.cursor, filters.limit)
    return OverduePage(
        items=[
            OverdueOut(
                sample=s.number,
                laboratory=s.laboratory.platform_id if s.laboratory else None,
                test=s.test.code if s.test else "",
                received_at=s.received_at,  # type: ignore[arg-type]
                hours_waiting=selectors.hours_since(s.received_at, now) or 0,
            )
            for s in samples_complete(page.items)
        ],
        next_cursor=page.next_cursor,
    )


@router.post(
    "/items/{int:item_id}/reprocess",
    response={200: ReprocessOut, **ERRORS},
    summary="Fix a rejected item and process it again",
    description=(
        "A file row: send `data` with the corrected fields (names as in the item's `data`). An HL7 message or FHIR "
        "Bundle: send the corrected raw `content`; it is received as a new unit. The old item is then superseded "
        "by the new outcome. 409 when the item was already fixed; 422 when it cannot be fixed here (national API "
        "calls: the LIS sends its call again; held items: match them)."
    ),
)
@idempotent
def supervision_reprocess(request: HttpRequest, item_id: int, payload: ReprocessIn) -> ReprocessOut:
    actor = _supervisor(request)
    item = _visible_item(actor, item_id)
    if payload.data is None and payload.content is None:
        raise ValidationFailed(_("Send `data` (a file row) or `content` (a message or Bundle)."), field="data")
    data: dict[str, Any] = dict(payload.data or {})
    if payload.content is not None:
        data["content"] = payload.content
    done = services.intake_item_reprocess(actor=actor, item_id=item.pk, data=data)
    fixed = selectors.supervision_item_get(actor, item.pk) or done.item
    new_items = list(
        selectors.supervision_items(actor, since=done.intake.received_at, laboratory_id=None).filter(
            pk__in=[i.pk for i in done.new_items]
        )
    )
    return ReprocessOut(item=_item_out(fixed), unit=done.intake.pk, new_items=[_item_out(i) for i in new_items])
