"""Background work of outbound events, run by the task worker (`manage.py db_worker`)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db.models import Min
from django.utils import timezone
from django_tasks import TaskResultStatus, task

from muestra.integrations.models import Delivery, Subscription
from muestra.integrations.outbound.services import deliveries_send

logger = logging.getLogger(__name__)


@task()
def deliver_due() -> dict[str, int]:
    """Sends what is due now; when retries are waiting, enqueues itself again for the earliest of them.

    `manage.py deliver_events` (cron, or `--loop`) does the same sweep, so nothing depends on this task having
    been enqueued at the right moment.
    """
    report = deliveries_send()
    if report.more:
        deliver_due.enqueue()
    else:
        _schedule_next_retry()
    return {"delivered": report.delivered, "failed": report.failed, "dead": report.dead}


def _schedule_next_retry() -> None:
    if not deliver_due.get_backend().supports_defer:
        return
    now = timezone.now()
    waiting = Delivery.objects.filter(
        state__in=[Delivery.State.PENDING, Delivery.State.FAILING], subscription__active=True
    ).aggregate(next_at=Min("next_attempt_at"))["next_at"]
    paused = Subscription.objects.filter(active=True, suspended_until__gt=now).aggregate(until=Min("suspended_until"))[
        "until"
    ]
    candidates = [t for t in (waiting, paused) if t is not None and t > now]
    if candidates and not _follow_up_scheduled(now):
        deliver_due.using(run_after=min(candidates) + timedelta(seconds=1)).enqueue()


def _follow_up_scheduled(now: datetime) -> bool:
    """Whether a later run is already waiting in the database queue: every run that meets waiting retries would
    otherwise add its own, and a long outage would multiply them."""
    try:
        from django_tasks_db.models import DBTaskResult
    except ImportError:  # pragma: no cover - another backend: nothing to look at
        return False
    if type(deliver_due.get_backend()).__module__.split(".")[0] != "django_tasks_db":
        return False
    return DBTaskResult.objects.filter(
        task_path=deliver_due.module_path, status=TaskResultStatus.READY, run_after__gt=now
    ).exists()
