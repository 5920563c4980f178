"""Small helpers shared by the routers: finding a visible record by its public number, auditing reads, the
error responses every operation documents, and cursor handling."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.db.models import Model, QuerySet
from django.utils.translation import gettext_lazy as _

from muestra.accounts.scoping import Actor
from muestra.api import schemas as s
from muestra.api import serializers
from muestra.audit.services import AuditItem, audit_record_many
from muestra.core.errors import NotFound, ValidationFailed
from muestra.samples import selectors
from muestra.samples.models import Channel, Sample, Shipment

#: Every operation may answer these, always in the one error shape (documented in the OpenAPI document).
ERRORS: dict[int, Any] = {code: s.ErrorOut for code in (400, 401, 403, 404, 409, 422)}


def sample_not_found() -> NotFound:
    # Exactly what the services raise for a missing or out-of-scope sample, so both answers are identical.
    return NotFound(_("Sample not found."), field="sample")


def shipment_not_found() -> NotFound:
    return NotFound(_("Shipment not found."), field="shipment")


def sample_pk(number: int) -> int:
    pk = selectors.pk_from_public_number(number)
    if pk is None:
        raise sample_not_found()
    return pk


def shipment_pk(number: int) -> int:
    pk = selectors.pk_from_public_number(number)
    if pk is None:
        raise shipment_not_found()
    return pk


def visible_sample(actor: Actor, number: int) -> Sample:
    sample = selectors.sample_get(actor, sample_pk(number))
    if sample is None:
        raise sample_not_found()
    return sample


def visible_shipment(actor: Actor, number: int) -> Shipment:
    shipment = selectors.shipment_get(actor, shipment_pk(number))
    if shipment is None:
        raise shipment_not_found()
    return shipment


def present_sample(actor: Actor, sample: Sample) -> s.SampleOut:
    """The representation of a sample just written, reloaded through the selector (scoped, fully joined).

    After a step that moves the sample out of the caller's scope (a lab forwarding it elsewhere) the reload finds
    nothing; the caller still gets the row the service returned, which it was allowed to act on a moment ago.
    """
    return serializers.sample_out(selectors.sample_get(actor, sample.pk) or sample)


def after_id(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return selectors.decode_cursor(cursor)
    except selectors.InvalidCursor:
        raise ValidationFailed(
            _("This cursor is not valid; use the next_cursor of a previous page."),
            code="invalid_cursor",
            field="cursor",
        ) from None


def audit_reads(
    actor: Actor,
    action: str,
    numbers: Iterable[int],
    data: dict[str, Any] | None = None,
    *,
    channel: str = Channel.API,
) -> None:
    """One audit entry per sample whose personal data or result was returned, written in one bulk call.

    Only the action, the sample number and non-identifying facts are recorded: never names, documents or filters
    (a filter may be a document number). The staff screens audit their reads with this too (channel "web")."""
    facts = {"channel": channel, **(data or {})}
    audit_record_many(actor=actor.label, items=[AuditItem(action, "sample", n, facts) for n in numbers])


M = TypeVar("M", bound=Model)


def page_after(queryset: QuerySet[M], cursor: str | None, limit: int) -> selectors.Page[M]:
    """One keyset page (by primary key) of `queryset` after the request's `cursor`, like /samples' pages."""
    return selectors.paginate(queryset, after_id=after_id(cursor), limit=limit)
