"""The "to match" queue of every channel: results whose sample could not be identified without doubt.

HL7 orders and FHIR results that name no sample of the lab, or several, are recorded as HELD intake items (never
guessed). A person of the lab then either names the sample (`held_resolve`: the channel re-reads the stored payload
and applies the result through the samples services) or decides the result is not theirs or a duplicate
(`held_dismiss`). Either way a new item records the outcome and supersedes the held one, so the intake log keeps
the whole story and the unit's "held" counter says what still waits. Both are audited; an item already settled is
refused. The screens at /matching/ call these functions; everything is scoped to the actor's laboratories and an
item out of scope is answered exactly like a missing one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from muestra.accounts.scoping import Actor, scoped
from muestra.audit.services import audit_record
from muestra.core.errors import Conflict, NotFound, ValidationFailed
from muestra.integrations import services as intake_services
from muestra.integrations.fhir import matching as fhir_matching
from muestra.integrations.fhir import systems
from muestra.integrations.hl7 import er7
from muestra.integrations.hl7 import processing as hl7_processing
from muestra.integrations.models import Intake, IntakeChannel, IntakeItem
from muestra.samples import lookups, selectors
from muestra.samples.models import Sample
from muestra.samples.selectors import SampleFilters

#: The channels whose items can be held, and the step that re-applies a held item to the sample a person named:
#: it returns the new outcome (accepted or unchanged) or raises a DomainError (then nothing changes).
APPLY: dict[str, Callable[..., str]] = {
    IntakeChannel.HL7: hl7_processing.held_apply,
    IntakeChannel.FHIR: fhir_matching.held_apply,
}
#: Other held items of the same unit that share the fate of a held item (a FHIR result's Specimen, report...).
COMPANIONS: dict[str, Callable[[IntakeItem], QuerySet[IntakeItem]]] = {
    IntakeChannel.FHIR: fhir_matching.held_companions,
}
MAX_REASON = 500


def _held(actor: Actor) -> QuerySet[IntakeItem]:
    """Held items of the actor's labs, settled or not (one per result: the item that carries its identifiers)."""
    if not actor.laboratory_ids:
        return IntakeItem.objects.none()
    return scoped(
        actor,
        IntakeItem.objects.filter(
            intake__channel__in=list(APPLY),
            intake__laboratory_id__in=sorted(actor.laboratory_ids),
            outcome=IntakeItem.Outcome.HELD,
            data__has_key="identifiers",
        ),
    )


def held_items(actor: Actor) -> QuerySet[IntakeItem]:
    """What waits for a person of the actor's labs, every channel, oldest first; `channel` is annotated."""
    return (
        _held(actor)
        .filter(superseded_by__isnull=True)
        .annotate(channel=F("intake__channel"))
        .select_related("intake")
        .order_by("pk")
    )


def held_get(actor: Actor, item_id: int) -> IntakeItem | None:
    """One waiting item of the actor's labs, or None (missing, settled or out of scope alike)."""
    return held_items(actor).filter(pk=item_id).first()


MAX_CANDIDATES = 20


def candidate_samples(actor: Actor, text: str) -> list[Sample]:
    """The samples of the actor's labs that a person's search names, to confirm a held result on: a number or tube
    barcode scanned or typed, or the patient's document (at most MAX_CANDIDATES of those)."""
    if not text:
        return []
    found: dict[int, Sample] = {}
    scanned = selectors.sample_by_scan(actor, text)
    if scanned is not None:
        found[scanned.pk] = scanned
    by_document = selectors.sample_list(actor, SampleFilters(patient_document=text))[:MAX_CANDIDATES]
    for sample in selectors.samples_complete(list(by_document)):
        found.setdefault(sample.pk, sample)
    return [s for s in found.values() if s.laboratory_id in actor.laboratory_ids]


