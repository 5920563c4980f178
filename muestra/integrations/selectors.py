"""Reads of the intake log, always through the scoping rule."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils import timezone

from muestra.accounts.scoping import Actor, scoped
from muestra.facilities.models import Laboratory
from muestra.integrations.models import Delivery, Intake, IntakeChannel, IntakeItem
from muestra.integrations.outbound.selectors import deliveries_backlog
from muestra.samples import selectors as sample_selectors
from muestra.samples.models import Sample


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


# --- supervision -------------------------------------------------------------------------------------------------

#: Days of history the supervision page and API show unless asked otherwise, and the most they show.
DEFAULT_DAYS = 7
MAX_DAYS = 90
#: Failing items listed in the summary itself (the rest through `supervision_items`).
SUMMARY_FAILURES = 50


def may_supervise(actor: Actor) -> bool:
    """Lab staff and managers (their labs), national administrators (every lab)."""
    return actor.is_admin or bool(actor.laboratory_ids)


def clamp_days(value: object) -> int:
    try:
        days = int(str(value))
    except (TypeError, ValueError):
        return DEFAULT_DAYS
    return max(1, min(days, MAX_DAYS))


@dataclass(frozen=True)
class ChannelCounts:
    channel: str
    label: str
    intakes: int = 0
    unreadable: int = 0
    accepted: int = 0
    unchanged: int = 0
    rejected: int = 0
    held: int = 0


@dataclass(frozen=True)
class DeliveryCounts:
    subscription_id: int
    name: str
    pending: int
    failing: int
    dead: int
    oldest_waiting: datetime | None
    last_error: str = ""


@dataclass
class SupervisionSummary:
    since: datetime
    days: int
    laboratory_id: int | None
    channels: list[ChannelCounts]
    failures: list[IntakeItem]
    failures_total: int
    held_total: int
    overdue: list[Sample]
    overdue_total: int
    overdue_hours: int
    deliveries: list[DeliveryCounts]
    deliveries_scope: str  # "all" (administrators) or "laboratory" (deliveries about the lab's samples)
    unreadable: list[Intake] = field(default_factory=list)


def supervised_labs(actor: Actor, laboratory_id: int | None) -> list[int] | None:
    """The labs a supervision read covers: the chosen one (if the actor may see it), the actor's labs, or None for
    "every lab" (administrators without a choice)."""
    if laboratory_id is not None:
        return [laboratory_id] if actor.acts_for_laboratory(laboratory_id) else []
    if actor.is_admin:
        return None
    return sorted(actor.laboratory_ids)


def _scoped_intakes(actor: Actor, labs: list[int] | None) -> QuerySet[Intake]:
    queryset = scoped(actor, Intake.objects.all())
    return queryset if labs is None else queryset.filter(laboratory_id__in=labs)


def supervision_items(
    actor: Actor,
    *,
    since: datetime,
    laboratory_id: int | None = None,
    outcome: str | None = None,
    channel: str | None = None,
    current_only: bool = False,
) -> QuerySet[IntakeItem]:
    """Items received since `since` in the actor's scope, with their unit joined, oldest first (keyset by pk)."""
    labs = supervised_labs(actor, laboratory_id)
    queryset = scoped(actor, IntakeItem.objects.filter(intake__received_at__gte=since))
    if labs is not None:
        queryset = queryset.filter(intake__laboratory_id__in=labs)
    if outcome:
        queryset = queryset.filter(outcome=outcome)
    if channel:
        queryset = queryset.filter(intake__channel=channel)
    if current_only:
        queryset = queryset.filter(superseded_by__isnull=True)
    return queryset.select_related("intake", "intake__laboratory").order_by("pk")


def _supervised(actor: Actor, laboratory_id: int | None) -> bool:
    return actor.is_admin or laboratory_id in actor.laboratory_ids


def supervision_item_get(actor: Actor, item_id: int) -> IntakeItem | None:
    """One item of the actor's labs (every lab for administrators); None when missing or out of scope."""
    item = scoped(actor, IntakeItem.objects.filter(pk=item_id)).select_related("intake", "intake__laboratory").first()
    return item if item is not None and _supervised(actor, item.intake.laboratory_id) else None


def supervision_intake_get(actor: Actor, intake_id: int) -> Intake | None:
    """One received unit of the actor's labs (every lab for administrators); None when missing or out of scope."""
    intake = intake_get(actor, intake_id)
    return intake if intake is not None and _supervised(actor, intake.laboratory_id) else None


def _target_hours() -> int:
    return int(settings.MUESTRA["LAB_TARGET_HOURS"])


def overdue_samples(actor: Actor, *, laboratory_id: int | None = None, now: datetime | None = None) -> QuerySet[Sample]:
    """Received samples without a result for longer than the labs' target (MUESTRA_LAB_TARGET_HOURS), oldest
    receipt first: the lab worklist's "in process" list (`samples.selectors.lab_worklist`), past the target."""
    now = now or timezone.now()
    labs = supervised_labs(actor, laboratory_id)
    if labs is None:
        labs = list(Laboratory.objects.values_list("pk", flat=True))
    worklist = sample_selectors.lab_worklist(actor, labs, sample_selectors.WorklistTab.IN_PROCESS, now=now)
    return worklist.filter(received_at__lt=now - timedelta(hours=_target_hours()))


