# mypy: disable-error-code="union-attr,arg-type"
"""The supervision screens: what arrived and what failed, an intake's items, fixing a failed row on the page."""

from __future__ import annotations

import html
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from conftest import login_with_second_factor
from muestra.demo.builders import sample_in_state
from muestra.integrations.bulk import services as bulk_services
from muestra.integrations.bulk.templates import RESULTS_NATIONAL
from muestra.integrations.bulk.tests.helpers import received_sample, rows_csv
from muestra.integrations.hl7 import processing as hl7
from muestra.integrations.hl7.tests.helpers import for_sample, message
from muestra.integrations.models import Intake, IntakeItem
from muestra.samples.models import Sample, SampleState

pytestmark = pytest.mark.usefixtures("immediate_tasks", "english")


def _as(client, world, persona):
    return login_with_second_factor(client, world.users[persona])


def _upload(world, rows, actor="lab_x"):
    intake, _created = bulk_services.upload_submit(
        actor=world.actors[actor], kind=RESULTS_NATIONAL, filename="resultados.csv", content=rows_csv(rows)
    )
    intake.refresh_from_db()
    return intake


def _bad_rows(world, n):
    samples = [received_sample(world) for _ in range(n)]
    rows = [{"ID Muestra": str(s.number), "ID Paciente": "11111111-1", "Resultado": "Muestra no apta"} for s in samples]
    return samples, rows


@pytest.fixture
def failed(world):
    samples, rows = _bad_rows(world, 1)
    intake = _upload(world, rows)
    return samples[0], intake, intake.items.get()


def test_lab_sees_the_failed_row_fixes_it_and_it_is_accepted(client, world, failed):
    sample, intake, item = failed
    _as(client, world, "lab_x")
    page = client.get(reverse("supervision:overview"))
    assert page.status_code == 200 and b'data-nav="supervision"' in page.content
    html = page.content.decode()
    assert f'data-item="{item.pk}"' in html and "is not the patient of this sample" in html
    assert reverse("supervision:item", args=[item.pk]) in html

    detail = client.get(reverse("supervision:item", args=[item.pk]))
    assert detail.status_code == 200
    text = detail.content.decode()
    assert 'name="row-patient"' in text and 'aria-invalid="true"' in text and "11111111-1" in text

    wrong = client.post(reverse("supervision:item", args=[item.pk]), {**_row(item), "row-patient": "11111111-1"})
    assert wrong.status_code == 302  # processed again, refused again: a new item to fix
    item.refresh_from_db()
    again = item.superseded_by
    assert again.outcome == IntakeItem.Outcome.REJECTED

    response = client.post(
        reverse("supervision:item", args=[again.pk]), {**_row(again), "row-patient": sample.patient.document_number}
    )
    again.refresh_from_db()
    new = again.superseded_by
    assert response.status_code == 302 and response["Location"] == reverse("supervision:item", args=[new.pk])
    shown = client.get(response["Location"]).content.decode()
    assert 'data-outcome="accepted"' in shown and "Processed again: Accepted." in shown
    sample.refresh_from_db()
    assert sample.state == SampleState.RESULT
    # already fixed: the old item's page says so and has no form; a post changes nothing
    old = client.get(reverse("supervision:item", args=[item.pk])).content.decode()
    assert "was fixed and processed again" in old and 'name="row-patient"' not in old
    assert client.post(reverse("supervision:item", args=[item.pk]), _row(item)).status_code == 302
    assert IntakeItem.objects.filter(intake=intake).count() == 3
    assert "Nothing is failing" in client.get(reverse("supervision:overview")).content.decode()


def _row(item):
    return {f"row-{k}": v for k, v in item.data.items() if k != "fixed_from"}


def test_intake_page_lists_items_and_filters_by_outcome(client, world, failed):
    _sample, intake, item = failed
    _as(client, world, "lab_x")
    page = client.get(reverse("supervision:intake", args=[intake.pk]))
    assert page.status_code == 200 and reverse("supervision:item", args=[item.pk]) in page.content.decode()
    accepted = client.get(reverse("supervision:intake", args=[intake.pk]), {"outcome": "accepted"})
    assert reverse("supervision:item", args=[item.pk]) not in accepted.content.decode()


