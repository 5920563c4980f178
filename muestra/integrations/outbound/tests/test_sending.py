"""Sending: signatures, a real receiver on 127.0.0.1 that fails then recovers, order per sample, giving up."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import timedelta

import pytest
from django.utils import timezone

from muestra.demo.builders import sample_in_state
from muestra.integrations.models import Delivery, DeliveryAttempt
from muestra.integrations.outbound.services import deliveries_retry, deliveries_send
from muestra.integrations.outbound.signing import signature_compute, signature_verify
from muestra.integrations.outbound.tests.conftest import Receiver, free_port, make_subscription
from muestra.samples.models import SampleState

S = SampleState
KINDS = ["registered", "received", "result_delivered"]


def _results(world, n):
    return [sample_in_state(S.RESULT, taker=world.actors["taker_a"], lab=world.actors["lab_x"]) for _ in range(n)]


def _sweep_until_quiet(start, *, step=timedelta(minutes=5), rounds=30):
    """Sweeps as the worker would, the clock moving on `step` each time, until nothing is due any more."""
    now = start
    for _ in range(rounds):
        report = deliveries_send(now=now)
        if not Delivery.objects.exclude(state__in=[Delivery.State.DELIVERED, Delivery.State.DEAD]).exists():
            return report
        now += step
    return None


def test_a_delivery_is_signed_and_carries_its_event_headers(world, receiver, django_capture_on_commit_callbacks):
    sub = make_subscription(receiver.url, ["registered"])
    with django_capture_on_commit_callbacks(execute=True):
        (sample,) = _results(world, 1)
    report = deliveries_send()
    assert report.delivered == 1
    (request,) = receiver.received
    headers, body = request["headers"], request["body"]
    delivery = Delivery.objects.get()
    assert headers["Muestra-Event-Id"] == str(delivery.event_uuid)
    assert headers["Muestra-Event-Type"] == "sample.registered"
    assert headers["Content-Type"].startswith("application/json")
    assert signature_verify(sub.secret, headers["Muestra-Signature"], body)
    # The documented recipe: HMAC-SHA256 of "<timestamp>.<body>" with the secret.
    timestamp = int(headers["Muestra-Timestamp"])
    assert headers["Muestra-Signature"] == f"t={timestamp},v1={signature_compute(sub.secret, timestamp, body)}"
    assert json.loads(body)["sample"]["number"] == sample.number
    assert not signature_verify(sub.secret, headers["Muestra-Signature"], body + b" ")
    assert not signature_verify("whsec_other", headers["Muestra-Signature"], body)
    assert not signature_verify(sub.secret, headers["Muestra-Signature"], body, now=time.time() + 3600)
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.DELIVERED and delivery.attempts == 1 and delivery.last_status == 200
    (attempt,) = DeliveryAttempt.objects.all()
    assert attempt.ok and attempt.status == 200 and attempt.duration_ms >= 0


@pytest.mark.parametrize("outage", ["http_500", "connection_refused"])
def test_a_receiver_down_for_an_hour_gets_everything_in_order_once_back(
    world, django_capture_on_commit_callbacks, outage
):
    port = free_port()
    down: Receiver | None = None
    if outage == "http_500":
        down = Receiver(port)
        down.status = 500
    make_subscription(f"http://127.0.0.1:{port}/events", KINDS)
    start = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        samples = _results(world, 4)
    assert Delivery.objects.count() == 12
    # An hour of outage: sweeps every 5 minutes fail.
    now = start
    for _ in range(12):
        deliveries_send(now=now)
        now += timedelta(minutes=5)
    assert not Delivery.objects.filter(state=Delivery.State.DELIVERED).exists()
    assert not Delivery.objects.filter(state=Delivery.State.DEAD).exists()
    # The subscription was paused after each failure: one attempt per sweep, not one per waiting delivery.
    assert DeliveryAttempt.objects.count() <= 12
    if down is not None:
        assert len(down.received) <= 12
        down.status = 200
        up = down
    else:
        up = Receiver(port)
    try:
        assert _sweep_until_quiet(now) is not None
        assert set(Delivery.objects.values_list("state", flat=True)) == {Delivery.State.DELIVERED}
        accepted = up.accepted()
        per_sample = defaultdict(list)
        for payload in accepted:
            per_sample[payload["sample"]["number"]].append((payload["sequence"], payload["type"]))
        assert set(per_sample) == {s.number for s in samples}
        for events in per_sample.values():
            assert [t for _seq, t in events] == [
                "sample.registered",
                "sample.received",
                "sample.result_available",
            ]
            assert [seq for seq, _t in events] == sorted(seq for seq, _t in events)
        # At least once, and here exactly once per event id once acknowledged.
        ids = [p["id"] for p in accepted]
        assert len(ids) == len(set(ids)) == 12
    finally:
        up.stop()


def test_a_later_event_waits_for_the_earlier_one_of_the_same_sample(
    world, receiver, django_capture_on_commit_callbacks
):
    make_subscription(receiver.url, KINDS)
    with django_capture_on_commit_callbacks(execute=True):
        (_sample,) = _results(world, 1)
    receiver.plan = [422]  # the receiver refuses the first one (not an outage): it is retried later
    now = timezone.now()
    report = deliveries_send(now=now)
    assert report.failed == 1 and report.delivered == 0
    assert Delivery.objects.filter(state=Delivery.State.PENDING).count() == 2  # blocked behind the first
    _sweep_until_quiet(now + timedelta(hours=1))
    kinds = [p["type"] for p in receiver.accepted()]
    assert kinds == ["sample.registered", "sample.received", "sample.result_available"]


def test_given_up_after_max_attempts_then_retried_by_an_administrator(
    world, receiver, settings, django_capture_on_commit_callbacks
):
    settings.MUESTRA_OUTBOUND = {**settings.MUESTRA_OUTBOUND, "MAX_ATTEMPTS": 3}
    make_subscription(receiver.url, ["registered", "received"])
    with django_capture_on_commit_callbacks(execute=True):
        (_sample,) = _results(world, 1)
    receiver.status = 503
    now = timezone.now()
    for _ in range(6):
        deliveries_send(now=now)
        now += timedelta(hours=1)
    first, second = Delivery.objects.order_by("sample_event_id")
    assert first.state == Delivery.State.DEAD and first.attempts == 3 and first.last_status == 503
    assert second.state == Delivery.State.PENDING and second.attempts == 0  # never sent out of order
    assert DeliveryAttempt.objects.filter(delivery=first).count() == 3
    receiver.status = 200
    assert deliveries_retry(delivery_ids=[first.pk]) == 1
    deliveries_send(now=now)
    assert set(Delivery.objects.values_list("state", flat=True)) == {Delivery.State.DELIVERED}
    assert [p["type"] for p in receiver.accepted()] == ["sample.registered", "sample.received"]


def test_two_senders_never_send_the_same_subscription_at_once(world, receiver, django_capture_on_commit_callbacks):
    from muestra.integrations.outbound.services import _claim

    sub = make_subscription(receiver.url, ["registered"])
    with django_capture_on_commit_callbacks(execute=True):
        _results(world, 1)
    assert _claim(sub.pk, timezone.now(), 60)  # another worker holds it
    assert deliveries_send().subscriptions == 0 and receiver.received == []
    sub.refresh_from_db()
    assert sub.lease_until is not None
    assert deliveries_send(now=sub.lease_until + timedelta(seconds=1)).delivered == 1  # lease expired


def test_the_task_sends_and_the_signal_enqueues_it(world, receiver, settings, django_capture_on_commit_callbacks):
    from django_tasks import default_task_backend

    from muestra.integrations.outbound.tasks import deliver_due

    make_subscription(receiver.url, ["registered"])
    with django_capture_on_commit_callbacks(execute=True):
        _results(world, 1)
    assert any(r.task.func is deliver_due.func for r in default_task_backend.results)  # type: ignore[attr-defined]
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    result = deliver_due.enqueue()
    assert result.return_value == {"delivered": 1, "failed": 0, "dead": 0}
    assert len(receiver.accepted()) == 1


def test_deliver_events_command_sweeps(world, receiver, django_capture_on_commit_callbacks):
    from io import StringIO

    from django.core.management import call_command

    make_subscription(receiver.url, ["registered"])
    with django_capture_on_commit_callbacks(execute=True):
        _results(world, 2)
    out = StringIO()
    call_command("deliver_events", stdout=out)
    assert "delivered 2" in out.getvalue()
    # --catch-up records nothing twice.
    call_command("deliver_events", "--catch-up", "1", stdout=out)
    assert Delivery.objects.count() == 2


def test_waiting_retries_schedule_one_later_run_not_one_per_run(
    world, receiver, settings, django_capture_on_commit_callbacks
):
    from django_tasks_db.models import DBTaskResult

    from muestra.integrations.outbound.tasks import _schedule_next_retry, deliver_due

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    make_subscription(receiver.url, ["registered"])
    with django_capture_on_commit_callbacks(execute=True):
        _results(world, 1)
    receiver.status = 500
    deliveries_send()
    DBTaskResult.objects.all().delete()
    for _ in range(3):
        _schedule_next_retry()
    (scheduled,) = DBTaskResult.objects.filter(task_path=deliver_due.module_path)
    assert scheduled.run_after > timezone.now()
