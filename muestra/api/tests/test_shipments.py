"""/shipments: create, list, detail, add, remove, dispatch, receive; each with its cross-scope denial."""

from __future__ import annotations

import pytest

from muestra.api.tests.support import error_of, fields_of
from muestra.samples import services
from muestra.samples.models import Sample, SampleState, Shipment, ShipmentItem

pytestmark = pytest.mark.django_db


def _open_shipment(world, *samples) -> Shipment:
    return services.shipment_create(
        actor=world.actors["taker_a"],
        establishment_code="113100",
        laboratory_id=1000000001,
        sample_ids=[s.pk for s in samples],
    )


def _dispatched_shipment(world, *samples) -> Shipment:
    shipment = _open_shipment(world, *samples)
    return services.shipment_dispatch(actor=world.actors["taker_a"], shipment_id=shipment.pk)


def test_create_with_samples_and_per_item_outcomes(api, make_sample):
    good = make_sample()
    cancelled = make_sample("cancelled")
    response = api("taker_a").post(
        "/shipments",
        {
            "establishment": "113100",
            "laboratory": 1000000001,
            "samples": [good.number, cancelled.number],
            "note": "caja 1",
        },
    )
    assert response.status_code == 201, response.content
    out = response.json()
    assert out["state"] == "open"
    assert out["establishment"]["code"] == "113100"
    assert out["laboratory"]["platform_id"] == 1000000001
    assert [i["sample"] for i in out["items"]] == [good.number]
    assert [(a["number"], a["status"]) for a in out["added"]] == [(good.number, "added"), (cancelled.number, "error")]
    assert out["added"][1]["errors"][0]["code"] == "illegal_transition"


def test_create_errors(api):
    response = api("taker_a").post("/shipments", {"establishment": "113100", "laboratory": 1000000002})
    assert response.status_code == 422
    assert fields_of(response) == {"laboratory": "not_assigned"}
    response = api("taker_a").post("/shipments", {"establishment": "113100"})
    assert fields_of(response) == {"laboratory": "required"}


@pytest.mark.parametrize(("persona", "status"), [("taker_b", 422), ("lab_x", 422), ("viewer_rm", 403)])
def test_create_for_another_establishment_is_refused(api, persona, status):
    response = api(persona).post("/shipments", {"establishment": "113100", "laboratory": 1000000001})
    assert response.status_code == status
    if status == 422:  # the service does not say whether the establishment exists
        assert fields_of(response) == {"establishment": "unknown_code"}
    assert not Shipment.objects.exists()


def test_list_and_detail_are_scoped(api, world, make_sample):
    shipment = _open_shipment(world, make_sample())
    number = shipment.number
    for persona in ["taker_a", "manager_a", "lab_x", "key_lab_x", "viewer_rm", "admin"]:
        client = api(persona)
        assert [s["number"] for s in client.get("/shipments").json()["items"]] == [number], persona
        assert client.get(f"/shipments/{number}").status_code == 200, persona
    for persona in ["taker_b", "lab_y", "citizen"]:
        client = api(persona)
        assert client.get("/shipments").json()["items"] == [], persona
        response = client.get(f"/shipments/{number}")
        assert response.status_code == 404, persona
        assert error_of(response)["errors"][0]["field"] == "shipment"


def test_list_filters_and_pagination(api, world, make_sample):
    first = _open_shipment(world, make_sample())
    second = _dispatched_shipment(world, make_sample())
    client = api("taker_a")
    assert [s["number"] for s in client.get("/shipments", {"state": "dispatched"}).json()["items"]] == [second.number]
    assert client.get("/shipments", {"laboratory": 1000000002}).json()["items"] == []
    page = client.get("/shipments", {"limit": 1}).json()
    assert [s["number"] for s in page["items"]] == [first.number]
    page = client.get("/shipments", {"limit": 1, "cursor": page["next_cursor"]}).json()
    assert [s["number"] for s in page["items"]] == [second.number]
    assert page["next_cursor"] is None


