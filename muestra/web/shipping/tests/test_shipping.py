# mypy: disable-error-code="union-attr,arg-type,attr-defined"
"""Shipments: the establishment's list, opening a shipment, filling it by scanning (htmx and plain posts), removing
a tube, dispatching, the manifest PDF; scoping (404 outside), bad input, bounded queries."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conftest import in_english, login_with_second_factor
from muestra.demo.builders import sample_in_state, sample_input
from muestra.samples import services
from muestra.samples.models import Sample, SampleState, Shipment, ShipmentItem
from muestra.samples.tests.support import assert_unchanged, db_state
from muestra.samples.tests.test_documents import pages

S = SampleState
LIST = reverse("shipping:list")
NEW = reverse("shipping:new")
HX = {"HTTP_HX_REQUEST": "true"}


def client_for(world: Any, name: str) -> Client:
    client = in_english(Client())
    if name in {"taker_a", "taker_b", "manager_a", "citizen"}:
        client.force_login(world.users[name])
    else:
        login_with_second_factor(client, world.users[name])
    return client


def registered(world: Any, n: int = 1, **data: Any) -> list[Sample]:
    taker = world.actors["taker_a"]
    return [services.sample_register(actor=taker, data=sample_input(**data))[0] for _ in range(n)]


def open_shipment(world: Any, samples: list[Sample] = ()) -> Shipment:  # type: ignore[assignment]
    return services.shipment_create(
        actor=world.actors["taker_a"],
        establishment_code="113100",
        laboratory_id=1000000001,
        sample_ids=[s.pk for s in samples],
    )


def url(name: str, shipment: Shipment) -> str:
    return reverse(f"shipping:{name}", args=[shipment.number])


# --- list and creation -----------------------------------------------------------------------------------------------


def test_the_list_shows_the_establishment_shipments_by_state(world):
    open_one = open_shipment(world, registered(world, 2))
    sample_in_state(S.DISPATCHED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    client = client_for(world, "taker_a")
    body = client.get(LIST).content.decode()
    assert url("detail", open_one) in body
    assert '<span class="count">1</span>' in body.split('data-tab="dispatched"')[1].split("</a>")[0]
    row = body.split(url("detail", open_one))[1].split("</tr>")[0]
    assert '<td class="num" data-label="Tubes">2</td>' in row
    dispatched = client.get(LIST, {"state": "dispatched"}).content.decode()
    assert url("detail", open_one) not in dispatched and "Dispatched" in dispatched


@pytest.mark.parametrize("name", ["lab_x", "viewer_rm", "admin", "citizen"])
def test_the_list_and_new_are_for_the_establishment_side_only(world, name):
    client = client_for(world, name)
    assert client.get(LIST).status_code == 404
    assert client.get(NEW).status_code == 404
    assert client.post(NEW, {"establishment": "113100", "laboratory": "1000000001"}).status_code == 404


def test_the_list_queries_do_not_grow_with_rows(world, django_assert_max_num_queries):
    client = client_for(world, "taker_a")
    open_shipment(world, registered(world, 2))
    client.get(LIST)
    with CaptureQueriesContext(connection) as few:
        client.get(LIST)
    for _ in range(30):
        open_shipment(world, registered(world, 1))
    with django_assert_max_num_queries(len(few.captured_queries)):
        body = client.get(LIST).content.decode()
    assert body.count('class="shipment-number"') == 25 and "Page 1 of 2" in body


def test_opening_a_shipment_to_an_assigned_lab(world):
    client = client_for(world, "taker_a")
    form = client.get(NEW).content.decode()
    assert 'value="1000000001"' in form and 'value="1000000002"' not in form  # lab Y is not assigned to A
    response = client.post(NEW, {"establishment": "113100", "laboratory": "1000000001", "note": "Caja 1"})
    shipment = Shipment.objects.get()
    assert response.status_code == 302 and response["Location"] == url("detail", shipment)
    assert (shipment.establishment, shipment.laboratory, shipment.note) == (world.est_a, world.lab_x, "Caja 1")


def test_opening_a_shipment_refuses_bad_input_next_to_the_field(world):
    client = client_for(world, "taker_a")
    before = db_state()
    body = client.post(NEW, {"establishment": "113100", "laboratory": "1000000002"}).content.decode()
    assert 'id="id_laboratory_error"' in body
    body = client.post(NEW, {"establishment": "105100", "laboratory": "1000000001"}).content.decode()
    assert 'id="id_establishment_error"' in body
    body = client.post(NEW, {}).content.decode()
    assert 'id="id_laboratory_error"' in body and "This field is required." in body
    assert_unchanged(before)


# --- scanning ------------------------------------------------------------------------------------------------------


def outcome(body: str) -> str:
    return body.split('data-scan-outcome="')[1].split('"')[0]


def test_scanning_adds_one_tube_per_scan_with_feedback(world):
    first, second = registered(world, 2)
    shipment = open_shipment(world)
    client = client_for(world, "taker_a")
    page = client.get(url("detail", shipment)).content.decode()
    assert "data-scan" in page and "data-scan-feedback" in page and "web/scan.js" in page

    body = client.post(url("scan", shipment), {"code": str(first.number)}, **HX).content.decode()
    assert outcome(body) == "ok" and "<html" not in body
    assert 'hx-swap-oob="true"' in body and f'data-tube="{first.number}"' in body
    body = client.post(url("scan", shipment), {"code": f" {first.number} "}, **HX).content.decode()
    assert outcome(body) == "warn" and "already in this shipment" in body
    body = client.post(url("scan", shipment), {"code": str(second.number)}, **HX).content.decode()
    assert outcome(body) == "ok"
    assert list(ShipmentItem.objects.filter(shipment=shipment).values_list("sample_id", flat=True)) == [
        first.pk,
        second.pk,
    ]


def test_a_tube_barcode_can_be_scanned_too(world):
    (sample,) = registered(world, tube_code="TB-77")
    shipment = open_shipment(world)
    body = client_for(world, "taker_a").post(url("scan", shipment), {"code": "TB-77"}, **HX).content.decode()
    assert outcome(body) == "ok" and Sample.objects.get(pk=sample.pk).shipment_id == shipment.pk


def test_refused_scans_are_errors_and_store_nothing(world):
    shipment = open_shipment(world)
    other = sample_in_state(
        S.REGISTERED,
        taker=world.actors["taker_b"],
        lab=world.actors["lab_x"],
        data=sample_input(establishment="105100"),
    )
    cancelled = sample_in_state(S.CANCELLED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    client = client_for(world, "taker_a")
    before = db_state()
    for code, words in (
        (str(other.number), "No sample of yours"),  # another establishment's tube is not revealed
        ("1999999999", "No sample of yours"),
        ("", "Scan or type"),
        (str(cancelled.number), "cancelled"),
    ):
        body = client.post(url("scan", shipment), {"code": code}, **HX).content.decode()
        assert outcome(body) == "error" and words in body, code
        assert 'role="alert"' in body
    assert_unchanged(before)


def test_a_tube_for_another_lab_is_an_error(world):
    taker_b = world.actors["taker_b"]
    to_x = services.sample_register(actor=taker_b, data=sample_input(establishment="105100"))[0]
    shipment = services.shipment_create(actor=taker_b, establishment_code="105100", laboratory_id=1000000002)
    body = client_for(world, "taker_b").post(url("scan", shipment), {"code": str(to_x.number)}, **HX).content.decode()
    assert outcome(body) == "error" and "another laboratory" in body
    assert not ShipmentItem.objects.exists()


def test_without_javascript_a_scan_posts_redirects_and_shows_its_outcome_once(world):
    (sample,) = registered(world)
    shipment = open_shipment(world)
    client = client_for(world, "taker_a")
    response = client.post(url("scan", shipment), {"code": str(sample.number)})
    assert response.status_code == 302 and response["Location"] == url("detail", shipment)
    page = client.get(url("detail", shipment)).content.decode()
    assert outcome(page) == "ok" and f'data-tube="{sample.number}"' in page
    assert "data-scan-outcome" not in client.get(url("detail", shipment)).content.decode()


def test_remove_and_dispatch(world):
    first, second = registered(world, 2)
    shipment = open_shipment(world, [first, second])
    client = client_for(world, "taker_a")
    response = client.post(url("remove", shipment), {"sample": str(second.number)})
    assert response.status_code == 302
    assert Sample.objects.get(pk=second.pk).shipment_id is None
    page = client.post(url("dispatch", shipment), follow=True).content.decode()
    shipment.refresh_from_db()
    assert shipment.state == Shipment.State.DISPATCHED and shipment.dispatched_at is not None
    assert Sample.objects.get(pk=first.pk).state == S.DISPATCHED
    assert Sample.objects.get(pk=second.pk).state == S.REGISTERED
    assert 'data-state="dispatched"' in page and "data-scan" not in page and "/remove/" not in page
    # A dispatched shipment takes no more tubes.
    body = client.post(url("scan", shipment), {"code": str(second.number)}, **HX).content.decode()
    assert outcome(body) == "error" and "already dispatched" in body


def test_an_empty_shipment_is_not_dispatched(world):
    shipment = open_shipment(world)
    before = db_state()
    page = client_for(world, "taker_a").post(url("dispatch", shipment), follow=True).content.decode()
    assert "empty shipment cannot be dispatched" in page
    assert_unchanged(before)


# --- who sees what --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["taker_b", "lab_y", "citizen"])
def test_another_scope_gets_404_on_every_page_of_a_shipment(world, name):
    (sample,) = registered(world)
    shipment = open_shipment(world, [sample])
    client = client_for(world, name)
    before = db_state()
    assert client.get(url("detail", shipment)).status_code == 404
    assert client.get(url("manifest", shipment)).status_code == 404
    assert client.post(url("scan", shipment), {"code": str(sample.number)}, **HX).status_code == 404
    assert client.post(url("remove", shipment), {"sample": str(sample.number)}).status_code == 404
    assert client.post(url("dispatch", shipment)).status_code == 404
    assert client.get(reverse("shipping:detail", args=[1999999999])).status_code == 404
    assert_unchanged(before)


def test_an_administrator_may_act_for_any_establishment(world):
    (sample,) = registered(world)
    shipment = open_shipment(world, [sample])
    page = client_for(world, "admin").get(url("detail", shipment)).content.decode()
    assert f'data-tube="{sample.number}"' in page and "data-scan" in page


@pytest.mark.parametrize("name", ["lab_x", "viewer_rm"])
def test_the_lab_and_readers_see_a_shipment_without_its_controls(world, name):
    (sample,) = registered(world)
    shipment = open_shipment(world, [sample])
    client = client_for(world, name)
    page = client.get(url("detail", shipment))
    assert page.status_code == 200 and f'data-tube="{sample.number}"' in page.content.decode()
    assert "data-scan" not in page.content.decode() and "/dispatch/" not in page.content.decode()
    assert client.get(url("manifest", shipment)).status_code == 200
    assert client.post(url("dispatch", shipment)).status_code == 404
    assert Shipment.objects.get(pk=shipment.pk).state == Shipment.State.OPEN


def test_the_manifest_is_an_a4_pdf_with_its_tubes(world):
    samples = registered(world, 3)
    shipment = open_shipment(world, samples)
    response = client_for(world, "taker_a").get(url("manifest", shipment))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert pages(response.content) == [(210.0, 297.0)]
    assert f"muestra-manifest-{shipment.number}.pdf" in response["Content-Disposition"]


def test_the_detail_queries_do_not_grow_with_tubes(world, django_assert_max_num_queries):
    client = client_for(world, "taker_a")
    shipment = open_shipment(world, registered(world, 2))
    client.get(url("detail", shipment))
    with CaptureQueriesContext(connection) as few:
        client.get(url("detail", shipment))
    services.shipment_add_samples(
        actor=world.actors["taker_a"], shipment_id=shipment.pk, sample_ids=[s.pk for s in registered(world, 25)]
    )
    with django_assert_max_num_queries(len(few.captured_queries)):
        body = client.get(url("detail", shipment)).content.decode()
    assert body.count("data-tube=") == 27
