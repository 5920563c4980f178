"""Outbound events: turning committed sample events into deliveries, and sending them.

Recording (`deliveries_record`) runs on the hot path, right after a registration or result commits: the active
subscriptions come from a per-process cache, the events are read in one query, matching happens in memory, and
every delivery is written in one bulk insert. No subscription interested -> no query at all beyond the cache.

Sending (`deliveries_send`) runs in the task worker or `manage.py deliver_events`: per subscription (held by a
lease, so two workers never send for the same one at once), it POSTs the deliveries that are due and first in line
for their sample, signs each one, records every attempt, retries with exponential backoff and jitter, and gives up
("dead") after MAX_ATTEMPTS. A receiver that answers nothing, 5xx or 429 pauses its whole subscription with the
same backoff, so a receiver that is down costs one attempt per pause rather than one per waiting delivery.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from muestra.facilities.models import Establishment
from muestra.integrations.models import (
    OUTBOUND_EVENT_TYPES,
    Delivery,
    DeliveryAttempt,
    EventSnapshot,
    PayloadFormat,
    Subscription,
)
from muestra.integrations.outbound import payloads
from muestra.integrations.outbound.signing import secret_generate, signature_header
from muestra.patients.models import Patient
from muestra.samples import lookups
from muestra.samples.models import Sample, SampleEvent
from muestra.territories.models import Territory, TerritoryLevel

logger = logging.getLogger(__name__)

#: Event ids are UUIDs derived from the SampleEvent id: the same event always has the same id, in every retry.
EVENT_NAMESPACE = uuid.UUID("6f1d3c52-9a57-4c1e-8f3b-0d6c1e2a7b90")

D = Delivery.State


def event_uuid(sample_event_id: int) -> uuid.UUID:
    return uuid.uuid5(EVENT_NAMESPACE, f"sample-event:{sample_event_id}")


def _rules() -> Any:
    return settings.MUESTRA_OUTBOUND


# --- the active subscriptions, cached per process ---------------------------------------------------------------


@dataclass(frozen=True)
class ActiveSubscription:
    pk: int
    kinds: frozenset[str]
    territory_paths: tuple[str, ...]
    health_service_ids: frozenset[int]
    disease_ids: frozenset[int]
    include_patient: bool

    def matches(self, kind: str, disease_id: int, territory: Territory | None) -> bool:
        if kind not in self.kinds:
            return False
        if self.disease_ids and disease_id not in self.disease_ids:
            return False
        if not (self.territory_paths or self.health_service_ids):
            return True
        if territory is None:
            return False
        if territory.health_service_id is not None and territory.health_service_id in self.health_service_ids:
            return True
        path = territory.path
        return any(path == p or path.startswith(p + ".") for p in self.territory_paths)


_cache_lock = threading.Lock()
_cache: dict[str, tuple[float, list[ActiveSubscription]]] = {}


def subscriptions_cache_clear() -> None:
    with _cache_lock:
        _cache.clear()


def active_subscriptions() -> list[ActiveSubscription]:
    """The active subscriptions, from this process's memory (at most SUBSCRIPTION_CACHE_SECONDS old)."""
    now = time.monotonic()
    hit = _cache.get("active")
    if hit is not None and now - hit[0] < _rules()["SUBSCRIPTION_CACHE_SECONDS"]:
        return hit[1]
    rows = Subscription.objects.filter(active=True).prefetch_related("territories", "diseases").order_by("pk")
    value = []
    for sub in rows:
        territories = list(sub.territories.all())
        value.append(
            ActiveSubscription(
                pk=sub.pk,
                kinds=frozenset(k for k in sub.event_kinds if k in OUTBOUND_EVENT_TYPES),
                territory_paths=tuple(t.path for t in territories if t.level != TerritoryLevel.CL_HEALTH_SERVICE),
                health_service_ids=frozenset(t.pk for t in territories if t.level == TerritoryLevel.CL_HEALTH_SERVICE),
                disease_ids=frozenset(d.pk for d in sub.diseases.all()),
                include_patient=sub.include_patient,
            )
        )
    with _cache_lock:
        _cache["active"] = (now, value)
    return value


# --- recording deliveries (hot path) ----------------------------------------------------------------------------

_CHUNK = 5000


