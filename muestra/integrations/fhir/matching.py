"""FHIR's part of matching (the queue itself is `integrations.matching`): re-apply a held result to the sample a
person named, and which other held items of the Bundle share its fate.

The Bundle is read again from the intake's stored payload, the held Observation's result is checked and recorded on
the named sample through the services.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from muestra.accounts.scoping import Actor
from muestra.core.errors import ValidationFailed
from muestra.integrations.fhir import ingest, systems
from muestra.integrations.models import IntakeItem
from muestra.samples.models import Sample


def held_apply(*, actor: Actor, item: IntakeItem, sample: Sample) -> str:
    """Records the held result of `item` on `sample`. Returns the outcome (accepted or unchanged); raises
    DomainError when it cannot (the caller's transaction then stores nothing)."""
    with item.intake.payload.open("rb") as payload:
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
    return target.outcome


def held_companions(item: IntakeItem) -> QuerySet[IntakeItem]:
    """The held entries of the same Bundle that belong to this result (its Specimen, DiagnosticReport...)."""
    return IntakeItem.objects.filter(
        intake_id=item.intake_id,
        outcome=IntakeItem.Outcome.HELD,
        superseded_by__isnull=True,
        data__result_entry=item.position - 1,
    )
