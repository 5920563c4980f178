# mypy: disable-error-code="union-attr"
"""Races on PostgreSQL: many threads doing the same thing at the same moment (a LIS retrying while its first
call is still running, two scanners on one box). Row locks and unique constraints must make the outcome exactly
the same as if the calls had come one after the other.

Each test commits for real (transaction=True), so threads see each other's writes; the tables are flushed
afterwards and the `world` fixture reloads the reference data when it finds them empty.
"""

from __future__ import annotations

import pytest

from muestra.audit.models import AuditEntry
from muestra.audit.services import audit_verify
from muestra.core.errors import DomainError
from muestra.demo.builders import REPORT, fresh_run, patient_input, sample_in_state, sample_input
from muestra.patients.models import Patient
from muestra.samples import services
from muestra.samples.models import EventKind, Result, Sample, SampleEvent, SampleState
from muestra.samples.tests.support import requires_postgresql, run_in_threads

pytestmark = [requires_postgresql, pytest.mark.django_db(transaction=True)]

THREADS = 8
S = SampleState


def test_receiving_the_same_sample_from_8_threads_records_one_receipt(world):
    sample = sample_in_state(S.DISPATCHED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    results, errors = run_in_threads(
        THREADS,
        lambda i: services.sample_receive(actor=world.actors["key_lab_x" if i % 2 else "lab_x"], sample_id=sample.pk)[
            1
        ],
    )
    assert not errors, errors
    assert sorted(results) == [False] * (THREADS - 1) + [True]
    assert SampleEvent.objects.filter(sample=sample, kind=EventKind.RECEIVED).count() == 1
    assert Sample.objects.get(pk=sample.pk).state == S.RECEIVED
    assert audit_verify()[1] is None


def test_delivering_the_same_result_concurrently_stores_one_result(world):
    sample = sample_in_state(S.DISPATCHED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    results, errors = run_in_threads(
        THREADS,
        lambda i: services.result_deliver(
            actor=world.actors["key_lab_x"], sample_id=sample.pk, value="negative", report=REPORT
        )[1],
    )
    assert not errors, errors
    assert results.count(True) == 1
    assert Result.objects.filter(sample=sample).count() == 1
    kinds = list(SampleEvent.objects.filter(sample=sample).values_list("kind", flat=True))
    assert kinds.count(EventKind.RESULT_DELIVERED) == 1 and kinds.count(EventKind.RECEIVED) == 1
    assert audit_verify()[1] is None


def test_different_results_at_once_keep_exactly_one(world):
    sample = sample_in_state(S.RECEIVED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    values = ["negative", "positive"] * (THREADS // 2)
    results, errors = run_in_threads(
        THREADS,
        lambda i: services.result_deliver(
            actor=world.actors["lab_x"], sample_id=sample.pk, value=values[i], report=REPORT
        )[1],
    )
    stored = Result.objects.get(sample=sample).value.code
    assert results.count(True) == 1
    assert len(errors) == values.count("negative" if stored == "positive" else "positive")
    assert all(isinstance(e, services.Conflict) for e in errors)


def test_registering_the_same_new_patient_concurrently_creates_one_patient(world):
    run = fresh_run()
    results, errors = run_in_threads(
        THREADS,
        lambda i: (
            services.sample_register(actor=world.actors["taker_a"], data=sample_input(patient=patient_input(run=run)))[
                0
            ].pk
        ),
    )
    assert not errors, errors
    assert len(set(results)) == THREADS  # eight samples...
    assert Patient.objects.filter(document_number=run).count() == 1  # ...of one person
    assert Sample.objects.filter(pk__in=results).values("patient_id").distinct().count() == 1


def test_the_same_person_in_concurrent_batches_is_one_patient(world):
    run = fresh_run()
    results, errors = run_in_threads(
        THREADS,
        lambda i: services.sample_register_batch(
            actor=world.actors["taker_a"], items=[sample_input(patient=patient_input(run=run)), sample_input()]
        ),
    )
    assert not errors, errors
    assert all(o.ok for outcomes in results for o in outcomes)
    assert Patient.objects.filter(document_number=run).count() == 1


def test_a_lis_retrying_a_creation_while_the_first_call_runs_gets_the_same_sample(world):
    data = sample_input(client_code="RACE-1")
    results, errors = run_in_threads(
        THREADS, lambda i: services.sample_register(actor=world.actors["key_lab_x"], data=data)
    )
    assert not errors, errors
    assert len({sample.pk for sample, _created in results}) == 1
    assert [created for _s, created in results].count(True) == 1
    assert Sample.objects.filter(client_code="RACE-1").count() == 1


def test_concurrent_writers_keep_the_audit_chain_intact(world):
    before = AuditEntry.objects.count()

    def work(i: int) -> int:
        writes = 0
        for _ in range(3):
            sample, _ = services.sample_register(
                actor=world.actors["taker_a" if i % 2 else "key_lab_x"], data=sample_input()
            )
            writes += 1
            try:
                services.result_deliver(
                    actor=world.actors["lab_x"], sample_id=sample.pk, value="negative", report=REPORT
                )
                writes += 2  # implicit receipt + result
            except DomainError:
                pass
        services.sample_register_batch(actor=world.actors["taker_a"], items=[sample_input() for _ in range(5)])
        return writes + 5

    results, errors = run_in_threads(THREADS, work)
    assert not errors, errors
    assert AuditEntry.objects.count() - before == sum(results)
    checked, broken = audit_verify()
    assert broken is None and checked == AuditEntry.objects.count()
    from django.core.management import call_command

    call_command("audit_verify")


def test_scanning_a_box_while_its_tubes_are_scanned_one_by_one(world):
    """Two lab benches: one receives the whole box, others scan single tubes of it at the same moment."""
    samples = [services.sample_register(actor=world.actors["taker_a"], data=sample_input())[0] for _ in range(6)]
    shipment = services.shipment_create(
        actor=world.actors["taker_a"],
        establishment_code="113100",
        laboratory_id=1000000001,
        sample_ids=[s.pk for s in samples],
    )
    services.shipment_dispatch(actor=world.actors["taker_a"], shipment_id=shipment.pk)
    ids = [s.pk for s in samples]

    def work(i: int):
        if i == 0:
            return services.shipment_receive(
                actor=world.actors["lab_x"], shipment_id=shipment.pk, received_sample_ids=ids
            )
        # The others scan the tubes in reverse order, so their locks cross the box scan's.
        return services.samples_receive(actor=world.actors["key_lab_x"], sample_ids=ids[::-1])

    results, errors = run_in_threads(4, work)
    assert not errors, errors
    assert not [o.error for outcomes in results[1:] for o in outcomes if o.error is not None]
    for s in samples:
        assert SampleEvent.objects.filter(sample=s, kind=EventKind.RECEIVED).count() == 1
        assert Sample.objects.get(pk=s.pk).state == S.RECEIVED
    assert audit_verify()[1] is None


def test_concurrent_corrections_allow_exactly_one(world):
    sample = sample_in_state(S.RESULT, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    values = ["positive", "indeterminate"] * (THREADS // 2)
    results, errors = run_in_threads(
        THREADS,
        lambda i: services.result_correct(
            actor=world.actors["lab_x"], sample_id=sample.pk, value=values[i], reason=f"fix {i}", report=REPORT
        ),
    )
    assert len([r for r in results if r is not None]) == 1
    assert len(errors) == THREADS - 1
    # The first correction wins; the rest need an authorisation (or are identical to the corrected value).
    assert all(getattr(e, "code", "") in {"authorisation_required", "validation_error"} for e in errors), errors
    assert Result.objects.filter(sample=sample).count() == 2


def test_one_tube_added_to_two_manifests_at_once_lands_in_one(world):
    sample, _ = services.sample_register(actor=world.actors["taker_a"], data=sample_input())
    shipments = [
        services.shipment_create(actor=world.actors["taker_a"], establishment_code="113100", laboratory_id=1000000001)
        for _ in range(THREADS)
    ]
    results, errors = run_in_threads(
        THREADS,
        lambda i: (
            services.shipment_add_samples(
                actor=world.actors["taker_a"], shipment_id=shipments[i].pk, sample_ids=[sample.pk]
            )[0].ok
        ),
    )
    assert not errors, errors
    assert results.count(True) == 1
    from muestra.samples.models import ShipmentItem

    assert ShipmentItem.objects.filter(sample=sample).count() == 1
