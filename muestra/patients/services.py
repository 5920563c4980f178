"""Finding or creating the patient a sample belongs to: one patient per identity document, never duplicated."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import IntegrityError, transaction

from muestra.patients.models import Patient
from muestra.samples.inputs import ResolvedPatient

# Contact details follow the person (a new phone, a move); identity fields stay as first registered, since
# a second registration with a different birth date is far more often a typo than a correction.
CONTACT_FIELDS = ("address", "phone", "email")
CONTACT_FKS = ("residence", "insurance", "nationality")


def _new_patient(data: ResolvedPatient, guardian: Patient | None) -> Patient:
    return Patient(
        document_type=data.document_type,
        document_number=data.document_number,
        document_issuer=data.document_issuer,
        given_names=data.given_names,
        paternal_surname=data.paternal_surname,
        maternal_surname=data.maternal_surname,
        birth_date=data.birth_date,
        sex=data.sex,
        residence=data.residence,
        address=data.address,
        phone=data.phone,
        email=data.email,
        insurance=data.insurance,
        nationality=data.nationality,
        guardian=guardian,
    )


def _refresh_contact(patient: Patient, data: ResolvedPatient) -> list[str]:
    changed = []
    for name in CONTACT_FIELDS:
        value = getattr(data, name)
        if value and getattr(patient, name) != value:
            setattr(patient, name, value)
            changed.append(name)
    for name in CONTACT_FKS:
        value = getattr(data, name)
        if value is not None and getattr(patient, f"{name}_id") != value.pk:
            setattr(patient, name, value)
            changed.append(name)
    return changed


def patient_resolve(data: ResolvedPatient) -> tuple[Patient, bool]:
    """The stored patient for `data` (contact details refreshed) or a new one. Returns (patient, created)."""
    guardian = patient_resolve(data.guardian)[0] if data.guardian is not None else None
    key = data.identity_key
    if key is None:
        if guardian is not None:
            # A newborn is the same person when guardian, birth date and given names match.
            existing = Patient.objects.filter(
                guardian=guardian,
                birth_date=data.birth_date,
                given_names__iexact=data.given_names,
                document_type=data.document_type,
            ).first()
            if existing is not None:
                return existing, False
        patient = _new_patient(data, guardian)
        patient.save()
        return patient, True
    existing = Patient.objects.filter(document_type_id=key[0], document_number=key[1], document_issuer=key[2]).first()
    if existing is not None:
        changed = _refresh_contact(existing, data)
        if changed:
            existing.save(update_fields=[*changed, "updated_at"])
        return existing, False
    try:
        with transaction.atomic():
            patient = _new_patient(data, guardian)
            patient.save()
            return patient, True
    except IntegrityError:
        # Another request registered the same document a moment ago: use theirs.
        return Patient.objects.get(document_type_id=key[0], document_number=key[1], document_issuer=key[2]), False


def patients_resolve_many(items: Sequence[ResolvedPatient]) -> list[Patient]:
    """Bulk form of `patient_resolve` for batches: one query to find known documents, one insert for new ones."""
    keys = {p.identity_key for p in items if p.identity_key is not None and p.guardian is None}
    known: dict[tuple[int, str, str], Patient] = {}
    if keys:
        numbers = {k[1] for k in keys}
        for patient in Patient.objects.filter(document_number__in=numbers):
            known[(patient.document_type_id, patient.document_number, patient.document_issuer)] = patient
    to_create: dict[tuple[int, str, str], Patient] = {}
    to_update: dict[int, tuple[Patient, set[str]]] = {}
    result: list[Patient | None] = []
    for item in items:
        key = item.identity_key
        if key is None or item.guardian is not None:
            result.append(None)  # resolved one by one below (no document / newborn)
            continue
        if key in known:
            changed = _refresh_contact(known[key], item)
            if changed:
                entry = to_update.setdefault(known[key].pk, (known[key], set()))
                entry[1].update(changed)
            result.append(known[key])
        else:
            patient = to_create.get(key) or _new_patient(item, None)
            to_create[key] = patient
            result.append(patient)
    if to_create:
        try:
            with transaction.atomic():
                Patient.objects.bulk_create(list(to_create.values()))
        except IntegrityError:
            # A concurrent writer created some of them: fall back to one at a time for this batch.
            return [patient_resolve(item)[0] for item in items]
    fields = sorted({f for _, changed in to_update.values() for f in changed})
    if to_update:
        Patient.objects.bulk_update([p for p, _ in to_update.values()], fields=fields)
    return [p if p is not None else patient_resolve(item)[0] for p, item in zip(result, items, strict=True)]
