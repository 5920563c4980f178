"""Turns committed sample events into deliveries (connected in IntegrationsConfig.ready).

Runs right after a transaction commits, in the process that committed it: a failure here must never reach the
caller (the sample is stored; its registration succeeded), so it is logged and `deliver_events --catch-up` can
record the missed deliveries later.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from muestra.integrations.models import Subscription
from muestra.integrations.outbound.services import (
    active_subscriptions,
    deliveries_record,
    subscriptions_cache_clear,
)
from muestra.samples.signals import sample_events_committed

logger = logging.getLogger(__name__)

#: At most one "send now" task per process per this many seconds: a registration burst enqueues one, not hundreds.
KICK_INTERVAL_SECONDS = 1.0
_last_kick = [0.0]


def kick_reset() -> None:
    _last_kick[0] = 0.0


def on_sample_events_committed(sender: Any, event_ids: list[int], **kwargs: Any) -> None:
    try:
        if not any(s.kinds for s in active_subscriptions()):
            return  # nobody subscribed: not even a savepoint
        with transaction.atomic():
            created = deliveries_record(event_ids=event_ids)
    except Exception:
        logger.exception("outbound: could not record the deliveries of %d events", len(event_ids))
        return
    if created:
        _kick()


def _kick() -> None:
    now = time.monotonic()
    if now - _last_kick[0] < KICK_INTERVAL_SECONDS:
        return
    _last_kick[0] = now
    try:
        from muestra.integrations.outbound.tasks import deliver_due

        deliver_due.enqueue()
    except Exception:
        logger.exception("outbound: could not enqueue the delivery task (the periodic sweep will send)")


def _subscriptions_changed(sender: Any, **kwargs: Any) -> None:
    subscriptions_cache_clear()


sample_events_committed.connect(on_sample_events_committed, dispatch_uid="outbound-deliveries")
for _signal in (post_save, post_delete):
    _signal.connect(_subscriptions_changed, sender=Subscription, dispatch_uid=f"outbound-subs-{_signal}")
for _through in (Subscription.territories.through, Subscription.diseases.through):
    m2m_changed.connect(_subscriptions_changed, sender=_through, dispatch_uid=f"outbound-subs-{_through.__name__}")
