# mypy: disable-error-code="union-attr"
"""Registration rules: collection time, coded fields, required fields, test/sample type/lab consistency.

Every refusal names its field and stores nothing (no sample, patient, event or audit entry).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from unittest import mock

import pytest
from django.utils import timezone

from muestra.core.errors import PermissionDenied, ValidationFailed
from muestra.demo.builders import patient_input, sample_input
from muestra.facilities.models import Laboratory
from muestra.samples import lookups, services
from muestra.samples.models import EventKind, SampleState
from muestra.samples.tests.support import assert_unchanged, db_state, event_kinds


def refused(actor, data, *fields_codes):
    """Registers `data`, expects ValidationFailed naming exactly (field, code) pairs given, and nothing stored."""
    before = db_state()
    with pytest.raises(ValidationFailed) as info:
        services.sample_register(actor=actor, data=data)
    assert_unchanged(before)
    got = {(e.field, e.code) for e in info.value.errors}
    for pair in fields_codes:
        assert pair in got, f"expected {pair} among {got}"
    assert info.value.status == 422
    return info.value


# --- collection time --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "code"),
    [
        (timedelta(hours=1), "future"),
        (timedelta(days=1), "future"),
        (-timedelta(days=7, minutes=1), "stale"),
        (-timedelta(days=30), "stale"),
    ],
)
def test_collection_time_out_of_range_is_refused(world, offset, code):
    data = sample_input(collected_at=timezone.now() + offset)
    error = refused(world.actors["taker_a"], data, ("collected_at", code))
    assert [e.field for e in error.errors] == ["collected_at"]


@pytest.mark.parametrize("offset", [timedelta(minutes=5), -timedelta(days=6, hours=23), timedelta(0)])
def test_collection_time_within_range_is_accepted(world, offset):
    """A few minutes of device clock skew are tolerated; six days and 23 hours is not yet stale."""
    sample, created = services.sample_register(
        actor=world.actors["taker_a"], data=sample_input(collected_at=timezone.now() + offset)
    )
    assert created and sample.state == SampleState.REGISTERED


def test_missing_collection_time_is_refused(world):
    data = sample_input()
    data.collected_at = None  # sample_input() would fill in a default
    refused(world.actors["taker_a"], data, ("collected_at", "required"))


# --- unknown codes -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: setattr(d, "test", "covid19-nope"), "test"),
        (lambda d: setattr(d, "sample_type", "toenail"), "sample_type"),
        (lambda d: setattr(d, "strategy", "random-walk"), "strategy"),
        (lambda d: setattr(d, "substrategy", "random-walk"), "substrategy"),
        (lambda d: setattr(d, "laboratory", 1999999999), "laboratory"),
        (lambda d: setattr(d, "laboratory", "lab-x"), "laboratory"),
        (lambda d: setattr(d, "establishment", "999999"), "establishment"),
        (lambda d: setattr(d.patient, "document_type", "library-card"), "patient.document_type"),
        (lambda d: setattr(d.patient, "insurance", "acme-health"), "patient.insurance"),
        (lambda d: setattr(d.patient, "residence", "99999"), "patient.residence"),
        (lambda d: setattr(d.patient, "nationality", "9999"), "patient.nationality"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_unknown_code_names_its_field(world, mutate, field):
    data = sample_input()
    mutate(data)
    error = refused(
        world.actors["taker_a"] if field != "establishment" else world.actors["admin"], data, (field, "unknown_code")
    )
    assert error.errors[0].message  # a human message, never empty


def test_codes_are_matched_case_insensitively_and_by_national_platform_name(world):
    data = sample_input(test="COVID19-PCR", sample_type="Tórulas Nasofaríngeas")
    data.strategy = "BAC Brotes"
    data.patient.insurance = "FONASA"
    data.patient.document_type = "RUN"
    sample, _ = services.sample_register(actor=world.actors["taker_a"], data=data)
    assert (sample.test.code, sample.sample_type.code, sample.strategy.code) == (
        "covid19-pcr",
        "nasopharyngeal-swab",
        "bac-outbreaks",
    )
    assert sample.active_case_finding  # the strategy implies active case finding
    assert sample.patient.insurance.code == "fonasa"


def test_every_problem_of_an_item_is_reported_at_once(world):
    data = sample_input(test="nope", sample_type="nope")
    data.patient.given_names = ""
    data.patient.phone = ""
    data.collected_at = timezone.now() + timedelta(days=2)
    error = refused(
        world.actors["taker_a"],
        data,
        ("test", "unknown_code"),
        ("sample_type", "unknown_code"),
        ("patient.given_names", "required"),
        ("patient.phone", "required"),
        ("collected_at", "future"),
    )
    assert len(error.errors) >= 5


# --- required fields ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("blank", ["", " . ", None])
@pytest.mark.parametrize(
    ("attr", "field"),
    [
        ("given_names", "patient.given_names"),
        ("paternal_surname", "patient.paternal_surname"),
        ("sex", "patient.sex"),
        ("residence", "patient.residence"),
        ("address", "patient.address"),
        ("phone", "patient.phone"),
        ("insurance", "patient.insurance"),
    ],
)
def test_each_required_patient_field_has_its_own_error(world, attr, field, blank):
    data = sample_input()
    setattr(data.patient, attr, blank)
    error = refused(world.actors["taker_a"], data, (field, "required"))
    assert [e.field for e in error.errors] == [field]


def test_missing_birth_date_is_refused(world):
    data = sample_input()
    data.patient.birth_date = None
    refused(world.actors["taker_a"], data, ("patient.birth_date", "required"))


@pytest.mark.parametrize(
    ("birth_date", "code"), [(date.today() + timedelta(days=2), "future"), (date(1850, 1, 1), "too_old")]
)
def test_impossible_birth_date_is_refused(world, birth_date, code):
    data = sample_input(patient=patient_input(birth_date=birth_date))
    refused(world.actors["taker_a"], data, ("patient.birth_date", code))


def test_birth_date_check_survives_the_29th_of_february(world):
    """`today.replace(year=today.year - 130)` raised ValueError on 29 February (1898/1894 are not leap years)."""
    data = sample_input()
    with mock.patch("muestra.samples.inputs.timezone.localdate", return_value=date(2028, 2, 29)):
        data.patient.birth_date = date(1890, 3, 1)
        refused(world.actors["taker_a"], data, ("patient.birth_date", "too_old"))
        data.patient.birth_date = date(1985, 5, 17)
        data.collected_at = timezone.now() - timedelta(hours=1)
        _sample, created = services.sample_register(actor=world.actors["taker_a"], data=data)
    assert created


def test_insurance_is_not_required_for_a_passport(world):
    data = sample_input()
    data.patient.document_type = "passport"
    data.patient.document_number = "AB123456"
    data.patient.document_issuer = "604"
    data.patient.insurance = ""
    sample, created = services.sample_register(actor=world.actors["taker_a"], data=data)
    assert created and sample.patient.insurance is None


def test_patient_is_required(world):
    data = sample_input()
    data.patient = None
    refused(world.actors["taker_a"], data, ("patient", "required"))


def test_laboratory_is_required_for_a_pcr(world):
    refused(world.actors["taker_a"], sample_input(laboratory=None), ("laboratory", "required"))


def test_result_is_required_for_an_antigen_test(world):
    data = sample_input(test="covid19-antigen", laboratory=None)
    refused(world.actors["taker_a"], data, ("result", "required"))


def test_antigen_is_registered_with_its_result(world):
    data = sample_input(test="covid19-antigen", laboratory=None, result="positive")
    sample, created = services.sample_register(actor=world.actors["taker_a"], data=data)
    assert created
    assert sample.state == SampleState.RESULT
    assert sample.result_value.code == "positive"
    assert sample.laboratory is None
    assert event_kinds(sample) == [EventKind.REGISTERED, EventKind.RESULT_DELIVERED]
    assert sample.results.get().version == 1


@pytest.mark.parametrize(
    ("result", "code"),
    [("positivo-ish", "unknown_code"), ("indeterminate", "not_allowed"), ("retest-needed", "not_allowed")],
)
def test_antigen_result_must_be_valid_for_the_test(world, result, code):
    data = sample_input(test="covid19-antigen", laboratory=None, result=result)
    refused(world.actors["taker_a"], data, ("result", code))


def test_a_pcr_does_not_carry_its_result_at_registration(world):
    refused(world.actors["taker_a"], sample_input(result="negative"), ("result", "not_allowed"))


@pytest.mark.parametrize(
    ("offset", "code"), [(timedelta(hours=2), "future"), (-timedelta(hours=1), "before_collection")]
)
def test_antigen_result_time_must_be_between_collection_and_now(world, offset, code):
    collected = timezone.now() - timedelta(hours=3)
    data = sample_input(
        test="covid19-antigen",
        laboratory=None,
        result="negative",
        collected_at=collected,
        result_at=(timezone.now() if offset > timedelta(0) else collected) + offset,
    )
    refused(world.actors["taker_a"], data, ("result_at", code))


def test_medical_order_needs_the_physician(world):
    data = sample_input(without_medical_order=False)
    refused(world.actors["taker_a"], data, ("ordering_physician_run", "required"))
    data = sample_input(without_medical_order=False, ordering_physician_run="12.345.678-0")
    refused(world.actors["taker_a"], data, ("ordering_physician_run", "invalid"))
    data = sample_input(without_medical_order=False, ordering_physician_run="12.345.678-5")
    sample, _ = services.sample_register(actor=world.actors["taker_a"], data=data)
    assert sample.ordering_physician_run == "12345678-5"


def test_responsible_run_is_checked_and_normalised(world):
    refused(world.actors["taker_a"], sample_input(responsible_run="11111111-2"), ("responsible_run", "invalid"))
    sample, _ = services.sample_register(
        actor=world.actors["taker_a"], data=sample_input(responsible_run="11.111.111-1")
    )
    assert sample.responsible_run == "11111111-1"


def test_client_code_longer_than_60_is_refused(world):
    refused(world.actors["key_lab_x"], sample_input(client_code="C" * 61), ("client_code", "too_long"))


@pytest.mark.parametrize(
    ("phone", "stored"),
    [
        ("9 1234 5678", "+56912345678"),
        ("+56 9 1234 5678", "+56912345678"),
        ("0912345678", "+56912345678"),
        ("+34 612 345 678", "+34612345678"),
    ],
)
def test_phone_is_normalised(world, phone, stored):
    sample, _ = services.sample_register(
        actor=world.actors["taker_a"], data=sample_input(patient=replace(patient_input(), phone=phone))
    )
    assert sample.patient.phone == stored


@pytest.mark.parametrize("phone", ["12345", "call me", "0012"])
def test_invalid_phone_is_refused(world, phone):
    refused(
        world.actors["taker_a"],
        sample_input(patient=replace(patient_input(), phone=phone)),
        ("patient.phone", "invalid"),
    )


def test_invalid_email_is_refused(world):
    refused(
        world.actors["taker_a"],
        sample_input(patient=replace(patient_input(), email="not-an-email")),
        ("patient.email", "invalid"),
    )


# --- consistency between test, sample type, establishment and lab --------------------------------------------------


def test_sample_type_must_be_valid_for_the_test(world):
    refused(world.actors["taker_a"], sample_input(sample_type="lesion-swab"), ("sample_type", "not_allowed"))
    refused(
        world.actors["taker_a"],
        sample_input(test="mpox-pcr", sample_type="nasopharyngeal-swab"),
        ("sample_type", "not_allowed"),
    )


def test_mpox_sample_with_its_own_sample_type_is_accepted(world):
    sample, _ = services.sample_register(
        actor=world.actors["taker_a"], data=sample_input(test="mpox-pcr", sample_type="Tórula de Lesión")
    )
    assert sample.disease.code == "mpox"


def test_lab_must_be_assigned_to_the_establishment(world):
    # Establishment A sends only to lab X; lab Y serves establishment B.
    refused(world.actors["taker_a"], sample_input(laboratory=1000000002), ("laboratory", "not_assigned"))


def test_lab_must_be_authorised_for_the_disease(world):
    lab_x = Laboratory.objects.get(platform_id=1000000001)
    lab_x.diseases.remove(lab_x.diseases.get(code="mpox"))
    lookups.clear()
    refused(
        world.actors["taker_a"],
        sample_input(test="mpox-pcr", sample_type="lesion-swab"),
        ("laboratory", "not_authorised"),
    )
    # COVID-19 still goes through.
    assert services.sample_register(actor=world.actors["taker_a"], data=sample_input())[1]


def test_an_inactive_assignment_no_longer_counts(world):
    world.est_a.assignments.update(active=False)
    lookups.clear()
    refused(world.actors["taker_a"], sample_input(), ("laboratory", "not_assigned"))


# --- who may register ----------------------------------------------------------------------------------------------


def test_taker_cannot_register_for_another_establishment(world):
    refused(world.actors["taker_b"], sample_input(), ("establishment", "not_yours"))


def test_lab_registers_only_samples_addressed_to_itself(world):
    # Lab Y's LIS for establishment B (assigned to both labs) but addressed to lab X.
    refused(
        world.actors["key_lab_y"],
        sample_input(establishment="105100", laboratory=1000000001),
        ("laboratory", "wrong_laboratory"),
    )


def test_a_lab_created_sample_starts_sent_to_the_lab(world):
    sample, _ = services.sample_register(actor=world.actors["key_lab_x"], data=sample_input(client_code="LIS-X-1"))
    assert sample.state == SampleState.DISPATCHED
    assert sample.client_lab.platform_id == 1000000001


@pytest.mark.parametrize("who", ["viewer_rm", "citizen"])
def test_viewers_and_citizens_cannot_register(world, who):
    before = db_state()
    with pytest.raises(PermissionDenied):
        services.sample_register(actor=world.actors[who], data=sample_input())
    with pytest.raises(PermissionDenied):
        services.sample_register_batch(actor=world.actors[who], items=[sample_input()])
    assert_unchanged(before)


def test_batch_keeps_good_rows_and_returns_bad_ones_with_reasons(world):
    items = [sample_input() for _ in range(4)]
    items[1].sample_type = "toenail"
    items[3].patient.phone = "."
    before = db_state()
    outcomes = services.sample_register_batch(actor=world.actors["taker_a"], items=items)
    assert [o.ok for o in outcomes] == [True, False, True, False]
    assert [e.field for e in outcomes[1].errors] == ["sample_type"]
    assert [e.field for e in outcomes[3].errors] == ["patient.phone"]
    assert dict(db_state().counts)["samples"] == dict(before.counts)["samples"] + 2


def test_batch_all_or_nothing_stores_nothing_on_one_bad_row(world):
    items = [sample_input() for _ in range(3)]
    items[2].test = "nope"
    before = db_state()
    outcomes = services.sample_register_batch(actor=world.actors["taker_a"], items=items, all_or_nothing=True)
    assert [o.ok for o in outcomes] == [False, False, False]
    assert outcomes[2].errors
    assert_unchanged(before)


def test_batch_size_is_limited(world, settings):
    settings.MUESTRA = {**settings.MUESTRA, "MAX_BATCH_ITEMS": 3}
    with pytest.raises(ValidationFailed) as info:
        services.sample_register_batch(actor=world.actors["taker_a"], items=[sample_input() for _ in range(4)])
    assert info.value.errors[0].field == "items"
