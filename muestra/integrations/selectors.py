"""Reads of the intake log, always through the scoping rule."""

from __future__ import annotations

from django.db.models import QuerySet

from muestra.accounts.scoping import Actor, scoped
from muestra.integrations.models import Intake, IntakeItem


def intakes(actor: Actor) -> QuerySet[Intake]:
    """The received units the actor may see, newest first."""
    return scoped(actor, Intake.objects.all()).select_related("laboratory", "establishment").order_by("-pk")


def intake_get(actor: Actor, intake_id: int) -> Intake | None:
    return intakes(actor).filter(pk=intake_id).first()


def intake_items(actor: Actor, intake_id: int, *, outcome: str | None = None) -> QuerySet[IntakeItem]:
    queryset = scoped(actor, IntakeItem.objects.filter(intake_id=intake_id))
    if outcome:
        queryset = queryset.filter(outcome=outcome)
    return queryset.order_by("position", "pk")
