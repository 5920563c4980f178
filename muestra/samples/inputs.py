"""Typed inputs of the sample services and their validation.

Every outer layer (REST API, legacy adapter, screens, importers) builds these dataclasses from its own wire
format and hands them to the services. Validation collects every problem of an item at once, each naming its
field (`patient.birth_date`, `collected_at`...), so a caller can fix all of them in one go.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from muestra.catalog.models import (
    DocumentValidator,
    HealthInsurance,
    IdentityDocumentType,
    Interpretation,
    ResultValue,
    SampleType,
    Strategy,
    Test,
)
from muestra.core.errors import ErrorCollector
from muestra.facilities.models import Establishment, Laboratory
from muestra.patients.documents import DocumentInvalid, normalise_document, normalise_run
from muestra.samples import lookups
from muestra.territories.models import Country, Territory

BLANK_MARKERS = {"", "."}


@dataclass
class PatientInput:
    document_type: str
    document_number: str = ""
    document_issuer: str = ""  # ISO numeric or national platform id of the issuing country
    given_names: str = ""
    paternal_surname: str = ""
    maternal_surname: str = ""
    birth_date: date | None = None
    sex: str = ""
    residence: str = ""  # comuna code (CUT or DEIS form), or a Vietnamese territory key
    address: str = ""
    phone: str = ""
    email: str = ""
    insurance: str = ""
    nationality: str = ""
    guardian: PatientInput | None = None


@dataclass
class SampleInput:
    establishment: str
    test: str
    sample_type: str
    collected_at: datetime | None
    patient: PatientInput | None
    laboratory: str | int | None = None  # platform id of the destination lab
    strategy: str = ""
    substrategy: str = ""
    active_case_finding: bool = False
    client_code: str = ""
    tube_code: str = ""
    responsible_run: str = ""
    ordering_physician_run: str = ""
    without_medical_order: bool = True
    surveillance_number: str = ""
    answers: dict[str, Any] = field(default_factory=dict)
    # Point-of-care tests (antigen) carry their result at registration.
    result: str = ""
    result_at: datetime | None = None
    # A pooled tube: the people swabbed into it (then `patient` is None).
    pool_members: list[PatientInput] | None = None


@dataclass
class ResolvedPatient:
    document_type: IdentityDocumentType
    document_number: str
    document_issuer: str
    given_names: str
    paternal_surname: str
    maternal_surname: str
    birth_date: date
    sex: str
    residence: Territory | None
    address: str
    phone: str
    email: str
    insurance: HealthInsurance | None
    nationality: Country | None
    guardian: ResolvedPatient | None = None

    @property
    def identity_key(self) -> tuple[int, str, str] | None:
        if not self.document_number:
            return None
        return (self.document_type.pk, self.document_number, self.document_issuer)


@dataclass
class ResolvedSample:
    source: SampleInput
    establishment: Establishment
    laboratory: Laboratory | None
    test: Test
    sample_type: SampleType
    strategy: Strategy | None
    substrategy: Strategy | None
    collected_at: datetime
    patient: ResolvedPatient | None
    pool_members: list[ResolvedPatient]
    result_value: ResultValue | None
    result_at: datetime | None
    responsible_run: str
    ordering_physician_run: str


def _blank(value: Any) -> bool:
    return value is None or str(value).strip() in BLANK_MARKERS


SEX_ALIASES = {
    "m": "M",
    "masculino": "M",
    "male": "M",
    "hombre": "M",
    "nam": "M",
    "f": "F",
    "femenino": "F",
    "female": "F",
    "mujer": "F",
    "nữ": "F",
    "nu": "F",
    "i": "I",
    "intersex": "I",
    "intersexual": "I",
    "u": "U",
    "desconocido": "U",
    "unknown": "U",
    "x": "U",
}


def normalise_phone(raw: str, *, country_code: str) -> str | None:
    """ "9 1234 5678", "+56 9 1234 5678", "0912345678" -> "+56912345678". None when it cannot be a phone."""
    country_code = country_code.strip().lstrip("+")  # profiles store it as "+56"
    digits = re.sub(r"[\s\-().]", "", raw or "")
    if digits.startswith("+"):
        digits = digits[1:]
    if not digits.isdigit():
        return None
    if digits.startswith("00"):
        digits = digits[2:]
    if len(digits) == 9:
        return f"+{country_code}{digits}"
    if len(digits) == 10 and digits.startswith("0"):
        return f"+{country_code}{digits[1:]}"
    if digits.startswith(country_code) and len(digits) == len(country_code) + 9:
        return f"+{digits}"
    if 10 <= len(digits) <= 15 and not digits.startswith("0"):
        return f"+{digits}"  # a foreign number with its own country code
    return None


def _years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier; 29 February falls back to the 28th in a common year."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


#: Longest accepted text per patient field (the database columns' sizes), checked here so that every channel
#: gets a clear field error instead of a database failure.
PATIENT_TEXT_LIMITS = {
    "document_number": 40,
    "given_names": 120,
    "paternal_surname": 120,
    "maternal_surname": 120,
    "address": 250,
    "phone": 30,
    "email": 254,
}


def _check_lengths(data: PatientInput, errors: ErrorCollector, prefix: str) -> None:
    for name, limit in PATIENT_TEXT_LIMITS.items():
        value = getattr(data, name)
        if value is not None and len(str(value)) > limit:
            errors.add(
                f"{prefix}.{name}",
                "too_long",
                _("This field has at most %(limit)d characters.") % {"limit": limit},
            )


def resolve_patient(
    data: PatientInput, errors: ErrorCollector, prefix: str, *, phone_country_code: str, require_contact: bool = True
) -> ResolvedPatient | None:
    _check_lengths(data, errors, prefix)
    doc_type = lookups.document_type(data.document_type)
    if doc_type is None:
        errors.add(
            f"{prefix}.document_type",
            "unknown_code",
            _("Unknown identity document type %(value)r.") % {"value": data.document_type},
        )
    number = ""
    issuer = ""
    if doc_type is not None:
        try:
            number = normalise_document(doc_type.validator, data.document_number)
        except DocumentInvalid as exc:
            errors.add(f"{prefix}.document_number", "invalid", exc.message)
        if doc_type.requires_issuing_country:
            issuing = lookups.country(data.document_issuer)
            if issuing is None:
                errors.add(
                    f"{prefix}.document_issuer",
                    "required",
                    _("The document's issuing country is required (a known country code)."),
                )
            else:
                issuer = issuing.iso_numeric or str(issuing.pntm_id)
    for name, label in (("given_names", _("Given names")), ("paternal_surname", _("First surname"))):
        if _blank(getattr(data, name)):
            errors.add(f"{prefix}.{name}", "required", _("%(field)s is required.") % {"field": label})
    today = timezone.localdate()
    if data.birth_date is None:
        errors.add(f"{prefix}.birth_date", "required", _("The date of birth is required."))
    elif data.birth_date > today:
        errors.add(f"{prefix}.birth_date", "future", _("The date of birth cannot be in the future."))
    elif data.birth_date < _years_before(today, 130):
        errors.add(f"{prefix}.birth_date", "too_old", _("The date of birth is more than 130 years ago."))
    sex = SEX_ALIASES.get(str(data.sex or "").strip().casefold())
    if sex is None:
        errors.add(
            f"{prefix}.sex",
            "required" if _blank(data.sex) else "invalid",
            _("Sex must be one of M, F, Intersex or Unknown."),
        )
    residence = None
    phone = ""
    if require_contact:
        residence = lookups.comuna_or_district(data.residence)
        if residence is None:
            errors.add(
                f"{prefix}.residence",
                "unknown_code" if not _blank(data.residence) else "required",
                _("The comuna or district of residence is required and must be a known code."),
            )
        if _blank(data.address):
            errors.add(f"{prefix}.address", "required", _("The address is required (not blank or '.')."))
        if _blank(data.phone):
            errors.add(f"{prefix}.phone", "required", _("The phone number is required."))
        else:
            phone = normalise_phone(str(data.phone), country_code=phone_country_code) or ""
            if not phone:
                errors.add(
                    f"{prefix}.phone",
                    "invalid",
                    _("The phone number must have 9 digits, or 11-12 with the country code."),
                )
    email = str(data.email or "").strip()
    if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        errors.add(f"{prefix}.email", "invalid", _("The e-mail address is not valid."))
    insurance = None
    if not _blank(data.insurance):
        insurance = lookups.insurance(data.insurance)
        if insurance is None:
            errors.add(
                f"{prefix}.insurance",
                "unknown_code",
                _("Unknown health insurance %(value)r.") % {"value": data.insurance},
            )
    elif doc_type is not None and doc_type.validator == DocumentValidator.CL_RUN and require_contact:
        errors.add(f"{prefix}.insurance", "required", _("The health insurance is required for a RUN."))
    nationality = None
    if not _blank(data.nationality):
        nationality = lookups.country(data.nationality)
        if nationality is None:
            errors.add(
                f"{prefix}.nationality", "unknown_code", _("Unknown country %(value)r.") % {"value": data.nationality}
            )
    guardian = None
    if doc_type is not None and doc_type.validator == DocumentValidator.NEWBORN:
        if data.guardian is None:
            errors.add(f"{prefix}.guardian", "required", _("A newborn is registered through a guardian."))
        else:
            guardian = resolve_patient(
                data.guardian,
                errors,
                f"{prefix}.guardian",
                phone_country_code=phone_country_code,
                require_contact=False,
            )
            if guardian is not None and not guardian.document_number:
                errors.add(
                    f"{prefix}.guardian.document_number", "required", _("The guardian needs an identity document.")
                )
    if doc_type is None or data.birth_date is None or sex is None:
        return None
    return ResolvedPatient(
        document_type=doc_type,
        document_number=number,
        document_issuer=issuer,
        given_names=str(data.given_names or "").strip(),
        paternal_surname=str(data.paternal_surname or "").strip(),
        maternal_surname="" if _blank(data.maternal_surname) else str(data.maternal_surname).strip(),
        birth_date=data.birth_date,
        sex=sex,
        residence=residence,
        address=str(data.address or "").strip(),
        phone=phone,
        email=email,
        insurance=insurance,
        nationality=nationality,
        guardian=guardian,
    )


def check_collected_at(
    value: datetime | None, errors: ErrorCollector, field_name: str = "collected_at", *, check_age: bool = True
) -> None:
    """The collection time is given, not in the future and (unless `check_age` is off) not older than a new
    registration may be."""
    if value is None:
        errors.add(field_name, "required", _("The collection time is required."))
        return
    now = timezone.now()
    rules = settings.MUESTRA
    if value > now + timedelta(minutes=rules["FUTURE_TOLERANCE_MINUTES"]):
        errors.add(field_name, "future", _("The collection time cannot be in the future."))
    elif check_age and value < now - timedelta(days=rules["MAX_COLLECTION_AGE_DAYS"]):
        errors.add(
            field_name,
            "stale",
            _("The collection time is more than %(days)d days old.") % {"days": rules["MAX_COLLECTION_AGE_DAYS"]},
        )


def check_run(value: str, errors: ErrorCollector, field_name: str) -> str:
    if _blank(value):
        return ""
    try:
        return normalise_run(value)
    except DocumentInvalid as exc:
        errors.add(field_name, "invalid", exc.message)
        return ""


def resolve_sample(data: SampleInput, errors: ErrorCollector, *, check_age: bool = True) -> ResolvedSample | None:
    """Resolves every code of `data` and checks the rules that do not depend on who is asking.

    `check_age=False` leaves out the one rule that depends on when the call is made (a collection older than
    MAX_COLLECTION_AGE_DAYS): a retry of a creation that was stored days ago is compared with what is stored
    instead (`services._late_retry`)."""
    establishment = lookups.establishment(data.establishment)
    if establishment is None:
        errors.add(
            "establishment",
            "unknown_code" if not _blank(data.establishment) else "required",
            _("Unknown establishment %(value)r.") % {"value": data.establishment},
        )
    test = lookups.test(data.test)
    if test is None:
        errors.add("test", "unknown_code", _("Unknown test %(value)r.") % {"value": data.test})
    sample_type = lookups.sample_type(data.sample_type)
    if sample_type is None:
        errors.add("sample_type", "unknown_code", _("Unknown sample type %(value)r.") % {"value": data.sample_type})
    elif test is not None and not lookups.test_accepts(test, sample_type_id=sample_type.pk):
        errors.add(
            "sample_type",
            "not_allowed",
            _("Sample type %(type)s is not valid for test %(test)s.")
            % {"type": sample_type.display_name, "test": test.display_name},
        )
    strategy = substrategy = None
    if not _blank(data.strategy):
        strategy = lookups.strategy(data.strategy)
        if strategy is None:
            errors.add("strategy", "unknown_code", _("Unknown strategy %(value)r.") % {"value": data.strategy})
    if not _blank(data.substrategy):
        substrategy = lookups.strategy(data.substrategy)
        if substrategy is None:
            errors.add(
                "substrategy", "unknown_code", _("Unknown sub-strategy %(value)r.") % {"value": data.substrategy}
            )
    check_collected_at(data.collected_at, errors, check_age=check_age)

    laboratory = None
    if not _blank(data.laboratory):
        laboratory = lookups.laboratory(data.laboratory)
        if laboratory is None:
            errors.add("laboratory", "unknown_code", _("Unknown laboratory %(value)r.") % {"value": data.laboratory})
    elif test is not None and not test.result_at_registration:
        errors.add("laboratory", "required", _("The destination laboratory is required."))
    if (
        laboratory is not None
        and establishment is not None
        and laboratory.pk not in lookups.assigned_lab_ids(establishment.pk)
    ):
        errors.add(
            "laboratory",
            "not_assigned",
            _("Laboratory %(lab)s is not assigned to establishment %(est)s.")
            % {"lab": laboratory.platform_id, "est": establishment.code},
        )
    if laboratory is not None and test is not None and test.disease_id not in lookups.lab_disease_ids(laboratory.pk):
        errors.add(
            "laboratory",
            "not_authorised",
            _("Laboratory %(lab)s is not authorised for %(disease)s.")
            % {"lab": laboratory.platform_id, "disease": test.disease.display_name},
        )

    result_value = None
    result_at = None
    if not _blank(data.result):
        result_value = lookups.result_value(data.result)
        if result_value is None:
            errors.add("result", "unknown_code", _("Unknown result %(value)r.") % {"value": data.result})
        elif test is not None and not test.result_at_registration:
            errors.add(
                "result",
                "not_allowed",
                _("Only point-of-care tests carry their result at registration; the lab enters this one."),
            )
        elif test is not None and not lookups.test_accepts(test, result_value_id=result_value.pk):
            errors.add(
                "result",
                "not_allowed",
                _("Result %(value)s is not valid for test %(test)s.")
                % {"value": result_value.display_name, "test": test.display_name},
            )
        elif result_value.interpretation == Interpretation.RETEST:
            errors.add("result", "not_allowed", _("A re-test flag is not a result of its own."))
        result_at = data.result_at or data.collected_at
        if data.result_at is not None:
            if data.result_at > timezone.now() + timedelta(minutes=settings.MUESTRA["FUTURE_TOLERANCE_MINUTES"]):
                errors.add("result_at", "future", _("The result time cannot be in the future."))
            elif data.collected_at is not None and data.result_at < data.collected_at:
                errors.add("result_at", "before_collection", _("The result time cannot be before the collection time."))
    elif test is not None and test.result_at_registration:
        errors.add("result", "required", _("This point-of-care test is registered together with its result."))

    if not data.without_medical_order and _blank(data.ordering_physician_run):
        errors.add(
            "ordering_physician_run", "required", _("The ordering physician's RUN is required with a medical order.")
        )
    responsible_run = check_run(data.responsible_run, errors, "responsible_run")
    physician_run = check_run(data.ordering_physician_run, errors, "ordering_physician_run")
    if len(data.client_code or "") > 60:
        errors.add("client_code", "too_long", _("The laboratory's own code has at most 60 characters."))

    phone_cc = establishment.profile.phone_country_code if establishment is not None else "56"
    patient = None
    members: list[ResolvedPatient] = []
    if data.pool_members:
        if data.patient is not None:
            errors.add("patient", "not_allowed", _("A pooled tube lists its members instead of one patient."))
        if test is not None and not test.pooling_allowed:
            errors.add(
                "pool_members", "not_allowed", _("Test %(test)s may not be pooled.") % {"test": test.display_name}
            )
        for i, member in enumerate(data.pool_members):
            resolved = resolve_patient(member, errors, f"pool_members[{i}]", phone_country_code=phone_cc)
            if resolved is not None:
                members.append(resolved)
        keys = [m.identity_key for m in members if m.identity_key]
        if len(keys) != len(set(keys)):
            errors.add("pool_members", "duplicate", _("The same person appears twice in one pool."))
    elif data.patient is None:
        errors.add("patient", "required", _("The patient is required."))
    else:
        patient = resolve_patient(data.patient, errors, "patient", phone_country_code=phone_cc)

    if errors or establishment is None or test is None or sample_type is None or data.collected_at is None:
        return None
    return ResolvedSample(
        source=data,
        establishment=establishment,
        laboratory=laboratory,
        test=test,
        sample_type=sample_type,
        strategy=strategy,
        substrategy=substrategy,
        collected_at=data.collected_at,
        patient=patient,
        pool_members=members,
        result_value=result_value,
        result_at=result_at,
        responsible_run=responsible_run,
        ordering_physician_run=physician_run,
    )