def deliveries_record(*, event_ids: Sequence[int]) -> int:
    """Creates the deliveries of committed events for every matching active subscription. Returns how many.

    Safe to call twice for the same events (the unique (subscription, event) pair makes the second a no-op), which
    is what `deliver_events --catch-up` relies on.
    """
    subs = [s for s in active_subscriptions() if s.kinds]
    if not subs or not event_ids:
        return 0
    kinds = set().union(*(s.kinds for s in subs))
    now = timezone.now()
    deliveries: list[Delivery] = []
    snapshots: list[EventSnapshot] = []
    for start in range(0, len(event_ids), _CHUNK):
        chunk = event_ids[start : start + _CHUNK]
        rows = SampleEvent.objects.filter(pk__in=chunk, kind__in=kinds).order_by("pk").values(*payloads.EVENT_FIELDS)
        matched: list[tuple[dict[str, Any], list[ActiveSubscription]]] = []
        patient_ids: set[int] = set()
        pool_ids: set[int] = set()
        for row in rows:
            establishment = lookups.by_pk(Establishment, row["establishment_id"])
            territory = lookups.by_pk(Territory, establishment.territory_id) if establishment else None
            matching = [s for s in subs if s.matches(row["kind"], row["sample__disease_id"], territory)]
            if not matching:
                continue
            matched.append((row, matching))
            if row["sample__patient_id"] and any(s.include_patient for s in matching):
                patient_ids.add(row["sample__patient_id"])
            if row["sample__is_pool"]:
                pool_ids.add(row["sample_id"])
        # Personal data only for the subscriptions entitled to it, read in one query when one of them matched.
        patients = (
            {p.pk: payloads.patient_snapshot(p) for p in Patient.objects.filter(pk__in=patient_ids)}
            if patient_ids
            else {}
        )
        # A pooled tube's members (its FHIR Specimen's parents), in one query when a pool's event matched.
        members: dict[int, list[int]] = {}
        if pool_ids:
            for pool_id, member_id in (
                Sample.objects.filter(pool_id__in=pool_ids).order_by("pk").values_list("pool_id", "pk")
            ):
                members.setdefault(pool_id, []).append(member_id)
        for row, matching in matched:
            uid = event_uuid(row["pk"])
            snapshots.append(
                EventSnapshot(
                    sample_event_id=row["pk"],
                    payload=payloads.event_snapshot(row, str(uid), members.get(row["sample_id"], ())),
                    patient=patients.get(row["sample__patient_id"]),
                )
            )
            for sub in matching:
                deliveries.append(
                    Delivery(
                        subscription_id=sub.pk,
                        sample_event_id=row["pk"],
                        sample_id=row["sample_id"],
                        event_uuid=uid,
                        kind=row["kind"],
                        created_at=now,
                        next_attempt_at=now,
                    )
                )
    if deliveries:
        # Two bulk inserts: each payload once, then the narrow delivery rows (one per matching subscription).
        EventSnapshot.objects.bulk_create(snapshots, ignore_conflicts=True)
        Delivery.objects.bulk_create(deliveries, ignore_conflicts=True)
    return len(deliveries)


# --- sending ----------------------------------------------------------------------------------------------------


@dataclass
class SendReport:
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    subscriptions: int = 0
    more: bool = False  # stopped at the time budget with due deliveries left

    def add(self, other: SendReport) -> None:
        self.delivered += other.delivered
        self.failed += other.failed
        self.dead += other.dead
        self.subscriptions += other.subscriptions
        self.more = self.more or other.more


@dataclass
class _Outcome:
    status: int | None
    error: str
    duration_ms: int
    #: The receiver itself seems unavailable (nothing answered, 5xx, 408, 429): pause the whole subscription.
    receiver_down: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer we do not follow (a POST body must not be replayed elsewhere): it counts as a
    failure with its status, so the administrator fixes the URL."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def backoff_seconds(attempt: int) -> float:
    """Wait before attempt `attempt + 1`: BASE * 2**(attempt-1), capped, with jitter (half to all of it)."""
    rules = _rules()
    delay = min(rules["RETRY_CAP_SECONDS"], rules["RETRY_BASE_SECONDS"] * 2 ** max(attempt - 1, 0))
    return float(delay) * random.uniform(0.5, 1.0)


