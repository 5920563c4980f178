"""Which events become deliveries, what they carry, and what recording costs on the hot path."""

from __future__ import annotations

import math

from django.db import connection
from django.test.utils import CaptureQueriesContext

from muestra.catalog.models import Disease
from muestra.demo.builders import sample_in_state, sample_input
from muestra.integrations.models import Delivery
from muestra.integrations.outbound.services import event_uuid
from muestra.integrations.outbound.tests.conftest import make_subscription
from muestra.samples import services
from muestra.samples.models import SampleEvent, SampleState
from muestra.territories.models import Territory

URL = "http://127.0.0.1:9/events"


def _register(world, n=1, actor="taker_a", **kw):
    items = [sample_input(**kw) for _ in range(n)]
    outcomes = services.sample_register_batch(actor=world.actors[actor], items=items)
    assert all(o.ok for o in outcomes), [o.errors for o in outcomes]
    return [o.sample for o in outcomes]


def test_only_the_subscribed_kinds_become_deliveries(world, django_capture_on_commit_callbacks):
    registered = make_subscription(URL, ["registered"], name="registered")
    results = make_subscription(URL, ["result_delivered", "result_corrected"], name="results")
    with django_capture_on_commit_callbacks(execute=True):
        sample = sample_in_state(SampleState.RESULT, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    assert list(Delivery.objects.filter(subscription=registered).values_list("kind", flat=True)) == ["registered"]
    delivery = Delivery.objects.get(subscription=results)
    assert delivery.kind == "result_delivered" and delivery.sample_id == sample.pk
    assert delivery.payload["type"] == "sample.result_available"
    assert delivery.payload["result"]["code"] == "negative" and delivery.payload["result"]["snomed"]
    event = SampleEvent.objects.get(sample=sample, kind="result_delivered")
    assert delivery.event_uuid == event_uuid(event.pk) and delivery.payload["sequence"] == event.pk
    assert delivery.state == Delivery.State.PENDING and delivery.attempts == 0


def test_territory_filter_matches_the_establishment_path_prefix(world, django_capture_on_commit_callbacks):
    region_13 = Territory.objects.get(path="CL.r13")  # establishment A (comuna 13101) lies inside
    region_5 = Territory.objects.get(path="CL.r05")  # establishment B (comuna 05101)
    comuna = Territory.objects.get(path="CL.r13.p131.c13101")
    assert comuna.health_service_id is not None
    health_service = Territory.objects.get(pk=comuna.health_service_id)
    rm = make_subscription(URL, ["registered"], name="rm", territories=[region_13])
    valpo = make_subscription(URL, ["registered"], name="valpo", territories=[region_5])
    exact = make_subscription(URL, ["registered"], name="comuna", territories=[comuna])
    service = make_subscription(URL, ["registered"], name="service", territories=[health_service])
    # "CL.r1" is a prefix of "CL.r13" as text but not as a path: it must not match.
    region_1 = make_subscription(URL, ["registered"], name="r1", territories=[Territory.objects.get(path="CL.r01")])
    with django_capture_on_commit_callbacks(execute=True):
        (a,) = _register(world, establishment="113100")
        (b,) = _register(world, actor="taker_b", establishment="105100")
    by_sub = {s: set(Delivery.objects.filter(subscription=s).values_list("sample_id", flat=True)) for s in (rm, valpo)}
    assert by_sub == {rm: {a.pk}, valpo: {b.pk}}
    assert set(Delivery.objects.filter(subscription=exact).values_list("sample_id", flat=True)) == {a.pk}
    assert set(Delivery.objects.filter(subscription=service).values_list("sample_id", flat=True)) == {a.pk}
    assert a.pk not in set(Delivery.objects.filter(subscription=region_1).values_list("sample_id", flat=True))


def test_disease_filter(world, django_capture_on_commit_callbacks):
    mpox = make_subscription(URL, ["registered"], diseases=[Disease.objects.get(code="mpox")])
    everything = make_subscription(URL, ["registered"], name="all")
    with django_capture_on_commit_callbacks(execute=True):
        (_covid,) = _register(world)
        (pox,) = _register(world, test="mpox-pcr", sample_type="lesion-swab")
    assert list(Delivery.objects.filter(subscription=mpox).values_list("sample_id", flat=True)) == [pox.pk]
    assert Delivery.objects.filter(subscription=everything).count() == 2


def test_inactive_subscriptions_and_rolled_back_work_send_nothing(world, django_capture_on_commit_callbacks):
    make_subscription(URL, ["registered"], active=False)
    with django_capture_on_commit_callbacks(execute=True):
        _register(world)
    assert not Delivery.objects.exists()


def test_payload_has_codes_not_personal_data_unless_entitled(world, django_capture_on_commit_callbacks):
    plain = make_subscription(URL, ["registered"])
    entitled = make_subscription(URL, ["registered"], name="tracing", include_patient=True)
    with django_capture_on_commit_callbacks(execute=True):
        (sample,) = _register(world)
    payload = Delivery.objects.get(subscription=plain).payload
    assert payload["sample"]["number"] == sample.number and payload["sample"]["disease"] == "covid19"
    assert payload["sample"]["test"]["loinc"] and payload["establishment"]["code"] == "113100"
    assert "patient" not in payload
    patient = Delivery.objects.get(subscription=entitled).payload["patient"]
    assert patient["given_names"] == sample.patient.given_names and patient["document"]["number"]


def test_recording_twice_is_harmless(world, django_capture_on_commit_callbacks):
    from muestra.integrations.outbound.services import deliveries_record

    make_subscription(URL, ["registered"])
    with django_capture_on_commit_callbacks(execute=True):
        (sample,) = _register(world)
    ids = list(SampleEvent.objects.filter(sample=sample).values_list("pk", flat=True))
    deliveries_record(event_ids=ids)
    assert Delivery.objects.count() == 1


def test_a_failure_while_recording_never_reaches_the_caller(world, django_capture_on_commit_callbacks, monkeypatch):
    from muestra.integrations.outbound import receivers

    make_subscription(URL, ["registered"])

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(receivers, "deliveries_record", broken)
    with django_capture_on_commit_callbacks(execute=True):
        (sample,) = _register(world)
    assert sample.pk and not Delivery.objects.exists()


def _recording_queries(world, django_capture_on_commit_callbacks, n):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _register(world, n)
    with CaptureQueriesContext(connection) as ctx:
        for callback in callbacks:
            callback()
    inserts = [
        q
        for q in ctx.captured_queries
        if q["sql"].startswith("INSERT")
        and ('"integrations_delivery"' in q["sql"] or '"integrations_eventsnapshot"' in q["sql"])
    ]
    others = [q for q in ctx.captured_queries if q not in inserts]
    return inserts, others


def test_recording_a_batch_costs_one_read_and_a_bulk_insert(world, django_capture_on_commit_callbacks):
    make_subscription(URL, ["registered"], name="one")
    _recording_queries(world, django_capture_on_commit_callbacks, 1)  # fills the caches (subscriptions, places)
    inserts_1, others_1 = _recording_queries(world, django_capture_on_commit_callbacks, 100)
    # Two more subscriptions: the cache is cleared by their saves and filled again (3 queries: subscriptions and
    # their territories and diseases), then nothing per subscription but the rows of the bulk insert.
    make_subscription(URL, ["registered"], name="two")
    make_subscription(URL, ["registered"], name="three")
    _recording_queries(world, django_capture_on_commit_callbacks, 1)  # warm the cache again
    inserts_3, others_3 = _recording_queries(world, django_capture_on_commit_callbacks, 100)
    assert Delivery.objects.count() == 1 + 100 + 3 + 300
    # The non-insert queries: the events read once, and the savepoint around the insert; the same whatever the
    # number of subscriptions.
    assert len(others_3) == len(others_1) <= 3, [q["sql"][:80] for q in others_3]

    # Two bulk inserts (the 100 payloads, then the narrow delivery rows), each one statement where the database
    # allows (PostgreSQL); SQLite caps the parameters of a statement, so it splits them.
    def statements(rows: int, fields: int) -> int:
        return math.ceil(rows / max(1, connection.ops.bulk_batch_size(list(range(fields)), [None] * rows)))

    assert len(inserts_3) == statements(300, 12) + statements(100, 3)
    assert len(inserts_1) == statements(100, 12) + statements(100, 3)


def test_no_subscription_costs_no_query(world, django_capture_on_commit_callbacks):
    inserts, others = _recording_queries(world, django_capture_on_commit_callbacks, 20)
    _recording_queries(world, django_capture_on_commit_callbacks, 20)
    inserts, others = _recording_queries(world, django_capture_on_commit_callbacks, 20)
    assert inserts == [] and others == []
