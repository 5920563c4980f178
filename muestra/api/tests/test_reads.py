"""GET /samples (filters, cursor pagination, bounded queries), detail, events, results, report; audit of reads."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from muestra.api.tests.support import error_of, sample_body
from muestra.audit.models import AuditEntry
from muestra.demo.builders import patient_input, sample_input
from muestra.samples import services
from muestra.samples.models import SampleState

pytestmark = pytest.mark.django_db


def _register_many(world, count: int, **kwargs) -> list[int]:
    outcomes = services.sample_register_batch(
        actor=world.actors["taker_a"], items=[sample_input(**kwargs) for _ in range(count)]
    )
    return [o.sample.number for o in outcomes if o.sample is not None and o.created]


# --- list ---------------------------------------------------------------------------------------------------------


def test_cursor_pagination_walks_every_page_once(api, world):
    numbers = _register_many(world, 7)
    client = api("taker_a")
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/samples", params).json()
        seen.extend(item["number"] for item in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(numbers)


def test_bad_cursor_is_422(api):
    response = api("taker_a").get("/samples", {"cursor": "!!!"})
    assert response.status_code == 422
    assert error_of(response)["errors"][0] == {
        "field": "cursor",
        "code": "invalid_cursor",
        "message": error_of(response)["errors"][0]["message"],
    }


@pytest.mark.parametrize("limit", [0, 1001])
def test_limit_bounds(api, limit):
    response = api("taker_a").get("/samples", {"limit": limit})
    assert response.status_code == 422
    assert error_of(response)["errors"][0]["field"] == "limit"


def test_filters(api, world, make_sample):
    received = make_sample("received")
    registered = make_sample("registered")
    taker_b = world.actors["taker_b"]
    at_b, _ = services.sample_register(actor=taker_b, data=sample_input(establishment="105100"))
    patient = patient_input()
    mine, _ = services.sample_register(actor=world.actors["taker_a"], data=sample_input(patient=patient))
    client = api("admin")

    def numbers(**params):
        response = client.get("/samples", params)
        assert response.status_code == 200, response.content
        return {item["number"] for item in response.json()["items"]}

    assert numbers(state="received") == {received.number}
    assert numbers(establishment="105100") == {at_b.number}
    assert numbers(laboratory=1000000001) >= {received.number, registered.number, at_b.number}
    assert numbers(laboratory=1000000002) == set()
    assert numbers(disease="covid19") >= {received.number, registered.number}
    assert numbers(disease="mpox") == set()
    assert numbers(test="covid19-pcr") >= {received.number}
    # The document as a person types it (dots, lower-case) finds the stored form.
    body, digit = patient.document_number.split("-")
    typed = f"{int(body):,}".replace(",", ".") + "-" + digit.lower()
    assert numbers(patient_document=typed) == {mine.number}
    now = timezone.now()
    assert numbers(collected_from=(now - timedelta(hours=3)).isoformat(), collected_to=now.isoformat()) == {
        received.number,
        registered.number,
        at_b.number,
        mine.number,
    }
    assert numbers(collected_from=(now - timedelta(hours=1)).isoformat()) == set()
    assert numbers(updated_since=(now + timedelta(minutes=1)).isoformat()) == set()
    assert numbers(collected_to="2000-01-01") == set()  # a date alone is read as midnight


def test_list_is_scoped(api, world, make_sample):
    at_a = make_sample("registered")
    at_b, _ = services.sample_register(actor=world.actors["taker_b"], data=sample_input(establishment="105100"))

    def visible(persona):
        return {item["number"] for item in api(persona).get("/samples").json()["items"]}

    assert visible("taker_a") == {at_a.number}
    assert visible("manager_a") == {at_a.number}
    assert visible("taker_b") == {at_b.number}
    assert visible("lab_x") == {at_a.number, at_b.number}
    assert visible("key_lab_x") == {at_a.number, at_b.number}
    assert visible("lab_y") == set()
    assert visible("viewer_rm") == {at_a.number}  # region 13 only
    assert visible("admin") == {at_a.number, at_b.number}
    assert visible("citizen") == set()


@pytest.mark.parametrize("count", [5, 50])
def test_list_query_count_does_not_grow_with_the_page(api, world, django_assert_max_num_queries, count):
    _register_many(world, count)
    client = api("taker_a")
    client.get("/samples", {"limit": 1})  # warm the session and caches outside the measurement
    with django_assert_max_num_queries(11):
        response = client.get("/samples", {"limit": 1000})
    assert len(response.json()["items"]) == count


def test_list_with_results_and_pools_stays_bounded(api, world, make_sample, django_assert_max_num_queries):
    for _ in range(3):
        make_sample("result")
    pool = sample_input(patient=None)
    pool.patient = None
    pool.pool_members = [patient_input(), patient_input()]
    services.sample_register(actor=world.actors["taker_a"], data=pool)
    client = api("taker_a")
    client.get("/samples", {"limit": 1})
    with django_assert_max_num_queries(11):
        items = client.get("/samples").json()["items"]
    assert len(items) == 6
    assert sum(1 for i in items if i["result"]) == 3


# --- audit of reads -------------------------------------------------------------------------------------------


def test_list_audits_every_returned_sample_in_one_bulk_write(api, world):
    numbers = _register_many(world, 4)
    before = AuditEntry.objects.count()
    api("taker_a").get("/samples")
    entries = list(AuditEntry.objects.order_by("id")[before:])
    assert [e.action for e in entries] == ["sample.list"] * 4
    assert sorted(int(e.object_id) for e in entries) == sorted(numbers)
    assert len({e.at for e in entries}) == 1  # one audit_record_many call writes one timestamp
    assert {e.actor for e in entries} == {f"user:{world.users['taker_a'].pk}"}


def test_empty_list_writes_no_audit(api):
    before = AuditEntry.objects.count()
    api("citizen").get("/samples")
    assert AuditEntry.objects.count() == before


def test_reads_are_audited_without_personal_data(api, world, make_sample):
    sample = make_sample("result")
    patient = sample.patient
    client = api("key_lab_x")
    before = AuditEntry.objects.count()
    for path in ["", "/events", "/results", "/report"]:
        assert client.get(f"/samples/{sample.number}{path}").status_code == 200
    entries = list(AuditEntry.objects.order_by("id")[before:])
    assert [e.action for e in entries] == [
        "sample.read",
        "sample.events.read",
        "sample.results.read",
        "report.download",
    ]
    assert {e.object_id for e in entries} == {str(sample.number)}
    assert {e.actor for e in entries} == {world.actors["key_lab_x"].label}
    text = repr([(e.data, e.object_id, e.action) for e in entries])
    for personal in [patient.document_number, patient.given_names, patient.paternal_surname, patient.phone]:
        assert personal not in text


def test_out_of_scope_read_writes_no_audit(api, make_sample):
    sample = make_sample("result")
    before = AuditEntry.objects.count()
    assert api("taker_b").get(f"/samples/{sample.number}").status_code == 404
    assert AuditEntry.objects.count() == before


# --- detail, events, results, report -----------------------------------------------------------------------------


def test_detail_with_result(api, make_sample):
    sample = make_sample("result")
    out = api("taker_a").get(f"/samples/{sample.number}").json()
    assert out["state"] == SampleState.RESULT
    assert out["result"]["value"] == "negative"
    assert out["result"]["interpretation"] == "negative"
    assert out["result"]["corrected"] is False
    assert out["result"]["version"] == 1
    assert out["result"]["report_url"] == f"/api/v1/samples/{sample.number}/report"
    assert out["received_at"] is not None
    assert out["shipment"] is not None


def test_events_are_the_chain_of_custody(api, make_sample):
    sample = make_sample("result")
    events = api("viewer_rm").get(f"/samples/{sample.number}/events").json()
    assert [e["kind"] for e in events] == ["registered", "dispatched", "received", "result_delivered"]
    assert events[2]["laboratory"] == 1000000001
    assert events[0]["establishment"] == "113100"
    assert all(e["actor"] for e in events)


def test_results_history_and_report_round_trip(api, make_sample):
    from muestra.demo.builders import REPORT

    sample = make_sample("result")
    results = api("taker_a").get(f"/samples/{sample.number}/results").json()
    assert len(results) == 1
    assert results[0]["version"] == 1
    assert results[0]["report_sha256"] == REPORT.sha256
    response = api("taker_a").get(f"/samples/{sample.number}/report")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content) == REPORT.content
    assert f"muestra-{sample.number}-v1.pdf" in response["Content-Disposition"]


def test_report_of_a_sample_without_result_is_404(api, make_sample):
    sample = make_sample("received")
    response = api("lab_x").get(f"/samples/{sample.number}/report")
    assert response.status_code == 404
    assert error_of(response)["errors"][0]["field"] == "report"


@pytest.mark.parametrize("path", ["", "/events", "/results", "/report"])
@pytest.mark.parametrize("persona", ["taker_b", "lab_y", "key_lab_y", "citizen"])
def test_reads_out_of_scope_are_404(api, make_sample, path, persona):
    sample = make_sample("result")
    response = api(persona).get(f"/samples/{sample.number}{path}")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_viewer_reads_its_region(api, make_sample, world):
    sample = make_sample("result")
    client = api("viewer_rm")
    assert client.get(f"/samples/{sample.number}").status_code == 200
    assert client.get(f"/samples/{sample.number}/report").status_code == 200
    at_b, _ = services.sample_register(actor=world.actors["taker_b"], data=sample_input(establishment="105100"))
    assert client.get(f"/samples/{at_b.number}").status_code == 404


def test_accept_language_names(api, make_sample):
    sample = make_sample()
    es = api("taker_a").get(f"/samples/{sample.number}").json()
    en = api("taker_a").get(f"/samples/{sample.number}", headers={"Accept-Language": "en"}).json()
    assert es["sample_type"]["code"] == en["sample_type"]["code"]
    assert es["sample_type"]["name"] != en["sample_type"]["name"]


def test_created_sample_round_trips_through_detail(api):
    created = api("taker_a").post("/samples", sample_body()).json()
    detail = api("taker_a").get(f"/samples/{created['number']}").json()
    assert detail == created
