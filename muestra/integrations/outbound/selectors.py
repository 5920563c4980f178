"""Reads of outbound deliveries for supervision screens and the API (national administrators' view: deliveries
belong to subscriptions, which are not scoped to a lab or establishment)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Min, Q

from muestra.integrations.models import Delivery, Subscription

D = Delivery.State


@dataclass(frozen=True)
class SubscriptionBacklog:
    subscription: Subscription
    pending: int
    failing: int
    dead: int
    oldest_waiting: datetime | None


def deliveries_backlog() -> list[SubscriptionBacklog]:
    """Per active subscription: deliveries waiting (pending, failing), given up (dead), and the oldest waiting.
    One query."""
    waiting = Q(deliveries__state__in=[D.PENDING, D.FAILING])
    rows = (
        Subscription.objects.filter(active=True)
        .annotate(
            n_pending=Count("deliveries", filter=Q(deliveries__state=D.PENDING)),
            n_failing=Count("deliveries", filter=Q(deliveries__state=D.FAILING)),
            n_dead=Count("deliveries", filter=Q(deliveries__state=D.DEAD)),
            oldest=Min("deliveries__created_at", filter=waiting),
        )
        .order_by("name")
    )
    return [
        SubscriptionBacklog(row, row.n_pending, row.n_failing, row.n_dead, row.oldest)  # type: ignore[attr-defined]
        for row in rows
    ]