def _lock(actor: Actor, item_id: int) -> IntakeItem:
    """The held item, row-locked until the end of the transaction, so two people cannot settle it twice."""
    item = _held(actor).filter(pk=item_id).select_for_update(of=("self",)).select_related("intake").first()
    if item is None:
        raise NotFound(_("Unknown held item."))
    if item.superseded_by_id is not None:
        raise Conflict(_("This result was already matched or dismissed."))
    return item


def _settle(actor: Actor, item: IntakeItem, record: intake_services.ItemOutcomeRecord) -> IntakeItem:
    """Records the new outcome and makes it supersede the held item (and its companions). In a transaction."""
    (new,) = intake_services.intake_items_record(intake=item.intake, items=[record])
    settled = IntakeItem.objects.filter(pk=item.pk, superseded_by__isnull=True).update(superseded_by=new)
    companions = COMPANIONS.get(item.intake.channel)
    if companions is not None:
        settled += companions(item).exclude(pk=new.pk).update(superseded_by=new)
    if settled:
        # The unit's counters say what is still waiting.
        Intake.objects.filter(pk=item.intake_id, held__gte=settled).update(held=F("held") - settled)
    return new


def held_resolve(*, actor: Actor, item_id: int, sample_id: int) -> IntakeItem:
    """A person named the sample of a held item: its result is applied through the services and a new item records
    the outcome. Raises DomainError (nothing changed) when it cannot be applied."""
    with transaction.atomic():
        item = _lock(actor, item_id)
        sample = scoped(actor, Sample.objects.filter(pk=sample_id)).first()
        if sample is None:
            raise NotFound(_("Unknown sample."), field="sample")
        outcome = APPLY[item.intake.channel](actor=actor, item=item, sample=sample)
        data = dict(item.data, matched_by=actor.label, matched_from=item.pk)
        new = _settle(
            actor,
            item,
            intake_services.ItemOutcomeRecord(item.position, outcome, item.reference, sample.pk, [], data),
        )
        audit_record(
            actor=actor.label,
            action="intake.item_matched",
            object_type="integrations.IntakeItem",
            object_id=new.pk,
            data={"held_item": item.pk, "intake": item.intake_id, "sample": sample.pk, "outcome": outcome},
        )
    return new


