"""/shipments: manifests from an establishment to a lab, filled, dispatched and received item by item."""

from __future__ import annotations

from typing import Literal

from django.db import transaction
from django.http import HttpRequest
from ninja import Query, Router
from ninja.responses import Status
from pydantic import BaseModel, Field

from muestra.accounts.scoping import Actor
from muestra.api import schemas as s
from muestra.api import serializers
from muestra.api.auth import actor_of
from muestra.api.common import ERRORS, after_id, sample_pk, shipment_not_found, shipment_pk, visible_shipment
from muestra.api.idempotency import idempotent
from muestra.api.samples import items_out
from muestra.samples import selectors, services
from muestra.samples.models import Shipment
from muestra.samples.selectors import public_number

router = Router(tags=["shipments"])


def _present(actor: Actor, shipment: Shipment) -> s.ShipmentOut:
    reloaded = selectors.shipment_get(actor, shipment.pk)
    if reloaded is None:  # cannot happen for a shipment the caller just acted on; kept as a guard
        raise shipment_not_found()
    return serializers.shipment_out(reloaded)


@router.post(
    "",
    response={201: s.ShipmentCreatedOut, **ERRORS},
    summary="Open a shipment, optionally with samples",
    description="`added` tells, sample by sample, whether it went in (`added`) or why not (`error`).",
)
@idempotent
def shipment_create(request: HttpRequest, payload: s.ShipmentIn) -> Status:
    actor = actor_of(request)
    # One transaction: the manifest and its first samples appear together (each sample is still settled alone).
    with transaction.atomic():
        shipment = services.shipment_create(
            actor=actor, establishment_code=payload.establishment, laboratory_id=payload.laboratory, note=payload.note
        )
        outcomes = (
            services.shipment_add_samples(
                actor=actor, shipment_id=shipment.pk, sample_ids=[sample_pk(n) for n in payload.samples]
            )
            if payload.samples
            else []
        )
    added = items_out(actor, payload.samples, outcomes, ok="added", repeat="already_in")
    out = _present(actor, shipment)
    return Status(201, s.ShipmentCreatedOut(**out.model_dump(), added=added.items))


ShipmentStateName = Literal["open", "dispatched", "received"]


class ShipmentListQuery(BaseModel):
    state: ShipmentStateName | None = None
    laboratory: int | None = Field(None, description="Destination lab's platform id")
    establishment: str | None = Field(None, description="Sending establishment's code")
    cursor: str | None = None
    limit: int = Field(selectors.DEFAULT_PAGE_SIZE, ge=1, le=selectors.MAX_PAGE_SIZE)


@router.get("", response={200: s.ShipmentPage, **ERRORS}, summary="List shipments")
def shipment_list(request: HttpRequest, filters: Query[ShipmentListQuery]) -> s.ShipmentPage:
    actor = actor_of(request)
    page = selectors.shipment_page(
        actor,
        selectors.ShipmentFilters(
            state=filters.state, laboratory=filters.laboratory, establishment=filters.establishment
        ),
        after_id=after_id(filters.cursor),
        limit=filters.limit,
    )
    return s.ShipmentPage(items=[serializers.shipment_out(x) for x in page.items], next_cursor=page.next_cursor)


@router.get("/{int:number}", response={200: s.ShipmentOut, **ERRORS}, summary="One shipment with its items")
def shipment_detail(request: HttpRequest, number: int) -> s.ShipmentOut:
    return serializers.shipment_out(visible_shipment(actor_of(request), number))


@router.post(
    "/{int:number}/samples",
    response={200: s.ItemsOut, **ERRORS},
    summary="Add samples to an open shipment",
    description="Each number gets its own outcome: `added`, `already_in` or `error`.",
)
@idempotent
def shipment_add_samples(request: HttpRequest, number: int, payload: s.ShipmentSamplesIn) -> s.ItemsOut:
    actor = actor_of(request)
    outcomes = services.shipment_add_samples(
        actor=actor, shipment_id=shipment_pk(number), sample_ids=[sample_pk(n) for n in payload.samples]
    )
    return items_out(actor, payload.samples, outcomes, ok="added", repeat="already_in")


@router.delete(
    "/{int:number}/samples/{int:sample_number}",
    response={204: None, **ERRORS},
    summary="Take a sample out of an open shipment",
)
@idempotent
def shipment_remove_sample(request: HttpRequest, number: int, sample_number: int) -> Status:
    actor = actor_of(request)
    services.shipment_remove_sample(actor=actor, shipment_id=shipment_pk(number), sample_id=sample_pk(sample_number))
    return Status(204, None)


@router.post(
    "/{int:number}/dispatch",
    response={200: s.ShipmentOut, **ERRORS},
    summary="Dispatch a shipment",
    description="Marks every sample in it as sent to the lab. Dispatching twice is harmless.",
)
@idempotent
def shipment_dispatch(request: HttpRequest, number: int) -> s.ShipmentOut:
    actor = actor_of(request)
    shipment = services.shipment_dispatch(actor=actor, shipment_id=shipment_pk(number))
    return _present(actor, shipment)


@router.post(
    "/{int:number}/receive",
    response={200: s.ShipmentReceiptOut, **ERRORS},
    summary="Receive a shipment at the lab",
    description=(
        "`received`: the tubes scanned in good order; `damaged`: those that arrived broken (rejected). Tubes on "
        "the manifest but in neither list are recorded missing. Only the destination lab may do it."
    ),
)
@idempotent
def shipment_receive(request: HttpRequest, number: int, payload: s.ShipmentReceiveIn) -> s.ShipmentReceiptOut:
    actor = actor_of(request)
    receipt = services.shipment_receive(
        actor=actor,
        shipment_id=shipment_pk(number),
        received_sample_ids=[sample_pk(n) for n in payload.received],
        damaged_sample_ids=[sample_pk(n) for n in payload.damaged],
        damage_reason=payload.damage_reason,
        received_at=payload.received_at,
    )
    return s.ShipmentReceiptOut(
        shipment=_present(actor, receipt.shipment),
        received=[public_number(pk) for pk in receipt.received],
        already_received=[public_number(pk) for pk in receipt.already_received],
        damaged=[public_number(pk) for pk in receipt.damaged],
        missing=[public_number(pk) for pk in receipt.missing],
        unexpected=[public_number(pk) for pk in receipt.unexpected],
    )
