# mypy: disable-error-code="union-attr"
"""One patient per identity document, never duplicated, whatever the formatting and whichever path (single
registration, batch, pool); contact details follow the person, identity stays as first registered."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from django.db import IntegrityError

from muestra.core.errors import ErrorCollector, ValidationFailed
from muestra.demo.builders import sample_input
from muestra.patients.models import Patient
from muestra.patients.services import patient_resolve, patients_resolve_many
from muestra.patients.tests.factories import dotted, make_patient, make_patient_input, next_run, run_with_k
from muestra.samples import lookups, services
from muestra.samples.inputs import resolve_patient
from muestra.samples.tests.support import assert_unchanged, db_state


def register(world, patient, who="taker_a"):
    sample, _ = services.sample_register(actor=world.actors[who], data=sample_input(patient=patient))
    return sample.patient


def resolved(data):
    errors = ErrorCollector()
    out = resolve_patient(data, errors, "patient", phone_country_code="+56")
    assert not errors, errors.errors
    return out


@pytest.mark.parametrize(
    "variant",
    [
        lambda r: dotted(r),
        lambda r: dotted(r, lower=True),
        lambda r: r.replace("-", ""),
        lambda r: r.lower(),
        lambda r: f"  {dotted(r)} ",
        lambda r: "0" + r,
    ],
    ids=["dots", "dots-lower-k", "no-dash", "lower-k", "spaces", "leading-zero"],
)
def test_same_run_in_any_format_is_the_same_patient(world, variant):
    run = run_with_k()
    first = register(world, make_patient_input(document_number=run))
    assert first.document_number == run  # stored normalised: no dots, upper-case K
    again = register(world, make_patient_input(document_number=variant(run)), who="manager_a")
    assert again.pk == first.pk
    assert Patient.objects.filter(document_number=run).count() == 1


def test_document_type_by_national_platform_name_is_the_same_patient(world):
    run = next_run()
    first = register(world, make_patient_input(document_number=run))
    again = register(world, make_patient_input(document_number=run, document_type="RUN"))
    assert again.pk == first.pk


def test_batch_with_the_same_person_twice_creates_one_patient(world):
    run = run_with_k()
    items = [
        sample_input(patient=make_patient_input(document_number=run)),
        sample_input(patient=make_patient_input(document_number=dotted(run, lower=True))),
        sample_input(patient=make_patient_input()),
    ]
    outcomes = services.sample_register_batch(actor=world.actors["taker_a"], items=items)
    assert all(o.ok for o in outcomes)
    assert outcomes[0].sample.patient_id == outcomes[1].sample.patient_id != outcomes[2].sample.patient_id
    assert Patient.objects.filter(document_number=run).count() == 1


def test_batch_reuses_a_known_patient(world):
    known = register(world, make_patient_input())
    items = [sample_input(patient=make_patient_input(document_number=known.document_number)) for _ in range(2)]
    outcomes = services.sample_register_batch(actor=world.actors["taker_a"], items=items)
    assert {o.sample.patient_id for o in outcomes} == {known.pk}


def test_contact_details_are_refreshed_identity_is_kept(world):
    run = next_run()
    first = register(
        world,
        make_patient_input(
            document_number=run,
            given_names="Ana",
            birth_date=date(1980, 1, 1),
            phone="+56911111111",
            address="Old street 1",
            residence="13101",
            email="old@example.org",
            insurance="fonasa",
        ),
    )
    register(
        world,
        make_patient_input(
            document_number=run,
            given_names="Anita",
            birth_date=date(1981, 2, 2),
            sex="M",
            phone="+56922222222",
            address="New street 2",
            residence="05101",
            email="",
            insurance="isapre",
        ),
    )
    first.refresh_from_db()
    assert (first.given_names, first.birth_date, first.sex) == ("Ana", date(1980, 1, 1), "F")
    assert (first.phone, first.address, first.residence.code) == ("+56922222222", "New street 2", "05101")
    assert first.email == "old@example.org"  # a blank e-mail does not erase the known one
    assert first.insurance.code == "isapre"


def test_batch_refreshes_contact_details_too(world):
    known = register(world, make_patient_input(phone="+56911111111"))
    services.sample_register_batch(
        actor=world.actors["taker_a"],
        items=[
            sample_input(
                patient=make_patient_input(
                    document_number=known.document_number, phone="+56933333333", given_names="Otro nombre"
                )
            )
        ],
    )
    known.refresh_from_db()
    assert known.phone == "+56933333333" and known.given_names != "Otro nombre"


def test_passport_needs_an_issuing_country(world):
    before = db_state()
    with pytest.raises(ValidationFailed) as info:
        register(world, make_patient_input(passport=True, document_issuer=""))
    assert ("patient.document_issuer", "required") in {(e.field, e.code) for e in info.value.errors}
    with pytest.raises(ValidationFailed):
        register(world, make_patient_input(passport=True, document_issuer="99999"))
    assert_unchanged(before)


def test_passport_identity_includes_the_issuing_country(world):
    # Issuers given as the national platform's country ids (Peru 637, Argentina 470); stored as ISO numeric.
    peru = register(world, make_patient_input(passport=True, document_number="AB123456", document_issuer="pntm:637"))
    assert peru.document_issuer == "604"
    same = register(world, make_patient_input(passport=True, document_number="ab-123456", document_issuer=" 604"))
    assert same.pk == peru.pk
    # The same number from another country is another person.
    other = register(world, make_patient_input(passport=True, document_number="AB123456", document_issuer="pntm:470"))
    assert other.pk != peru.pk and other.document_issuer == "032"
    # An ISO code is understood as ISO (Argentina, zero-padded or not).
    assert (
        register(world, make_patient_input(passport=True, document_number="AB123456", document_issuer="032")).pk
        == other.pk
    )


def test_an_iso_issuer_code_is_never_read_as_another_countrys_platform_id(world):
    peru = lookups.country("604")
    assert peru is not None and peru.iso_numeric == "604"
    # The national platform's own ids are only read when marked as such (604 there is Malaysia).
    assert lookups.country("pntm:604") is not None and lookups.country("pntm:604").iso_numeric != "604"
    assert lookups.country("pntm:499").iso_numeric == "152"  # Chile


def test_newborn_is_registered_through_a_guardian_and_found_again(world):
    baby = make_patient_input(newborn=True)
    first = register(world, baby)
    assert first.document_number == "" and first.guardian is not None
    assert first.guardian.document_number == baby.guardian.document_number
    again = register(world, replace(baby, phone="+56944444444"))
    assert again.pk == first.pk
    # A twin (other given names) is another patient with the same guardian.
    twin = register(world, replace(baby, given_names="Gemela"))
    assert twin.pk != first.pk and twin.guardian_id == first.guardian_id


def test_newborn_without_guardian_or_guardian_without_document_is_refused(world):
    before = db_state()
    with pytest.raises(ValidationFailed) as info:
        register(world, make_patient_input(newborn=True, guardian=None))
    assert ("patient.guardian", "required") in {(e.field, e.code) for e in info.value.errors}
    with pytest.raises(ValidationFailed) as info:
        register(world, make_patient_input(newborn=True, guardian=make_patient_input(no_document=True)))
    assert ("patient.guardian.document_number", "required") in {(e.field, e.code) for e in info.value.errors}
    assert_unchanged(before)


def test_guardian_is_a_known_patient_when_already_registered(world):
    mother = register(world, make_patient_input())
    baby = register(
        world,
        make_patient_input(
            newborn=True,
            guardian=make_patient_input(
                document_number=dotted(mother.document_number), address="", phone="", residence=""
            ),
        ),
    )
    assert baby.guardian_id == mother.pk


def test_no_document_creates_separate_patients(world):
    data = make_patient_input(no_document=True, given_names="Sin", paternal_surname="Documento")
    first, second = register(world, data), register(world, data)
    assert first.pk != second.pk
    assert first.document_number == second.document_number == ""


def test_no_document_patients_in_a_batch_are_separate(world):
    data = make_patient_input(no_document=True)
    outcomes = services.sample_register_batch(
        actor=world.actors["taker_a"], items=[sample_input(patient=data), sample_input(patient=data)]
    )
    assert outcomes[0].sample.patient_id != outcomes[1].sample.patient_id


def test_vietnamese_cccd_patient(world):
    cccd = "001190012345"
    first = register(world, make_patient_input(document_type="cccd", document_number=cccd, insurance=""))
    again = register(world, make_patient_input(document_type="cccd", document_number="0011 9001 2345", insurance=""))
    assert first.pk == again.pk and first.document_number == cccd


def test_invalid_documents_are_refused_naming_the_field(world):
    before = db_state()
    for data in (
        make_patient_input(document_number="12.345.678-9"),
        make_patient_input(document_type="cccd", document_number="12345", insurance=""),
        make_patient_input(passport=True, document_number="#"),
    ):
        with pytest.raises(ValidationFailed) as info:
            register(world, data)
        assert ("patient.document_number", "invalid") in {(e.field, e.code) for e in info.value.errors}
    assert_unchanged(before)


def test_patient_resolve_directly(db):
    data = resolved(make_patient_input())
    first, created = patient_resolve(data)
    again, created_again = patient_resolve(data)
    assert created and not created_again and again.pk == first.pk


def test_patients_resolve_many_uses_one_query_for_lookups_and_one_insert(db, django_assert_max_num_queries):
    items = [resolved(make_patient_input()) for _ in range(20)]
    items.append(items[0])
    lookups.document_type("run")
    # SELECT known documents, one INSERT ... ON CONFLICT DO NOTHING for all new patients (no savepoint).
    with django_assert_max_num_queries(2):
        patients = patients_resolve_many(items)
    assert len({p.pk for p in patients}) == 20 and patients[0].pk == patients[-1].pk


def test_the_database_refuses_a_duplicate_document(db):
    stored = make_patient()
    with pytest.raises(IntegrityError):
        make_patient(document_number=stored.document_number)


def test_no_personal_data_in_repr(db):
    patient = make_patient(given_names="Secreta")
    assert "Secreta" not in str(patient) and patient.document_number not in repr(patient)
    assert patient.full_name == "Secreta Rojas"