def _delivery_counts(actor: Actor, labs: list[int] | None) -> tuple[list[DeliveryCounts], str]:
    if labs is None:
        return [
            DeliveryCounts(b.subscription.pk, b.subscription.name, b.pending, b.failing, b.dead, b.oldest_waiting)
            for b in deliveries_backlog()
            if b.pending or b.failing or b.dead
        ], "all"
    # A lab sees the deliveries about the samples assigned to it (the subscription itself stays an admin's).
    samples = scoped(actor, Sample.objects.filter(laboratory_id__in=labs)).values("pk")
    D = Delivery.State
    rows = (
        Delivery.objects.filter(sample_id__in=samples, state__in=[D.PENDING, D.FAILING, D.DEAD])
        .values("subscription_id", "subscription__name")
        .annotate(
            n_pending=Count("pk", filter=Q(state=D.PENDING)),
            n_failing=Count("pk", filter=Q(state=D.FAILING)),
            n_dead=Count("pk", filter=Q(state=D.DEAD)),
            oldest=Min("created_at", filter=Q(state__in=[D.PENDING, D.FAILING])),
            last_error=Max("last_error"),
        )
        .order_by("subscription__name")
    )
    return [
        DeliveryCounts(
            r["subscription_id"],
            r["subscription__name"],
            r["n_pending"],
            r["n_failing"],
            r["n_dead"],
            r["oldest"],
            r["last_error"] or "",
        )
        for r in rows
    ], "laboratory"


def supervision_summary(
    actor: Actor,
    *,
    days: int = DEFAULT_DAYS,
    laboratory_id: int | None = None,
    now: datetime | None = None,
    failures_limit: int = SUMMARY_FAILURES,
    overdue_limit: int = SUMMARY_FAILURES,
) -> SupervisionSummary:
    """What arrived in the last `days` days and what became of it, per channel; the items still failing; the
    samples received without a result past the target; outbound deliveries waiting or failing. A fixed number of
    queries, whatever the volume."""
    now = now or timezone.now()
    days = clamp_days(days)
    since = now - timedelta(days=days)
    labs = supervised_labs(actor, laboratory_id)
    intakes_qs = _scoped_intakes(actor, labs).filter(received_at__gte=since)
    per_channel: dict[str, dict[str, int]] = {c: {} for c in IntakeChannel.values}
    for row in intakes_qs.values("channel").annotate(
        n=Count("pk"), n_failed=Count("pk", filter=Q(state=Intake.State.FAILED))
    ):
        per_channel.setdefault(row["channel"], {}).update(intakes=row["n"], unreadable=row["n_failed"])
    current = supervision_items(actor, since=since, laboratory_id=laboratory_id, current_only=True)
    for row in current.order_by().values("intake__channel", "outcome").annotate(n=Count("pk")):
        per_channel.setdefault(row["intake__channel"], {})[row["outcome"]] = row["n"]
    labels = dict(IntakeChannel.choices)
    channels = [ChannelCounts(c, str(labels.get(c, c)), **counts) for c, counts in per_channel.items()]
    failing = current.filter(outcome=IntakeItem.Outcome.REJECTED).order_by("-pk")
    failures = list(failing[:failures_limit])
    failures_total = sum(c.rejected for c in channels)
    held_total = sum(c.held for c in channels)
    overdue_qs = overdue_samples(actor, laboratory_id=laboratory_id, now=now)
    overdue = sample_selectors.samples_complete(list(overdue_qs[:overdue_limit]))
    overdue_total = len(overdue) if len(overdue) < overdue_limit else overdue_qs.count()
    deliveries, scope = _delivery_counts(actor, labs)
    unreadable = list(intakes_qs.filter(state=Intake.State.FAILED).order_by("-pk")[:failures_limit])
    return SupervisionSummary(
        since=since,
        days=days,
        laboratory_id=laboratory_id,
        channels=channels,
        failures=failures,
        failures_total=failures_total,
        held_total=held_total,
        overdue=overdue,
        overdue_total=overdue_total,
        overdue_hours=_target_hours(),
        deliveries=deliveries,
        deliveries_scope=scope,
        unreadable=unreadable,
    )


def hours_since(moment: datetime | None, now: datetime) -> int | None:
    return None if moment is None else max(0, int((now - moment).total_seconds() // 3600))


def supervised_laboratories(actor: Actor) -> list[Laboratory]:
    """The labs an actor may filter by: every lab for administrators, their own for lab staff."""
    queryset = Laboratory.objects.order_by("name")
    return list(queryset if actor.is_admin else queryset.filter(pk__in=actor.laboratory_ids))