def test_add_and_remove_samples(api, world, make_sample):
    shipment = _open_shipment(world)
    a, b = make_sample(), make_sample()
    client = api("taker_a")
    response = client.post(f"/shipments/{shipment.number}/samples", {"samples": [a.number, b.number, a.number]})
    assert response.status_code == 200, response.content
    out = response.json()
    assert [i["status"] for i in out["items"]] == ["added", "added", "already_in"]
    assert out["counts"] == {"added": 2, "already_in": 1, "error": 0}
    response = client.delete(f"/shipments/{shipment.number}/samples/{a.number}")
    assert response.status_code == 204
    assert response.content == b""
    assert "Content-Length" not in response or response["Content-Length"] == "0"
    detail = client.get(f"/shipments/{shipment.number}").json()
    assert [i["sample"] for i in detail["items"]] == [b.number]
    assert Sample.objects.get(pk=a.pk).shipment_id is None


@pytest.mark.parametrize(("persona", "status"), [("taker_b", 404), ("lab_y", 404), ("viewer_rm", 403)])
def test_add_and_remove_cross_scope(api, world, make_sample, persona, status):
    sample = make_sample()
    shipment = _open_shipment(world, sample)
    client = api(persona)
    assert client.post(f"/shipments/{shipment.number}/samples", {"samples": [sample.number]}).status_code == status
    assert client.delete(f"/shipments/{shipment.number}/samples/{sample.number}").status_code == status
    assert ShipmentItem.objects.filter(shipment=shipment).count() == 1


def test_add_a_sample_of_another_establishment(api, world, make_sample):
    from muestra.demo.builders import sample_input

    at_b, _ = services.sample_register(actor=world.actors["taker_b"], data=sample_input(establishment="105100"))
    shipment = _open_shipment(world)
    out = api("taker_a").post(f"/shipments/{shipment.number}/samples", {"samples": [at_b.number]}).json()
    assert out["items"][0]["status"] == "error"
    assert out["items"][0]["errors"][0]["code"] == "not_found"  # out of taker A's scope: like a missing sample


def test_dispatch(api, world, make_sample):
    sample = make_sample()
    shipment = _open_shipment(world, sample)
    client = api("taker_a")
    response = client.post(f"/shipments/{shipment.number}/dispatch")
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "dispatched"
    assert Sample.objects.get(pk=sample.pk).state == SampleState.DISPATCHED
    assert client.post(f"/shipments/{shipment.number}/dispatch").status_code == 200  # twice is harmless
    assert client.delete(f"/shipments/{shipment.number}/samples/{sample.number}").status_code == 409


def test_dispatch_empty_shipment(api, world):
    shipment = _open_shipment(world)
    response = api("taker_a").post(f"/shipments/{shipment.number}/dispatch")
    assert response.status_code == 422
    assert fields_of(response) == {"samples": "validation_error"}


@pytest.mark.parametrize(("persona", "status"), [("taker_b", 404), ("lab_y", 404), ("lab_x", 403), ("citizen", 403)])
def test_dispatch_cross_scope(api, world, make_sample, persona, status):
    shipment = _open_shipment(world, make_sample())
    assert api(persona).post(f"/shipments/{shipment.number}/dispatch").status_code == status
    assert Shipment.objects.get(pk=shipment.pk).state == "open"


def test_receive_with_damaged_and_missing(api, world, make_sample):
    ok, broken, lost = make_sample(), make_sample(), make_sample()
    shipment = _dispatched_shipment(world, ok, broken, lost)
    response = api("key_lab_x").post(
        f"/shipments/{shipment.number}/receive",
        {"received": [ok.number], "damaged": [broken.number], "damage_reason": "tubo roto"},
    )
    assert response.status_code == 200, response.content
    out = response.json()
    assert out["received"] == [ok.number]
    assert out["damaged"] == [broken.number]
    assert out["missing"] == [lost.number]
    assert out["shipment"]["state"] == "received"
    outcomes = {i["sample"]: i["outcome"] for i in out["shipment"]["items"]}
    assert outcomes == {ok.number: "received", broken.number: "damaged", lost.number: "missing"}
    assert Sample.objects.get(pk=broken.pk).state == SampleState.REJECTED
    assert Sample.objects.get(pk=lost.pk).state == SampleState.DISPATCHED


@pytest.mark.parametrize(
    ("persona", "status"), [("lab_y", 404), ("key_lab_y", 404), ("taker_b", 404), ("taker_a", 403)]
)
def test_receive_cross_scope(api, world, make_sample, persona, status):
    sample = make_sample()
    shipment = _dispatched_shipment(world, sample)
    response = api(persona).post(f"/shipments/{shipment.number}/receive", {"received": [sample.number]})
    assert response.status_code == status
    assert Sample.objects.get(pk=sample.pk).state == SampleState.DISPATCHED
