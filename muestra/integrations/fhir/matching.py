"""Held FHIR results: a person of the lab names the sample of a result the Bundle did not identify without doubt.

Mirrors `integrations.hl7.processing.held_items/held_resolve` so the matching screen can offer both channels: the
Bundle is read again from the intake's stored payload, the held Observation's result is checked and recorded on
the named sample through the services, and a new item records the outcome, superseding the held one (and the held
items of the same result's Specimen, DiagnosticReport... entries).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils.translation import gettext_lazy as _

from muestra.accounts.scoping import Actor, scoped
from muestra.core.errors import NotFound, ValidationFailed
from muestra.integrations import services as intake_services
from muestra.integrations.fhir import ingest, systems
from muestra.integrations.models import Intake, IntakeChannel, IntakeItem
from muestra.samples.models import Sample


def held_items(actor: Actor) -> QuerySet[IntakeItem]:
    """The FHIR results waiting for a person to name their sample, in the actor's labs, oldest first (one item
    per held result: its Observation's entry)."""
    return (
        scoped(actor, IntakeItem.objects.filter(intake__channel=IntakeChannel.FHIR))
        .filter(
            outcome=IntakeItem.Outcome.HELD,
            superseded_by__isnull=True,
            intake__laboratory_id__in=actor.laboratory_ids,
            data__has_key="identifiers",
        )
        .select_related("intake")
        .order_by("pk")
    )


def held_resolve(*, actor: Actor, item_id: int, sample_id: int) -> IntakeItem:
    """Applies a held result to the sample a person named. Raises DomainError (nothing changed) when it cannot."""
    item = held_items(actor).filter(pk=item_id).first()
    if item is None:
        raise NotFound(_("Unknown held item."))
    sample = scoped(actor, Sample.objects.filter(pk=sample_id)).first()
    if sample is None:
        raise NotFound(_("Unknown sample."), field="sample")
    intake = item.intake
    with intake.payload.open("rb") as payload:
        content = payload.read()
    try:
        _kind, entries = ingest.parse_bundle(content)
    except ingest.BundleInvalid:
        raise ValidationFailed(_("The held entry can no longer be read."), field="sample") from None
    items, _links = ingest.build_items(entries)
    target = next((i for i in items if i.observation.index == item.position - 1), None)
    if target is None:
        raise ValidationFailed(_("The held entry can no longer be read."), field="sample")
    target.identifiers = target.identifiers or [(systems.SAMPLE_NUMBER, str(sample.number))]
    target.sample_pk = sample.pk
    samples = {sample.pk: sample}
    ingest.check_item(target, samples)
    if target.status:
        raise ValidationFailed("; ".join(str(i.diagnostics) for i in target.issues), field="sample")
    ingest.apply_item(actor, target, samples)
    data = dict(item.data, matched_by=actor.label, matched_from=item.pk)
    siblings = IntakeItem.objects.filter(
        intake=intake,
        outcome=IntakeItem.Outcome.HELD,
        superseded_by__isnull=True,
        data__result_entry=target.observation.index,
    )
    with transaction.atomic():
        (new,) = intake_services.intake_items_record(
            intake=intake,
            items=[
                intake_services.ItemOutcomeRecord(item.position, target.outcome, item.reference, sample.pk, [], data)
            ],
        )
        settled = IntakeItem.objects.filter(pk=item.pk, superseded_by__isnull=True).update(superseded_by=new)
        settled += siblings.update(superseded_by=new)
        if settled:
            Intake.objects.filter(pk=intake.pk, held__gte=settled).update(held=F("held") - settled)
    return new
