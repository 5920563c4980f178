"""factory-boy factories for patient inputs (what a caller sends) and stored patients."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any, cast

import factory
from factory.django import DjangoModelFactory

from muestra.patients.documents import run_check_digit
from muestra.patients.models import Patient
from muestra.samples import lookups
from muestra.samples.inputs import PatientInput

_bodies = itertools.count(41_000_001, 7)


def next_run() -> str:
    body = next(_bodies)
    return f"{body}-{run_check_digit(body)}"


def run_with_k() -> str:
    """A fresh valid RUN whose check digit is K (about one body in eleven)."""
    while True:
        run = next_run()
        if run.endswith("K"):
            return run


def dotted(run: str, *, lower: bool = False) -> str:
    """ "12345678-K" -> "12.345.678-k" (the way people type it)."""
    body, dv = run.split("-")
    text = f"{int(body):,}".replace(",", ".") + "-" + dv
    return text.lower() if lower else text


class PatientInputFactory(factory.Factory):
    class Meta:
        model = PatientInput

    document_type = "run"
    document_number = factory.LazyFunction(next_run)
    given_names = factory.Sequence(lambda n: f"Persona{n}")
    paternal_surname = "González"
    maternal_surname = "Muñoz"
    birth_date = date(1990, 1, 31)
    sex = "F"
    residence = "13101"
    address = "Calle Falsa 123"
    phone = "+56987654321"
    email = ""
    insurance = "fonasa"

    class Params:
        passport = factory.Trait(
            document_type="passport",
            document_number=factory.Sequence(lambda n: f"P{n:07d}"),
            document_issuer="604",
            insurance="",
        )
        no_document = factory.Trait(document_type="no-document", document_number="", insurance="")
        newborn = factory.Trait(
            document_type="newborn",
            document_number="",
            insurance="",
            given_names="Recién nacido",
            birth_date=factory.LazyFunction(date.today),
            guardian=factory.LazyFunction(lambda: PatientInputFactory(address="", phone="", residence="")),
        )


class PatientFactory(DjangoModelFactory):
    class Meta:
        model = Patient

    document_type = factory.LazyFunction(lambda: lookups.document_type("run"))
    document_number = factory.LazyFunction(next_run)
    given_names = factory.Sequence(lambda n: f"Almacenada{n}")
    paternal_surname = "Rojas"
    birth_date = date(1970, 6, 1)
    sex = "M"


def make_patient_input(**kwargs: Any) -> PatientInput:
    """`PatientInputFactory(**kwargs)`, typed for the checker (factory-boy's own types say "a factory")."""
    return cast(PatientInput, PatientInputFactory(**kwargs))


def make_patient(**kwargs: Any) -> Patient:
    return cast(Patient, PatientFactory(**kwargs))
