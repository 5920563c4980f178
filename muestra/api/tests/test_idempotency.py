"""Idempotency-Key on writes: replay, mismatch, per-principal keys, errors not stored, multipart fingerprints, and
concurrent duplicates (PostgreSQL only: the in-memory SQLite test database cannot be shared by threads)."""

from __future__ import annotations

import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client

from muestra.api.tests.support import API, error_of, sample_body, to_json
from muestra.core.models import IdempotencyRecord
from muestra.demo.builders import REPORT
from muestra.samples.models import Result, Sample

pytestmark = pytest.mark.django_db


def test_replay_returns_the_stored_answer_without_writing_again(api):
    body = sample_body()
    client = api("key_est_a")
    first = client.post("/samples", body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201, first.content
    again = client.post("/samples", body, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert again["Content-Type"] == first["Content-Type"]
    assert Sample.objects.count() == 1
    record = IdempotencyRecord.objects.get()
    assert record.principal.startswith("apikey:")
    assert (record.method, record.path, record.status_code) == ("POST", "/api/v1/samples", 201)


def test_same_json_in_another_order_or_spacing_is_the_same_request(api):
    body = sample_body()
    client = api("taker_a")
    first = client.post("/samples", body, headers={"Idempotency-Key": "k-order"})
    reordered = dict(reversed(list(body.items())))
    again = client.client.post(
        f"{API}/samples",
        to_json(reordered).replace(",", ", "),
        content_type="application/json",
        headers={"Idempotency-Key": "k-order"},
    )
    assert again.status_code == first.status_code == 201
    assert again.content == first.content


def test_same_key_with_another_body_is_refused(api):
    client = api("taker_a")
    assert client.post("/samples", sample_body(), headers={"Idempotency-Key": "k-2"}).status_code == 201
    response = client.post("/samples", sample_body(), headers={"Idempotency-Key": "k-2"})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "idempotency_key_reused"
    assert error["errors"][0]["field"] == "Idempotency-Key"
    assert Sample.objects.count() == 1


def test_same_key_on_another_endpoint_is_refused(api, make_sample):
    sample = make_sample()
    client = api("taker_a")
    assert client.post("/samples", sample_body(), headers={"Idempotency-Key": "k-3"}).status_code == 201
    response = client.post(f"/samples/{sample.number}/cancel", {"reason": "x"}, headers={"Idempotency-Key": "k-3"})
    assert response.status_code == 422
    assert error_of(response)["code"] == "idempotency_key_reused"


def test_keys_belong_to_their_principal(api):
    body_a = sample_body()
    assert api("taker_a").post("/samples", body_a, headers={"Idempotency-Key": "shared"}).status_code == 201
    body_b = sample_body(establishment="105100")
    assert api("taker_b").post("/samples", body_b, headers={"Idempotency-Key": "shared"}).status_code == 201
    assert Sample.objects.count() == 2


def test_errors_are_not_stored_so_a_fixed_retry_runs(api):
    client = api("taker_a")
    bad = sample_body(test="no-such-test")
    assert client.post("/samples", bad, headers={"Idempotency-Key": "k-4"}).status_code == 422
    assert not IdempotencyRecord.objects.exists()
    response = client.post("/samples", sample_body(), headers={"Idempotency-Key": "k-4"})
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response


def test_invalid_key(api):
    response = api("taker_a").post("/samples", sample_body(), headers={"Idempotency-Key": "x" * 129})
    assert response.status_code == 422
    assert error_of(response)["errors"][0]["field"] == "Idempotency-Key"
    assert not Sample.objects.exists()


def test_multipart_replay_ignores_the_boundary(api, make_sample):
    sample = make_sample("received")
    client = api("lab_x")

    def deliver():
        upload = SimpleUploadedFile("r.pdf", REPORT.content, content_type="application/pdf")
        return client.post_multipart(
            f"/samples/{sample.number}/result",
            {"value": "negative", "report": upload},
            headers={"Idempotency-Key": "r1"},
        )

    first = deliver()
    assert first.status_code == 201, first.content
    again = deliver()
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert Result.objects.filter(sample=sample).count() == 1
    other = client.post_multipart(
        f"/samples/{sample.number}/result",
        {"value": "negative", "report": SimpleUploadedFile("r.pdf", REPORT.content + b"x")},
        headers={"Idempotency-Key": "r1"},
    )
    assert error_of(other)["code"] == "idempotency_key_reused"


def test_delete_is_replayed_too(api, world, make_sample):
    from muestra.samples import services

    sample = make_sample()
    shipment = services.shipment_create(
        actor=world.actors["taker_a"], establishment_code="113100", laboratory_id=1000000001, sample_ids=[sample.pk]
    )
    client = api("taker_a")
    path = f"/shipments/{shipment.number}/samples/{sample.number}"
    assert client.delete(path, headers={"Idempotency-Key": "d1"}).status_code == 204
    again = client.delete(path, headers={"Idempotency-Key": "d1"})
    assert again.status_code == 204
    assert again["Idempotent-Replayed"] == "true"


def test_a_key_taken_by_another_request_is_replayed_not_re_executed(api, world):
    """The insert-first path: the row is there (as if a concurrent request had just committed it), so the insert
    fails and the stored answer is served; the endpoint does not run."""
    from muestra.api.idempotency import request_fingerprint

    body = sample_body()
    client = api("taker_a")
    request = client.client.post(f"{API}/samples", to_json(body), content_type="application/json").wsgi_request
    IdempotencyRecord.objects.create(
        principal=f"user:{world.users['taker_a'].pk}",
        key="race",
        method="POST",
        path="/api/v1/samples",
        fingerprint=request_fingerprint(request),
        status_code=201,
        response_body=b'{"stored": true}',
        content_type="application/json",
    )
    before = Sample.objects.count()
    response = client.post("/samples", body, headers={"Idempotency-Key": "race"})
    assert response.status_code == 201
    assert response.json() == {"stored": True}
    assert Sample.objects.count() == before


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_do_not_both_execute(world):
    if connection.vendor != "postgresql":
        pytest.skip("needs a database that threads can share (PostgreSQL)")
    body = to_json(sample_body())
    key = world.keys["est_a"]
    barrier = threading.Barrier(4)
    responses = []
    lock = threading.Lock()

    def send() -> None:
        from django.db import connections

        try:
            barrier.wait()
            response = Client().post(
                f"{API}/samples",
                body,
                content_type="application/json",
                headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "concurrent"},
            )
            with lock:
                responses.append(response)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Sample.objects.count() == 1
    assert sorted(r.status_code for r in responses) == [201, 201, 201, 201]
    assert len({r.content for r in responses}) == 1
    assert sum(1 for r in responses if r.has_header("Idempotent-Replayed")) == 3


def test_no_content_answers_carry_no_body():
    from django.http import HttpRequest, HttpResponse
    from ninja.responses import Status

    from muestra.api.idempotency import to_response

    response = to_response(HttpRequest(), Status(204, None))
    assert isinstance(response, HttpResponse)
    assert (response.status_code, response.content) == (204, b"")
