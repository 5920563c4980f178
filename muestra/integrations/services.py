"""Writes of the intake log: opening a received unit, recording its items' outcomes, closing it.

Parsers (bulk files, HL7, FHIR, the legacy API) call `intake_open` with the bytes they received, then process item
by item through the samples services, recording each outcome with `intake_items_record` (in chunks, so 100,000
rows cost a few hundred inserts), and close the unit with `intake_finish`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from muestra.accounts.scoping import Actor, scoped
from muestra.audit.services import audit_record
from muestra.core.bulk import bulk_insert_rows, new_instance
from muestra.core.errors import Conflict, DomainError, FieldError, NotFound, PermissionDenied, ValidationFailed
from muestra.integrations.models import Intake, IntakeChannel, IntakeItem
from muestra.samples.services import may_write


def content_digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _sender_filter(actor: Actor) -> dict[str, Any]:
    if actor.api_key is not None:
        return {"api_key": actor.api_key}
    if actor.user is not None:
        return {"submitted_by": actor.user}
    return {"submitted_by__isnull": True, "api_key__isnull": True}


def intake_open(
    *,
    actor: Actor,
    channel: str,
    kind: str,
    content: bytes,
    filename: str = "",
    laboratory_id: int | None = None,
    establishment_id: int | None = None,
    keep_payload: bool = True,
    detect_repeat: bool = True,
) -> tuple[Intake, bool]:
    """Records a received unit. Returns (intake, created).

    With `detect_repeat`, the same bytes of the same kind from the same sender that were already read return the
    earlier intake and `created=False`: re-sending a file changes nothing twice. A unit that could not be read
    (state failed) is not a repeat: sending it again reads it again.
    """
    digest = content_digest(content)
    if detect_repeat:
        earlier = (
            Intake.objects.filter(channel=channel, kind=kind, content_sha256=digest, **_sender_filter(actor))
            .exclude(state=Intake.State.FAILED)
            .order_by("pk")
            .first()
        )
        if earlier is not None:
            return earlier, False
    with transaction.atomic():
        intake = Intake(
            channel=channel,
            kind=kind,
            laboratory_id=laboratory_id,
            establishment_id=establishment_id,
            submitted_by=actor.user if actor.api_key is None else None,
            api_key=actor.api_key,
            language=translation.get_language() or "",
            received_at=timezone.now(),
            filename=filename[:255],
            content_sha256=digest,
        )
        if keep_payload:
            intake.payload.save(f"{channel}-{digest[:16]}", ContentFile(content), save=False)
        intake.save()
        audit_record(
            actor=actor.label,
            action="intake.received",
            object_type="integrations.Intake",
            object_id=intake.pk,
            data={"channel": channel, "kind": kind, "sha256": digest, "bytes": len(content)},
        )
    return intake, True


@dataclass
class ItemOutcomeRecord:
    """One item's fate, as a parser reports it."""

    position: int
    outcome: str
    reference: str = ""
    sample_id: int | None = None
    errors: list[dict[str, str]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def refused(
        cls, position: int, error: DomainError, *, reference: str = "", data: dict[str, Any] | None = None
    ) -> ItemOutcomeRecord:
        errors = [e.as_dict() for e in error.errors] or [
            FieldError(field="", code=error.code, message=error.message).as_dict()
        ]
        return cls(position, IntakeItem.Outcome.REJECTED, reference, None, errors, data or {})


def intake_start(*, intake: Intake, total: int | None = None) -> None:
    updates: dict[str, Any] = {"state": Intake.State.PROCESSING}
    if total is not None:
        updates["total"] = total
    Intake.objects.filter(pk=intake.pk).update(**updates)
    intake.state = Intake.State.PROCESSING
    if total is not None:
        intake.total = total


def _item_rows(intake: Intake, items: Sequence[ItemOutcomeRecord], now: datetime) -> list[IntakeItem]:
    rows = []
    for i in items:
        row = new_instance(
            IntakeItem,
            {
                "intake_id": intake.pk,
                "position": i.position,
                "reference": i.reference[:120],
                "outcome": i.outcome,
                "sample_id": i.sample_id,
                "errors": i.errors,
                "data": i.data,
                "processed_at": now,
            },
        )
        row._state.fields_cache["intake"] = intake
        rows.append(row)
    return rows


def intake_items_record(*, intake: Intake, items: Sequence[ItemOutcomeRecord]) -> list[IntakeItem]:
    """Stores a chunk of item outcomes and advances the unit's counters (one insert and one update)."""
    if not items:
        return []
    rows = _item_rows(intake, items, timezone.now())
    accepted = sum(1 for i in items if i.outcome in (IntakeItem.Outcome.ACCEPTED, IntakeItem.Outcome.UNCHANGED))
    rejected = sum(1 for i in items if i.outcome == IntakeItem.Outcome.REJECTED)
    held = sum(1 for i in items if i.outcome == IntakeItem.Outcome.HELD)
    with transaction.atomic():
        created = bulk_insert_rows(IntakeItem, rows)
        Intake.objects.filter(pk=intake.pk).update(
            accepted=F("accepted") + accepted, rejected=F("rejected") + rejected, held=F("held") + held
        )
    intake.accepted += accepted
    intake.rejected += rejected
    intake.held += held
    return created


def intake_finish(*, actor: Actor, intake: Intake, error: str = "") -> Intake:
    """Closes a unit: done, or failed with the reason it could not be read at all."""
    intake.refresh_from_db(fields=["accepted", "rejected", "held", "total"])
    intake.state = Intake.State.FAILED if error else Intake.State.DONE
    intake.error = error
    intake.finished_at = timezone.now()
    if not intake.total:
        intake.total = intake.processed
    with transaction.atomic():
        intake.save(update_fields=["state", "error", "finished_at", "total"])
        audit_record(
            actor=actor.label,
            action="intake.finished",
            object_type="integrations.Intake",
            object_id=intake.pk,
            data={
                "state": intake.state,
                "accepted": intake.accepted,
                "rejected": intake.rejected,
                "held": intake.held,
            },
        )
    return intake


def intake_record_call(
    *,
    actor: Actor,
    channel: str,
    kind: str,
    laboratory_id: int | None,
    items: Sequence[ItemOutcomeRecord],
    error: str = "",
) -> Intake:
    """Records one call of a request/response API (the legacy national API) as a finished unit: one intake row, one
    bulk insert of its items and one audit entry, whatever the number of items. The items keep their input in
    `data`; the call's bytes are not stored (the caller re-sends, it is its own request)."""
    now = timezone.now()
    accepted = sum(1 for i in items if i.outcome in (IntakeItem.Outcome.ACCEPTED, IntakeItem.Outcome.UNCHANGED))
    rejected = sum(1 for i in items if i.outcome == IntakeItem.Outcome.REJECTED)
    held = sum(1 for i in items if i.outcome == IntakeItem.Outcome.HELD)
    content = json.dumps([i.data for i in items], sort_keys=True, default=str).encode()
    with transaction.atomic():
        intake = Intake.objects.create(
            channel=channel,
            kind=kind[:60],
            laboratory_id=laboratory_id,
            submitted_by=actor.user if actor.api_key is None else None,
            api_key=actor.api_key,
            language=translation.get_language() or "",
            received_at=now,
            finished_at=now,
            content_sha256=content_digest(content),
            state=Intake.State.FAILED if error else Intake.State.DONE,
            total=len(items),
            accepted=accepted,
            rejected=rejected,
            held=held,
            error=error,
        )
        bulk_insert_rows(IntakeItem, _item_rows(intake, items, now))
        audit_record(
            actor=actor.label,
            action="intake.received",
            object_type="integrations.Intake",
            object_id=intake.pk,
            data={"channel": channel, "kind": kind, "items": len(items), "rejected": rejected, "failed": bool(error)},
        )
    return intake


# --- fix and re-process ----------------------------------------------------------------------------------------


@dataclass
class Reprocessed:
    """A failed item processed again: the item fixed, the new item(s) recording the outcome, and their unit."""

    item: IntakeItem
    intake: Intake
    new_items: list[IntakeItem]

    @property
    def replacement(self) -> IntakeItem | None:
        return next((i for i in self.new_items if i.pk == self.item.superseded_by_id), None)


#: Channels whose failed items a person may fix here. The legacy national API is the LIS's own call: it re-sends.
REPROCESSABLE_CHANNELS = frozenset({IntakeChannel.FILE, IntakeChannel.HL7, IntakeChannel.FHIR})


def reprocess_refusal(item: IntakeItem) -> str:
    """Why this item cannot be fixed and processed again here ("" when it can)."""
    if item.superseded_by_id is not None:
        return str(_("This item was already fixed and processed again; see the newer outcome."))
    if item.intake.channel == IntakeChannel.PNTM:
        return str(
            _(
                "Calls to the national API are the laboratory system's own requests: correct the data in the "
                "laboratory system and send the call again."
            )
        )
    if item.outcome == IntakeItem.Outcome.HELD:
        return str(_("This item waits for a person to name its sample: match it on the “To match” page."))
    if item.outcome != IntakeItem.Outcome.REJECTED:
        return str(_("Only rejected items can be fixed and processed again."))
    if item.intake.channel not in REPROCESSABLE_CHANNELS:
        return str(_("Items of this channel cannot be processed again."))
    return ""


def _reprocess_item(actor: Actor, item_id: int, *, lock: bool) -> IntakeItem:
    queryset = scoped(actor, IntakeItem.objects.filter(pk=item_id))
    if lock:
        queryset = queryset.select_for_update()
    item = queryset.select_related("intake").first()
    if item is None:
        raise NotFound(_("Received item not found."), field="item")
    return item


def _lock_unfixed(actor: Actor, item_id: int) -> IntakeItem:
    """The item row-locked for the rest of the fix, refused (409) when somebody fixed it meanwhile."""
    item = _reprocess_item(actor, item_id, lock=True)
    if item.superseded_by_id is not None:
        raise Conflict(reprocess_refusal(item), code="not_reprocessable", field="item")
    return item


def _acting_for_lab(actor: Actor, intake: Intake) -> Actor:
    """The actor narrowed to the unit's laboratory, as the channels expect (one lab per HL7/FHIR sender)."""
    if intake.laboratory_id is None or not actor.acts_for_laboratory(intake.laboratory_id):
        raise PermissionDenied(_("Only the laboratory that sent this unit may process it again."))
    return replace(actor, laboratory_ids=frozenset({intake.laboratory_id}))


def intake_item_reprocess(*, actor: Actor, item_id: int, data: dict[str, Any]) -> Reprocessed:
    """Fixes a rejected item and processes it again through its channel; the old item is superseded.

    * bulk file row: `data` holds the row's fields (the names of the stored row); the fixed row goes through
      `bulk.processing.process_rows` and its outcome is a new item of the same upload, superseding the old one.
    * HL7 message / FHIR Bundle: `data["content"]` holds the corrected raw message or Bundle; it is received as a
      new unit (`hl7.processing.receive` / `fhir.ingest.process_bundle`) and the old item is superseded by the new
      unit's item at the same place.
    * legacy national API: refused; the laboratory system sends its call again.

    Refused (nothing changed) when the item was already re-processed, is not rejected, or is out of scope (404).
    Audited. Returns the old item, the unit holding the new items, and the new items.
    """
    if not may_write(actor):
        raise PermissionDenied(_("Your role may read but not change samples."))
    item = _reprocess_item(actor, item_id, lock=False)
    refusal = reprocess_refusal(item)
    if refusal:
        error_class = Conflict if item.superseded_by_id is not None else ValidationFailed
        raise error_class(refusal, code="not_reprocessable", field="item")
    if item.intake.channel == IntakeChannel.FILE:
        return _reprocess_row(actor, item, data)
    content = str(data.get("content") or "")
    if not content.strip():
        raise ValidationFailed(_("Paste the corrected content."), code="required", field="content")
    return _reprocess_content(actor, item, content)


def _reprocess_row(actor: Actor, item: IntakeItem, data: dict[str, Any]) -> Reprocessed:
    from muestra.integrations.bulk import processing as bulk_processing

    stored = item.data or {}
    row = {name: str(data.get(name, stored.get(name, "")) or "").strip() for name in stored}
    if not row:
        raise ValidationFailed(_("This row kept no data to fix."), code="no_data", field="item")
    with transaction.atomic():
        item = _lock_unfixed(actor, item.pk)
        intake = item.intake
        records = bulk_processing.process_rows(actor, intake, [(item.position, row)])
        for record in records:
            record.data = {**(record.data or row), "fixed_from": item.pk}
        new_items = intake_items_record(intake=intake, items=records)
        _supersede(actor, item, new_items[0], same_intake=True)
    return Reprocessed(item, intake, new_items)


def _supersede(actor: Actor, item: IntakeItem, new: IntakeItem, *, same_intake: bool) -> None:
    updated = IntakeItem.objects.filter(pk=item.pk, superseded_by__isnull=True).update(superseded_by=new)
    if not updated:
        raise Conflict(_("This item was already fixed and processed again; see the newer outcome."), field="item")
    item.superseded_by = new
    if same_intake:
        # The unit's counters say what is still wrong: the old refusal is settled by the new outcome.
        Intake.objects.filter(pk=item.intake_id, rejected__gt=0).update(rejected=F("rejected") - 1)
    audit_record(
        actor=actor.label,
        action="intake.item_reprocessed",
        object_type="integrations.IntakeItem",
        object_id=item.pk,
        data={"channel": item.intake.channel, "new_item": new.pk, "intake": new.intake_id, "outcome": new.outcome},
    )


def _reprocess_content(actor: Actor, item: IntakeItem, content: str) -> Reprocessed:
    intake = item.intake
    acting = _acting_for_lab(actor, intake)
    raw = content.replace("\r\n", "\n")
    if _normalised(raw) == _normalised(stored_content(item)):
        raise ValidationFailed(
            _("This content is the one received: correct it before processing it again."),
            code="unchanged",
            field="content",
        )
    if intake.channel == IntakeChannel.HL7:
        raw = raw.replace("\n", "\r")
    payload = raw.encode("utf-8")
    # One transaction, the old item locked first: two people fixing the same item at once are served one after
    # the other, and the second is refused before anything of theirs is received (no second unit, no results
    # delivered twice). A correction that cannot be processed leaves nothing behind either: its reason is shown
    # to the person who pasted it.
    with transaction.atomic():
        item = _lock_unfixed(actor, item.pk)
        new_intake, new_items = _receive_again(acting, item, payload)
        replacement = _counterpart(item, new_items)
        _supersede(actor, item, replacement, same_intake=False)
    return Reprocessed(item, new_intake, new_items)


def _receive_again(acting: Actor, item: IntakeItem, payload: bytes) -> tuple[Intake, list[IntakeItem]]:
    """The corrected content received through its channel as a new unit, and that unit's items."""
    from muestra.integrations.fhir import ingest
    from muestra.integrations.hl7 import processing as hl7_processing

    intake = item.intake
    started = timezone.now()
    new_intake: Intake | None
    if intake.channel == IntakeChannel.HL7:
        answer = hl7_processing.receive(acting, payload)
        new_intake = answer.intake
        if answer.repeat:
            raise ValidationFailed(
                _("This content was already received as it is: correct it before processing it again."),
                code="unchanged",
                field="content",
            )
    else:
        ingest.process_bundle(acting, payload)
        new_intake = (
            Intake.objects.filter(
                channel=IntakeChannel.FHIR,
                content_sha256=content_digest(payload),
                received_at__gte=started,
                pk__gt=intake.pk,
                **_sender_filter(acting),
            )
            .order_by("-pk")
            .first()
        )
    if new_intake is None:
        raise ValidationFailed(_("The corrected content could not be received."), code="unreadable", field="content")
    new_intake.refresh_from_db()
    new_items = list(new_intake.items.order_by("position", "pk"))
    if new_intake.state == Intake.State.FAILED or not new_items:
        raise ValidationFailed(
            new_intake.error or _("The corrected content holds nothing to process."), code="unreadable", field="content"
        )
    return new_intake, new_items


def _counterpart(item: IntakeItem, new_items: list[IntakeItem]) -> IntakeItem:
    """The new item that stands for `item`: same HL7 order, or same Bundle entry; else the first new item."""
    if item.intake.channel == IntakeChannel.HL7:
        order = item.data.get("order")
        for candidate in new_items:
            if order is not None and candidate.data.get("order") == order:
                return candidate
        return new_items[0]
    return next((c for c in new_items if c.position == item.position), new_items[0])


def _normalised(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")).strip()


def stored_content(item: IntakeItem) -> str:
    """The raw text a person corrects: the HL7 message of the item (not the whole batch), or the whole Bundle."""
    from muestra.integrations.hl7 import er7

    intake = item.intake
    if not intake.payload:
        return ""
    try:
        with intake.payload.open("rb") as handle:
            content = handle.read()
    except OSError:
        return ""
    text = er7.decode(content)
    if intake.channel == IntakeChannel.HL7:
        try:
            envelope = er7.parse(text)
        except er7.Er7Error:
            return text
        position = int(item.data.get("message") or item.position or 0)
        if envelope.is_batch and 0 < position <= len(envelope.messages):
            return envelope.messages[position - 1].text.replace("\r", "\n")
        return text.replace("\r\n", "\n").replace("\r", "\n")
    return text