def held_dismiss(*, actor: Actor, item_id: int, reason: str) -> IntakeItem:
    """A person decided a held result is not the lab's or a duplicate: a new item records it as rejected with the
    reason, superseding the held one. Nothing is applied to any sample."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValidationFailed(_("Say why this result is dismissed."), field="reason")
    if len(reason) > MAX_REASON:
        raise ValidationFailed(
            _("Write at most %(max)d characters.") % {"max": MAX_REASON}, field="reason", code="too_long"
        )
    with transaction.atomic():
        item = _lock(actor, item_id)
        data = dict(item.data, dismissed_by=actor.label, dismissed_from=item.pk, dismiss_reason=reason)
        error = {"field": "", "code": "dismissed", "message": _("Dismissed: %(reason)s") % {"reason": reason}}
        new = _settle(
            actor,
            item,
            intake_services.ItemOutcomeRecord(
                item.position, IntakeItem.Outcome.REJECTED, item.reference, None, [error], data
            ),
        )
        # The reason stays on the item (people write it); the trail keeps ids and facts only.
        audit_record(
            actor=actor.label,
            action="intake.item_dismissed",
            object_type="integrations.IntakeItem",
            object_id=new.pk,
            data={"held_item": item.pk, "intake": item.intake_id},
        )
    return new


# --- what a person sees ---------------------------------------------------------------------------------------


@dataclass
class Identifier:
    label: str  # where the sender put it: an HL7 field or a FHIR identifier system, shortened
    value: str


@dataclass
class HeldSummary:
    """A held item as the matching screen shows it, whatever its channel."""

    item: IntakeItem
    channel: str
    channel_label: str
    received_at: datetime
    source: str  # HL7: the message control id; FHIR: the Bundle entry
    identifiers: list[Identifier] = field(default_factory=list)
    patient_document: str = ""
    patient_name: str = ""
    patient_birth: str = ""
    test: str = ""
    test_code: str = ""
    result: str = ""
    correction: bool = False
    collected_at: datetime | None = None
    collected_text: str = ""
    reason: str = ""


def _fhir_identifier(text: str) -> Identifier:
    system, sep, value = text.rpartition("|")
    if not sep:
        return Identifier("", text)
    if system in systems.SAMPLE_NUMBER_ALIASES or system == systems.TUBE_BARCODE:
        label = _("sample number") if system != systems.TUBE_BARCODE else _("tube barcode")
    elif system.startswith(systems.LAB_SAMPLE_CODE):
        label = _("laboratory's code")
    else:
        label = system
    return Identifier(label, value)


def _iso_date(text: str) -> str:
    """HL7's YYYYMMDD as YYYY-MM-DD (FHIR's dates already are)."""
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) == 8 and text.isdigit() else text


#: Why a result is waiting, by the code each channel records, in the reader's language (the stored message is in
#: the language of the request that brought the result).
_HELD_REASONS = {
    "held": gettext_lazy("No sample of this laboratory has these identifiers."),
    "not-found": gettext_lazy("No sample of this laboratory has these identifiers."),
    "ambiguous": gettext_lazy("The identifiers name several different samples."),
    "conflict": gettext_lazy("The identifiers name several different samples."),
}


def _held_reason(item: IntakeItem) -> str:
    known = [str(_HELD_REASONS[code]) for e in item.errors if (code := str(e.get("code", ""))) in _HELD_REASONS]
    if known:
        return known[0]
    data: dict[str, Any] = item.data or {}
    return str(data.get("held_reason", "")) or "; ".join(str(e.get("message", "")) for e in item.errors)


def describe(item: IntakeItem) -> HeldSummary:
    """What the sender said about a held result, in the same shape for every channel."""
    data: dict[str, Any] = item.data or {}
    intake = item.intake
    patient = data.get("patient") or {}
    summary = HeldSummary(
        item=item,
        channel=intake.channel,
        channel_label=str(intake.get_channel_display()),
        received_at=intake.received_at,
        source="",
        patient_document=str(patient.get("document", "")),
        patient_name=" ".join(str(patient.get(k, "")) for k in ("given", "family") if patient.get(k)),
        patient_birth=_iso_date(str(patient.get("birth", ""))),
        collected_text=str(data.get("collected", "")),
        reason=_held_reason(item),
    )
    if intake.channel == IntakeChannel.HL7:
        summary.source = _("message %(control)s") % {"control": data.get("control_id", "")}
        summary.identifiers = [
            Identifier(str(i.get("field", "")), str(i.get("value", ""))) for i in data["identifiers"]
        ]
        summary.test_code = str(data.get("test", ""))
        summary.test = str(data.get("test_name", "")) or summary.test_code
        summary.result = str(data.get("result", "")) or str(data.get("result_code", ""))
        summary.correction = str(data.get("status", "")).upper() == "C"
        summary.collected_at = er7.parse_ts(summary.collected_text) if summary.collected_text else None
    else:
        summary.source = _("Bundle entry %(position)d") % {"position": item.position}
        summary.identifiers = [_fhir_identifier(str(i)) for i in data["identifiers"]]
        test = lookups.test(str(data.get("test", ""))) if data.get("test") else None
        summary.test = test.display_name if test is not None else str(data.get("test_text", ""))
        summary.test_code = test.loinc_code if test is not None else ""
        value = lookups.result_value(str(data.get("result", ""))) if data.get("result") else None
        summary.result = value.display_name if value is not None else str(data.get("result_text", ""))
        summary.correction = bool(data.get("correction"))
        summary.collected_at = parse_datetime(summary.collected_text) if summary.collected_text else None
    return summary