def request_body(subscription: Subscription, delivery: Delivery, snapshot: EventSnapshot) -> tuple[bytes, str]:
    """The bytes sent for `delivery` and their content type."""
    payload = snapshot.for_subscription(subscription.include_patient)
    if subscription.format == PayloadFormat.FHIR:
        document: Any = payloads.fhir_resource(payload, delivery.kind)
        content_type = "application/fhir+json"
    else:
        document = payload
        content_type = "application/json"
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    return body, content_type


def _post(subscription: Subscription, delivery: Delivery, snapshot: EventSnapshot | None) -> _Outcome:
    started = time.monotonic()
    try:
        if snapshot is None:
            raise LookupError("the event's snapshot is missing")
        body, content_type = request_body(subscription, delivery, snapshot)
    except Exception as exc:  # a snapshot that cannot be rendered: the delivery's own problem, not the receiver's
        logger.exception("outbound: delivery %s could not be rendered", delivery.pk)
        return _Outcome(None, f"could not build the payload: {exc}"[:500], 0)
    timestamp = int(time.time())
    request = urllib.request.Request(  # noqa: S310 - the URL scheme is checked when the subscription is saved
        subscription.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": f"{content_type}; charset=utf-8",
            "User-Agent": "Muestra-Events/1",
            "Muestra-Event-Id": str(delivery.event_uuid),
            "Muestra-Event-Type": delivery.event_type,
            "Muestra-Timestamp": str(timestamp),
            "Muestra-Signature": signature_header(subscription.secret, timestamp, body),
        },
    )
    status: int | None = None
    error = ""
    try:
        with _opener.open(request, timeout=_rules()["TIMEOUT_SECONDS"]) as response:
            status = response.status
            response.read(1024)
    except urllib.error.HTTPError as exc:
        status = exc.code
        try:
            error = exc.read(300).decode("utf-8", "replace").strip()
        except Exception:  # the body of an error answer is a courtesy
            error = ""
        error = f"HTTP {exc.code}" + (f": {error}" if error else "")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        error = f"{type(reason).__name__}: {reason}"
    duration = int((time.monotonic() - started) * 1000)
    down = status is None or status >= 500 or status in (408, 429)
    return _Outcome(status, error[:500], duration, receiver_down=down)


def _due_heads(subscription: Subscription, now: datetime) -> QuerySet[Delivery]:
    """Deliveries that are due and first in line for their sample (every earlier one delivered)."""
    earlier = Delivery.objects.filter(
        subscription_id=subscription.pk,
        sample_id=OuterRef("sample_id"),
        sample_event_id__lt=OuterRef("sample_event_id"),
    ).exclude(state=D.DELIVERED)
    return (
        Delivery.objects.filter(subscription=subscription, state__in=[D.PENDING, D.FAILING], next_attempt_at__lte=now)
        .exclude(Exists(earlier))
        .order_by("sample_event_id")
    )


def _claim(subscription_id: int, now: datetime, seconds: float) -> bool:
    """Takes the subscription's lease (no other sender holds it). One conditional UPDATE, no long transaction."""
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    until = now + timedelta(seconds=seconds)
    return bool(Subscription.objects.filter(pk=subscription_id).filter(free).update(lease_until=until))


def _release(subscription_id: int) -> None:
    Subscription.objects.filter(pk=subscription_id).update(lease_until=None)


def deliveries_send(
    *, now: datetime | None = None, subscription_ids: Iterable[int] | None = None, budget_seconds: float | None = None
) -> SendReport:
    """Sends every due delivery (first in line for its sample) of the active subscriptions; returns the counts.

    `now` lets tests and operators act as if at another time (for due times and backoff only).
    """
    now = now or timezone.now()
    rules = _rules()
    budget = float(rules["SWEEP_SECONDS"] if budget_seconds is None else budget_seconds)
    deadline = time.monotonic() + budget
    report = SendReport()
    subs = Subscription.objects.filter(active=True).filter(
        Q(suspended_until__isnull=True) | Q(suspended_until__lte=now)
    )
    if subscription_ids is not None:
        subs = subs.filter(pk__in=list(subscription_ids))
    lease = budget + rules["TIMEOUT_SECONDS"] * 2 + 30
    for subscription in subs.order_by("pk"):
        if time.monotonic() >= deadline:
            report.more = True
            break
        if not _claim(subscription.pk, now, lease):
            continue
        try:
            report.add(_send_subscription(subscription, now, deadline))
        finally:
            _release(subscription.pk)
    return report


