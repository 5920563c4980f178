"""Administration: a subscription's secret is shown once, deliveries are listed by state, dead ones retried."""

from __future__ import annotations

from django.urls import reverse

from muestra.catalog.models import Disease
from muestra.demo.builders import sample_in_state
from muestra.integrations.models import Delivery, Subscription
from muestra.integrations.outbound.tests.conftest import make_subscription
from muestra.samples.models import SampleState as S


def _add(admin_client, url="https://vigilancia.example.org/hooks/muestra", **extra):
    data = {
        "name": "Epivigila",
        "url": url,
        "active": "on",
        "event_kinds": ["registered", "result_delivered"],
        "diseases": [Disease.objects.get(code="covid19").pk],
        "format": "json",
        **extra,
    }
    return admin_client.post(reverse("admin:integrations_subscription_add"), data)


def test_the_secret_is_shown_once_when_created(admin_client):
    response = _add(admin_client)
    assert response.status_code == 200, response.content[:2000]
    sub = Subscription.objects.get()
    assert sub.secret.startswith("whsec_") and sub.secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert sub.event_kinds == ["registered", "result_delivered"]
    change = admin_client.get(reverse("admin:integrations_subscription_change", args=[sub.pk])).content.decode()
    assert sub.secret not in change and sub.secret_hint in change
    listing = admin_client.get(reverse("admin:integrations_subscription_changelist")).content.decode()
    assert sub.secret not in listing


def test_plain_http_is_refused_except_on_this_machine(admin_client):
    response = _add(admin_client, url="http://vigilancia.example.org/hooks")
    assert response.status_code == 200 and not Subscription.objects.exists()
    assert "https://" in response.content.decode()
    assert _add(admin_client, url="http://127.0.0.1:8080/hooks").status_code == 200
    assert Subscription.objects.count() == 1


def test_rotating_shows_a_new_secret(admin_client):
    sub = make_subscription("https://x.example.org/", ["registered"])
    old = sub.secret
    response = admin_client.post(
        reverse("admin:integrations_subscription_changelist"),
        {"action": "rotate_secret", "_selected_action": [sub.pk]},
    )
    sub.refresh_from_db()
    assert sub.secret != old and sub.secret in response.content.decode()


def test_deliveries_by_state_and_retrying_the_dead(admin_client, world, django_capture_on_commit_callbacks):
    sub = make_subscription("https://x.example.org/", ["registered"])
    with django_capture_on_commit_callbacks(execute=True):
        samples = [
            sample_in_state(S.REGISTERED, taker=world.actors["taker_a"], lab=world.actors["lab_x"]) for _ in range(3)
        ]
    Delivery.objects.filter(sample=samples[0]).update(state=Delivery.State.DEAD, attempts=30, last_error="HTTP 500")
    changelist = reverse("admin:integrations_delivery_changelist")
    dead_page = admin_client.get(changelist, {"state__exact": "dead"}).content.decode()
    assert str(samples[0].number) in dead_page and str(samples[1].number) not in dead_page
    found = admin_client.get(changelist, {"q": str(samples[1].number)}).content.decode()
    assert str(samples[1].number) in found and str(samples[0].number) not in found
    dead = Delivery.objects.get(sample=samples[0])
    detail = admin_client.get(reverse("admin:integrations_delivery_change", args=[dead.pk]))
    assert detail.status_code == 200 and "HTTP 500" in detail.content.decode()
    admin_client.post(changelist, {"action": "retry_selected", "_selected_action": [dead.pk]})
    dead.refresh_from_db()
    assert dead.state == Delivery.State.PENDING and dead.attempts == 0
    assert admin_client.get(reverse("admin:integrations_subscription_changelist")).status_code == 200
    assert sub.deliveries.count() == 3


def test_a_non_admin_sees_nothing(client, world):
    from conftest import login_with_second_factor

    login_with_second_factor(client, world.users["lab_x"])
    response = client.get(reverse("admin:integrations_delivery_changelist"))
    assert response.status_code in (302, 403, 404)


def test_backlog_per_subscription(world, django_capture_on_commit_callbacks, django_assert_max_num_queries):
    from muestra.integrations.outbound.selectors import deliveries_backlog

    sub = make_subscription("https://x.example.org/", ["registered"])
    with django_capture_on_commit_callbacks(execute=True):
        samples = [
            sample_in_state(S.REGISTERED, taker=world.actors["taker_a"], lab=world.actors["lab_x"]) for _ in range(3)
        ]
    Delivery.objects.filter(sample=samples[0]).update(state=Delivery.State.DEAD)
    with django_assert_max_num_queries(1):
        (row,) = deliveries_backlog()
    assert (row.subscription, row.pending, row.failing, row.dead) == (sub, 2, 0, 1) and row.oldest_waiting
