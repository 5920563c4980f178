"""Valid sample inputs and samples driven to any state through the real services, for tests, the demo seeder
and the benchmarks. Nothing here writes to the database except through the services."""

from __future__ import annotations

import itertools
import random
from datetime import date, datetime, timedelta

from django.utils import timezone

from muestra.accounts.scoping import Actor
from muestra.patients.documents import run_check_digit
from muestra.samples import services
from muestra.samples.inputs import PatientInput, SampleInput
from muestra.samples.models import Sample, SampleState

_counter = itertools.count(1)
_rng = random.Random(20261121)


def fresh_run() -> str:
    """A valid RUN nobody else in this process has used."""
    body = 30_000_000 + _rng.randrange(0, 40_000_000) // 100 * 100 + next(_counter) % 100
    return f"{body}-{run_check_digit(body)}"


def patient_input(
    *,
    run: str | None = None,
    given_names: str = "Paciente",
    surname: str = "Demo",
    birth_date: date = date(1985, 5, 17),
    residence: str = "13101",
) -> PatientInput:
    return PatientInput(
        document_type="run",
        document_number=run or fresh_run(),
        given_names=given_names,
        paternal_surname=surname,
        maternal_surname="Prueba",
        birth_date=birth_date,
        sex="F",
        residence=residence,
        address="Av. Siempre Viva 742",
        phone="+56912345678",
        insurance="fonasa",
        email="paciente@example.invalid",
    )


def sample_input(
    *,
    establishment: str = "113100",
    laboratory: int | None = 1000000001,
    test: str = "covid19-pcr",
    sample_type: str = "nasopharyngeal-swab",
    collected_at: datetime | None = None,
    patient: PatientInput | None = None,
    client_code: str = "",
    **extra: object,
) -> SampleInput:
    return SampleInput(
        establishment=establishment,
        laboratory=laboratory,
        test=test,
        sample_type=sample_type,
        collected_at=collected_at or timezone.now() - timedelta(hours=2),
        patient=patient or patient_input(),
        strategy="symptomatic",
        client_code=client_code,
        **extra,  # type: ignore[arg-type]
    )


REPORT = services.ReportFile(b"%PDF-1.4\n% Muestra demo signed report\n%%EOF\n")


def sample_in_state(
    state: str, *, taker: Actor, lab: Actor, data: SampleInput | None = None, result: str = "negative"
) -> Sample:
    """Registers a sample as `taker` and drives it to `state` as `lab`, through the services."""
    sample, _ = services.sample_register(actor=taker, data=data or sample_input())
    if state == SampleState.REGISTERED:
        return sample
    if state == SampleState.CANCELLED:
        return services.sample_cancel(actor=taker, sample_id=sample.pk, reason="Registrada por error")
    assert sample.laboratory is not None
    shipment = services.shipment_create(
        actor=taker,
        establishment_code=sample.establishment.code,
        laboratory_id=sample.laboratory.platform_id,
        sample_ids=[sample.pk],
    )
    services.shipment_dispatch(actor=taker, shipment_id=shipment.pk)
    if state == SampleState.DISPATCHED:
        return Sample.objects.get(pk=sample.pk)
    if state == SampleState.REJECTED:
        return services.sample_reject(actor=lab, sample_id=sample.pk, reason="poorly-collected")
    services.sample_receive(actor=lab, sample_id=sample.pk)
    if state == SampleState.RECEIVED:
        return Sample.objects.get(pk=sample.pk)
    if state == SampleState.RETURNED:
        return services.sample_return(actor=lab, sample_id=sample.pk, reason="Sin capacidad")
    if state == SampleState.RESULT:
        services.result_deliver(actor=lab, sample_id=sample.pk, value=result, report=REPORT)
        return Sample.objects.get(pk=sample.pk)
    raise ValueError(f"No recipe for state {state}")
