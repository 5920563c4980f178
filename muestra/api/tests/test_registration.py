"""POST /samples and POST /samples/batch."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from muestra.api.tests.support import error_of, fields_of, sample_body
from muestra.demo.builders import patient_input, sample_input
from muestra.patients.models import Patient
from muestra.samples.models import Sample, SampleState

pytestmark = pytest.mark.django_db


def test_create_returns_201_and_the_sample(api, world):
    body = sample_body()
    response = api("taker_a").post("/samples", body)
    assert response.status_code == 201, response.content
    out = response.json()
    sample = Sample.objects.get()
    assert out["number"] == sample.number
    assert out["state"] == SampleState.REGISTERED
    assert out["establishment"] == {"code": "113100", "name": world.est_a.name}
    assert out["laboratory"]["platform_id"] == 1000000001
    assert out["test"]["code"] == "covid19-pcr"
    assert out["test"]["loinc_code"]
    assert out["patient"]["document_number"] == body["patient"]["document_number"]
    assert out["patient"]["birth_date"] == "1985-05-17"
    assert out["result"] is None
    assert out["channel"] == "api"


def test_lis_retry_with_the_same_client_code_returns_200_and_the_same_sample(api):
    body = sample_body(establishment="105100", laboratory=1000000002, client_code="LIS-Y-0001")
    client = api("key_lab_y")
    first = client.post("/samples", body)
    assert first.status_code == 201, first.content
    assert first.json()["state"] == SampleState.DISPATCHED  # a lab's own registration is already on its way
    again = client.post("/samples", body)
    assert again.status_code == 200
    assert again.json()["number"] == first.json()["number"]
    assert Sample.objects.count() == 1


def test_same_client_code_with_other_content_is_a_conflict(api):
    body = sample_body(establishment="105100", laboratory=1000000002, client_code="LIS-Y-0002")
    client = api("key_lab_y")
    assert client.post("/samples", body).status_code == 201
    other = sample_body(establishment="105100", laboratory=1000000002, client_code="LIS-Y-0002")
    response = client.post("/samples", other)
    assert response.status_code == 409
    assert fields_of(response) == {"client_code": "conflict"}


def test_a_known_patient_is_reused(api):
    patient = patient_input()
    client = api("taker_a")
    assert client.post("/samples", sample_body(sample_input(patient=patient))).status_code == 201
    assert client.post("/samples", sample_body(sample_input(patient=patient))).status_code == 201
    assert Patient.objects.count() == 1


def test_pooled_tube(api):
    body = sample_body()
    del body["patient"]
    body["pool_members"] = [sample_body()["patient"] for _ in range(3)]
    response = api("taker_a").post("/samples", body)
    assert response.status_code == 201, response.content
    pool = response.json()
    assert pool["is_pool"] is True
    assert pool["patient"] is None
    assert len(pool["members"]) == 3
    member = api("taker_a").get(f"/samples/{pool['members'][0]}").json()
    assert member["pool"] == pool["number"]
    assert member["patient"] is not None


def test_pool_member_errors_are_named_by_index(api):
    body = sample_body()
    del body["patient"]
    members = [sample_body()["patient"] for _ in range(2)]
    members[1]["birth_date"] = "not a date"
    body["pool_members"] = members
    response = api("taker_a").post("/samples", body)
    assert response.status_code == 422
    assert fields_of(response) == {"pool_members[1].birth_date": "invalid_date"}


def test_cross_scope_registration_is_refused(api):
    # A taker of B registering at A: the service names the establishment (nothing about A's samples leaks).
    response = api("taker_b").post("/samples", sample_body())
    assert response.status_code == 422
    assert fields_of(response) == {"establishment": "not_yours"}
    # A lab registering a sample addressed to another lab.
    response = api("key_lab_y").post("/samples", sample_body(establishment="105100", laboratory=1000000001))
    assert response.status_code == 422
    assert fields_of(response) == {"laboratory": "wrong_laboratory"}
    assert not Sample.objects.exists()


# --- batch --------------------------------------------------------------------------------------------------------


def test_batch_with_bad_rows_mixed_in(api):
    good = [sample_body() for _ in range(3)]
    wire_bad = sample_body(collected_at="tomorrow-ish")
    rule_bad = sample_body(sample_type="no-such-type")
    missing = sample_body()
    del missing["patient"]["birth_date"]
    items = [good[0], wire_bad, good[1], rule_bad, missing, good[2], "not an object"]
    response = api("taker_a").post("/samples/batch", {"items": items})
    assert response.status_code == 200, response.content
    out = response.json()
    assert out["counts"] == {"created": 3, "existing": 0, "error": 4}
    statuses = [(i["index"], i["status"]) for i in out["items"]]
    assert statuses == [
        (0, "created"),
        (1, "error"),
        (2, "created"),
        (3, "error"),
        (4, "error"),
        (5, "created"),
        (6, "error"),
    ]
    by_index = {i["index"]: i for i in out["items"]}
    assert {e["field"]: e["code"] for e in by_index[1]["errors"]} == {"collected_at": "invalid_datetime"}
    assert {e["field"]: e["code"] for e in by_index[3]["errors"]} == {"sample_type": "unknown_code"}
    assert {e["field"]: e["code"] for e in by_index[4]["errors"]} == {"patient.birth_date": "required"}
    assert by_index[6]["errors"][0]["code"] == "invalid_type"
    for index in (1, 3, 4, 6):
        assert by_index[index]["sample"] is None
    created = [by_index[i]["sample"]["number"] for i in (0, 2, 5)]
    # Nothing of the bad rows was stored: exactly the three good samples and their three patients.
    assert sorted(s.number for s in Sample.objects.all()) == sorted(created)
    assert Patient.objects.count() == 3
    first_pk = Sample.pk_from_number(by_index[0]["sample"]["number"])
    assert first_pk is not None
    first = Sample.objects.get(pk=first_pk)
    assert first.patient is not None
    assert first.patient.document_number == good[0]["patient"]["document_number"]
    assert by_index[0]["sample"]["state"] == "registered"


def test_batch_retry_reports_existing(api):
    items = [sample_body(establishment="105100", laboratory=1000000002, client_code=f"Y-{i}") for i in range(3)]
    client = api("key_lab_y")
    first = client.post("/samples/batch", {"items": items}).json()
    assert first["counts"] == {"created": 3, "existing": 0, "error": 0}
    again = client.post("/samples/batch", {"items": items}).json()
    assert again["counts"] == {"created": 0, "existing": 3, "error": 0}
    assert [i["sample"]["number"] for i in again["items"]] == [i["sample"]["number"] for i in first["items"]]
    assert Sample.objects.count() == 3


def test_batch_duplicate_code_inside_one_batch(api):
    body = sample_body(establishment="105100", laboratory=1000000002, client_code="Y-DUP")
    out = api("key_lab_y").post("/samples/batch", {"items": [body, dict(body)]}).json()
    assert [i["status"] for i in out["items"]] == ["created", "error"]
    assert out["items"][1]["errors"][0] == {
        "field": "client_code",
        "code": "duplicate",
        "message": out["items"][1]["errors"][0]["message"],
    }


def test_batch_too_large(api, settings):
    settings.MUESTRA = {**settings.MUESTRA, "MAX_BATCH_ITEMS": 2}
    response = api("taker_a").post("/samples/batch", {"items": [sample_body() for _ in range(3)]})
    assert response.status_code == 422
    assert fields_of(response) == {"items": "validation_error"}
    assert not Sample.objects.exists()


def test_batch_body_must_hold_items(api):
    response = api("taker_a").post("/samples/batch", {"samples": []})
    assert response.status_code == 422
    assert fields_of(response) == {"items": "required", "samples": "unknown_field"}


def test_batch_cross_scope_items_are_errors(api):
    out = api("taker_b").post("/samples/batch", {"items": [sample_body(), sample_body(establishment="105100")]})
    assert out.status_code == 200
    items = out.json()["items"]
    assert items[0]["status"] == "error"
    assert items[0]["errors"][0]["field"] == "establishment"
    assert items[1]["status"] == "created"


def test_batch_error_shape_of_a_wholly_bad_body(api):
    response = api("taker_a").post("/samples/batch", {"items": "everything"})
    assert response.status_code == 422
    error = error_of(response)
    assert error["errors"][0]["field"] == "items"


def test_lis_retry_after_the_collection_grew_stale_still_answers_200(api, settings):
    data = sample_input(
        establishment="105100",
        laboratory=1000000002,
        client_code="LIS-Y-LATE",
        collected_at=timezone.now() - timedelta(days=2),
    )
    client = api("key_lab_y")
    first = client.post("/samples", sample_body(data))
    assert first.status_code == 201, first.content
    settings.MUESTRA = {**settings.MUESTRA, "MAX_COLLECTION_AGE_DAYS": 1}
    again = client.post("/samples", sample_body(data))
    assert again.status_code == 200, again.content
    assert again.json()["number"] == first.json()["number"]
    other = sample_body(
        sample_input(
            establishment="105100",
            laboratory=1000000002,
            client_code="LIS-Y-LATE-2",
            collected_at=timezone.now() - timedelta(days=2),
        )
    )
    assert fields_of(client.post("/samples", other)) == {"collected_at": "stale"}
    assert Sample.objects.count() == 1