def _send_subscription(subscription: Subscription, now: datetime, deadline: float) -> SendReport:
    rules = _rules()
    report = SendReport(subscriptions=1)
    while True:
        heads = list(_due_heads(subscription, now)[: rules["BATCH_SIZE"]])
        if not heads:
            return report
        snapshots = EventSnapshot.objects.in_bulk([d.sample_event_id for d in heads])
        attempts: list[DeliveryAttempt] = []
        changed: list[Delivery] = []
        stop = False
        for delivery in heads:
            if time.monotonic() >= deadline:
                report.more = True
                stop = True
                break
            outcome = _post(subscription, delivery, snapshots.get(delivery.sample_event_id))
            at = timezone.now()
            attempts.append(
                DeliveryAttempt(
                    delivery=delivery,
                    at=at,
                    status=outcome.status,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                    ok=outcome.ok,
                )
            )
            delivery.attempts += 1
            delivery.last_status = outcome.status
            delivery.last_error = outcome.error
            changed.append(delivery)
            if outcome.ok:
                delivery.state = D.DELIVERED
                delivery.delivered_at = at
                report.delivered += 1
                continue
            report.failed += 1
            wait = timedelta(seconds=backoff_seconds(delivery.attempts))
            delivery.next_attempt_at = now + wait
            if delivery.attempts >= rules["MAX_ATTEMPTS"]:
                delivery.state = D.DEAD
                report.dead += 1
            else:
                delivery.state = D.FAILING
            if outcome.receiver_down:
                _pause(subscription, now)
                stop = True
                break
        with transaction.atomic():
            DeliveryAttempt.objects.bulk_create(attempts)
            Delivery.objects.bulk_update(
                changed, ["state", "attempts", "last_status", "last_error", "delivered_at", "next_attempt_at"]
            )
        if report.delivered and subscription.consecutive_failures and not stop:
            _resume(subscription)
        if stop:
            return report
        if time.monotonic() >= deadline:
            report.more = True
            return report


def _pause(subscription: Subscription, now: datetime) -> None:
    failures = subscription.consecutive_failures + 1
    until = now + timedelta(seconds=backoff_seconds(failures))
    Subscription.objects.filter(pk=subscription.pk).update(
        consecutive_failures=failures, suspended_until=until, last_failure_at=timezone.now()
    )
    subscription.consecutive_failures = failures
    subscription.suspended_until = until
    logger.warning("outbound: subscription %s paused until %s after %d failures", subscription.pk, until, failures)


def _resume(subscription: Subscription) -> None:
    Subscription.objects.filter(pk=subscription.pk).update(
        consecutive_failures=0, suspended_until=None, last_success_at=timezone.now()
    )
    subscription.consecutive_failures = 0
    subscription.suspended_until = None


# --- administration ---------------------------------------------------------------------------------------------


def subscription_secret_rotate(*, subscription: Subscription) -> str:
    """Gives the subscription a new signing secret and returns it (shown once to the administrator)."""
    secret = secret_generate()
    Subscription.objects.filter(pk=subscription.pk).update(secret=secret)
    subscription.secret = secret
    return secret


def deliveries_retry(*, delivery_ids: Iterable[int], now: datetime | None = None) -> int:
    """Puts given-up (or failing) deliveries back in line to be sent at once; returns how many."""
    now = now or timezone.now()
    ids = list(delivery_ids)
    count = Delivery.objects.filter(pk__in=ids, state__in=[D.DEAD, D.FAILING]).update(
        state=D.PENDING, attempts=0, next_attempt_at=now
    )
    subscription_ids = set(Delivery.objects.filter(pk__in=ids).values_list("subscription_id", flat=True))
    Subscription.objects.filter(pk__in=subscription_ids).update(suspended_until=None, consecutive_failures=0)
    return count


def deliveries_catch_up(*, since: datetime, chunk: int = 2000) -> int:
    """Records the deliveries of every event since `since` that has none yet (a process that died between a commit
    and its announcement, or a new subscription that should see recent events). Existing ones are left alone."""
    created = 0
    last = 0
    while True:
        ids = list(
            SampleEvent.objects.filter(at__gte=since, pk__gt=last).order_by("pk").values_list("pk", flat=True)[:chunk]
        )
        if not ids:
            return created
        created += deliveries_record(event_ids=ids)
        last = ids[-1]
