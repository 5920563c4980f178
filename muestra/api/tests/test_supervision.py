# mypy: disable-error-code="union-attr,arg-type"
"""/api/v1/supervision: the summary, every item with its outcome (cursor pages), late samples, and reprocessing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from muestra.api.tests.support import error_of
from muestra.integrations.bulk import services as bulk_services
from muestra.integrations.bulk.templates import RESULTS_NATIONAL
from muestra.integrations.bulk.tests.helpers import received_sample, rows_csv
from muestra.integrations.models import IntakeItem
from muestra.samples.models import Sample, SampleState


@pytest.fixture(autouse=True)
def immediate_tasks(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


def _bad_upload(world, n=1, actor="key_lab_x"):
    samples = [received_sample(world) for _ in range(n)]
    rows = [{"ID Muestra": str(s.number), "ID Paciente": "11111111-1", "Resultado": "Muestra no apta"} for s in samples]
    intake, _created = bulk_services.upload_submit(
        actor=world.actors[actor], kind=RESULTS_NATIONAL, filename="r.csv", content=rows_csv(rows)
    )
    return samples, intake


def test_summary_items_and_reprocess_for_the_keys_lab(api, world):
    (sample,), intake = _bad_upload(world)
    lis = api("key_lab_x")
    summary = lis.get("/supervision").json()
    file = next(c for c in summary["channels"] if c["channel"] == "file")
    assert (file["units"], file["rejected"]) == (1, 1) and summary["failing"] == 1
    assert summary["deliveries_scope"] == "laboratory"
    (failure,) = summary["failures"]
    assert failure["unit"] == intake.pk and failure["errors"][0]["field"] == "patient" and failure["reprocessable"]

    page = lis.get("/supervision/items", {"outcome": "rejected", "channel": "file"}).json()
    assert [i["id"] for i in page["items"]] == [failure["id"]] and page["next_cursor"] is None
    detail = lis.get(f"/supervision/items/{failure['id']}").json()
    assert detail["data"]["sample"] == str(sample.number)

    fixed = {**detail["data"], "patient": sample.patient.document_number}
    response = lis.post(f"/supervision/items/{failure['id']}/reprocess", {"data": fixed})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["item"]["superseded_by"] == body["new_items"][0]["id"] and body["unit"] == intake.pk
    assert body["new_items"][0]["outcome"] == "accepted"
    sample.refresh_from_db()
    assert sample.state == SampleState.RESULT

    again = lis.post(f"/supervision/items/{failure['id']}/reprocess", {"data": fixed})
    assert again.status_code == 409 and error_of(again)["code"] == "not_reprocessable"
    current = lis.get("/supervision/items", {"outcome": "rejected", "current": "true"}).json()
    assert current["items"] == []
    assert lis.get("/supervision").json()["failing"] == 0


def test_other_labs_and_roles_are_refused(api, world):
    _samples, intake = _bad_upload(world)
    item = intake.items.get()
    other = api("key_lab_y")
    assert other.get("/supervision").json()["failing"] == 0
    assert other.get("/supervision/items").json()["items"] == []
    assert error_of(other.get(f"/supervision/items/{item.pk}"))["code"] == "not_found"
    refused = other.post(f"/supervision/items/{item.pk}/reprocess", {"data": {"patient": ""}})
    assert refused.status_code == 404 and error_of(refused)["code"] == "not_found"
    # lab Y may not pick lab X with the filter either
    assert other.get("/supervision", {"laboratory": 1000000001}).status_code == 404
    for persona in ("key_est_a", "taker_a", "viewer_rm", "citizen"):
        response = api(persona).get("/supervision")
        assert response.status_code == 403, persona
        error_of(response)
    assert api("viewer_rm").post(f"/supervision/items/{item.pk}/reprocess", {"data": {}}).status_code == 403
    item.refresh_from_db()
    assert item.superseded_by_id is None
    admin = api("admin")
    assert admin.get("/supervision").json()["deliveries_scope"] == "all"
    assert admin.get(f"/supervision/items/{item.pk}").status_code == 200


def test_items_are_cursor_paginated_and_cost_the_same_queries(api, world):
    _bad_upload(world, n=2)
    lis = api("key_lab_x")

    def measure(params):
        with CaptureQueriesContext(connection) as captured:
            response = lis.get("/supervision/items", params)
        assert response.status_code == 200
        return len(captured), response.json()

    measure({"limit": 2})  # the key is remembered after its first use
    few, _page = measure({"limit": 2})
    _bad_upload(world, n=8)
    many, first = measure({"limit": 5})
    assert many == few
    assert len(first["items"]) == 5 and first["next_cursor"]
    _count, second = measure({"limit": 5, "cursor": first["next_cursor"]})
    ids = [i["id"] for i in first["items"] + second["items"]]
    assert ids == sorted(ids) and len(set(ids)) == 10 and second["next_cursor"] is None
    assert error_of(lis.get("/supervision/items", {"cursor": "nope"}))["code"] == "invalid_cursor"
    old = lis.get("/supervision/items", {"since": (timezone.now() + timedelta(hours=1)).isoformat()}).json()
    assert old["items"] == []


def test_overdue_lists_samples_received_past_the_target(api, world):
    late = received_sample(world)
    received_sample(world)
    Sample.objects.filter(pk=late.pk).update(received_at=timezone.now() - timedelta(hours=30))
    page = api("key_lab_x").get("/supervision/overdue").json()
    assert [(i["sample"], i["laboratory"]) for i in page["items"]] == [(late.number, 1000000001)]
    assert page["items"][0]["hours_waiting"] >= 29
    assert api("key_lab_y").get("/supervision/overdue").json()["items"] == []
    assert api("key_lab_x").get("/supervision").json()["overdue"] == 1


def test_national_api_items_explain_the_lis_must_resend(api, world, client):
    client.post(
        "/pntm/recepcionarMuestra",
        data='[{"id_muestra": 1999999999}]',
        content_type="application/json",
        headers={"ACCESSKEY": world.keys["lab_x"]},
    )
    item = IntakeItem.objects.get(intake__channel="pntm")
    lis = api("key_lab_x")
    listed = lis.get("/supervision/items", {"channel": "pntm"}).json()["items"]
    assert listed[0]["errors"][0]["field"] == "id_muestra" and listed[0]["reprocessable"] is False
    refused = lis.post(f"/supervision/items/{item.pk}/reprocess", {"data": {}}, headers={"Accept-Language": "en"})
    assert refused.status_code == 422 and "send the call again" in error_of(refused)["message"]