@pytest.mark.parametrize("persona", ["lab_y", "taker_a", "manager_a", "viewer_rm"])
def test_other_scopes_and_roles_get_404(client, world, failed, persona):
    _sample, intake, item = failed
    _as(client, world, persona)
    if persona != "lab_y":
        assert client.get(reverse("supervision:overview")).status_code == 404
    assert client.get(reverse("supervision:intake", args=[intake.pk])).status_code == 404
    assert client.get(reverse("supervision:item", args=[item.pk])).status_code == 404
    assert client.post(reverse("supervision:item", args=[item.pk]), _row(item)).status_code == 404
    item.refresh_from_db()
    assert item.superseded_by_id is None


def test_lab_y_sees_nothing_of_lab_x(client, world, failed):
    _sample, _intake, item = failed
    _as(client, world, "lab_y")
    html = client.get(reverse("supervision:overview")).content.decode()
    assert f'data-item="{item.pk}"' not in html and "Nothing is failing" in html


def test_citizen_and_anonymous_are_kept_out(client, world, failed):
    assert client.get(reverse("supervision:overview")).status_code == 302  # to the login page
    client.force_login(world.users["citizen"])
    assert client.get(reverse("supervision:overview")).status_code == 404


def test_admin_sees_every_lab_and_filters_by_one(client, world, failed, settings):
    _sample, _intake, item = failed
    late = received_sample(world)
    Sample.objects.filter(pk=late.pk).update(received_at=timezone.now() - timedelta(hours=30))
    _as(client, world, "admin")
    html = client.get(reverse("supervision:overview")).content.decode()
    late_link = reverse("mysamples:detail", args=[late.number])
    assert f'data-item="{item.pk}"' in html and late_link in html
    only_y = client.get(reverse("supervision:overview"), {"lab": "1000000002", "days": "3"}).content.decode()
    assert f'data-item="{item.pk}"' not in only_y and late_link not in only_y
    assert client.get(reverse("supervision:item", args=[item.pk])).status_code == 200


def test_the_overview_costs_the_same_queries_with_few_or_many_failures(client, world):
    _as(client, world, "lab_x")

    def measure():
        client.get(reverse("supervision:overview"))
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("supervision:overview")).status_code == 200
        return len(captured)

    _upload(world, _bad_rows(world, 1)[1])
    few = measure()
    _upload(world, _bad_rows(world, 12)[1])
    late = received_sample(world)
    Sample.objects.filter(pk=late.pk).update(received_at=timezone.now() - timedelta(hours=30))
    assert measure() <= few + 1  # +1: the count of late samples appears once there are some
    assert Intake.objects.count() == 2


def test_an_hl7_item_offers_its_message_to_correct_and_a_national_api_item_explains(client, world):
    sample = sample_in_state(SampleState.RECEIVED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    body = message("oru_covid_several_obx.hl7", result_code="99999999", result_text="Quizas", **for_sample(sample))
    item = hl7.receive(world.actors["key_lab_x"], body).intake.items.get()
    client.post(
        "/pntm/recepcionarMuestra",
        data='[{"id_muestra": 1999999999}]',
        content_type="application/json",
        headers={"ACCESSKEY": world.keys["lab_x"]},
    )
    pntm_item = IntakeItem.objects.get(intake__channel="pntm")
    _as(client, world, "lab_x")
    page = client.get(reverse("supervision:item", args=[item.pk])).content.decode()
    assert 'name="content"' in page and "99999999^Quizas" in page and "MSH|" in page
    fixed = page.split('name="content"')[1].split(">", 1)[1].split("</textarea>")[0]
    corrected = html.unescape(fixed).replace("99999999^Quizas", "260373001^Detected")
    response = client.post(reverse("supervision:item", args=[item.pk]), {"content": corrected})
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.superseded_by.outcome == IntakeItem.Outcome.ACCEPTED

    national = client.get(reverse("supervision:item", args=[pntm_item.pk])).content.decode()
    assert "send the call again" in national and "id_muestra" in national and "<form" not in national.split("<main")[1]
    assert client.post(reverse("supervision:item", args=[pntm_item.pk]), {}).status_code == 302
    pntm_item.refresh_from_db()
    assert pntm_item.superseded_by_id is None
