"""Writes of the intake log: opening a received unit, recording its items' outcomes, closing it.

Parsers (bulk files, HL7, FHIR, the legacy API) call `intake_open` with the bytes they received, then process item
by item through the samples services, recording each outcome with `intake_items_record` (in chunks, so 100,000
rows cost a few hundred inserts), and close the unit with `intake_finish`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation

from muestra.accounts.scoping import Actor
from muestra.audit.services import audit_record
from muestra.core.errors import DomainError, FieldError
from muestra.integrations.models import Intake, IntakeItem


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


def intake_items_record(*, intake: Intake, items: Sequence[ItemOutcomeRecord]) -> list[IntakeItem]:
    """Stores a chunk of item outcomes and advances the unit's counters (one insert and one update)."""
    if not items:
        return []
    now = timezone.now()
    rows = [
        IntakeItem(
            intake=intake,
            position=i.position,
            reference=i.reference[:120],
            outcome=i.outcome,
            sample_id=i.sample_id,
            errors=i.errors,
            data=i.data,
            processed_at=now,
        )
        for i in items
    ]
    accepted = sum(1 for i in items if i.outcome in (IntakeItem.Outcome.ACCEPTED, IntakeItem.Outcome.UNCHANGED))
    rejected = sum(1 for i in items if i.outcome == IntakeItem.Outcome.REJECTED)
    held = sum(1 for i in items if i.outcome == IntakeItem.Outcome.HELD)
    with transaction.atomic():
        created = IntakeItem.objects.bulk_create(rows)
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
