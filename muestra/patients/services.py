"""Finding or creating the patient a sample belongs to: one patient per identity document, never duplicated.

A patient with a document is inserted first, with `INSERT ... ON CONFLICT DO NOTHING`: the partial unique index
`patient_one_per_document` decides, so no savepoint is needed and a concurrent registration of the same person
simply finds nothing inserted and reads the stored row. On PostgreSQL the insert and the read of an already known
patient are one statement (a data-modifying CTE); SQLite reads in a second statement when nothing was inserted.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models import Field

from muestra.core.bulk import db_values, json_rows, mark_saved, new_instance
from muestra.patients.models import Patient
from muestra.samples.inputs import ResolvedPatient

# Contact details follow the person (a new phone, a move); identity fields stay as first registered, since
# a second registration with a different birth date is far more often a typo than a correction.
CONTACT_FIELDS = ("address", "phone", "email")
CONTACT_FKS = ("residence", "insurance", "nationality")


def _new_patient(data: ResolvedPatient, guardian: Patient | None) -> Patient:
    patient = new_instance(
        Patient,
        {
            "document_type_id": data.document_type.pk,
            "document_number": data.document_number,
            "document_issuer": data.document_issuer,
            "given_names": data.given_names,
            "paternal_surname": data.paternal_surname,
            "maternal_surname": data.maternal_surname,
            "birth_date": data.birth_date,
            "sex": data.sex,
            "residence_id": data.residence.pk if data.residence is not None else None,
            "address": data.address,
            "phone": data.phone,
            "email": data.email,
            "insurance_id": data.insurance.pk if data.insurance is not None else None,
            "nationality_id": data.nationality.pk if data.nationality is not None else None,
            "guardian_id": guardian.pk if guardian is not None else None,
        },
    )
    # The reference rows are at hand (cached look-ups): attached as if read, so nothing queries them again.
    cached = patient._state.fields_cache
    cached["document_type"] = data.document_type
    cached["residence"] = data.residence
    cached["insurance"] = data.insurance
    cached["nationality"] = data.nationality
    cached["guardian"] = guardian
    return patient


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


@functools.cache
def _insert_fields() -> tuple[Field[Any, Any], ...]:
    return tuple(f for f in Patient._meta.concrete_fields if not f.primary_key)


def _insert_values(patient: Patient, fields: Sequence[Field[Any, Any]]) -> list[Any]:
    # pre_save fills created_at/updated_at (auto_now) exactly as Model.save() would.
    return db_values(patient, fields, connection)


def _insert_sql(fields: Sequence[Field[Any, Any]], rows: int, returning: str) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    # Only names from the model's metadata are interpolated; every value is a parameter.
    return (
        f"INSERT INTO {quote(Patient._meta.db_table)} ({columns}) VALUES {', '.join([row] * rows)} "  # noqa: S608
        f"ON CONFLICT DO NOTHING RETURNING {returning}"
    )


def _by_document(key: tuple[int, str, str]) -> Patient | None:
    return (
        Patient.objects.with_document()
        .filter(document_type_id=key[0], document_number=key[1], document_issuer=key[2])
        .first()
    )


@functools.cache
def _insert_or_find_sql() -> str:
    """PostgreSQL, one round trip: the inserted id, or else the stored row (read in the statement's snapshot, so a
    row committed by a concurrent writer while the insert waited on the index is not seen: (None, False))."""
    fields = _insert_fields()
    quote = connection.ops.quote_name
    table = quote(Patient._meta.db_table)
    columns = ", ".join(quote(n) for n in ["id", *(f.column for f in fields)])
    return (
        f"WITH ins AS ({_insert_sql(fields, 1, 'id')}) "  # noqa: S608 (names from the model only)
        f"SELECT true, ins.id, {', '.join(['NULL'] * len(fields))} FROM ins "
        f"UNION ALL SELECT false, {columns} FROM {table} "
        "WHERE document_type_id = %s AND document_number = %s AND document_issuer = %s"
        # Repeats the unique index's own condition: the statement is prepared once per connection, and a generic
        # plan can only use that partial index when the query itself rules out an empty number.
        " AND document_number <> ''"
    )


def _insert_or_find(patient: Patient, key: tuple[int, str, str]) -> tuple[Patient | None, bool]:
    """Inserts `patient` unless its document is taken. Returns (patient, True) when inserted, (stored, False) when
    the document was already stored, (None, False) when a concurrent writer stored it while this insert waited."""
    fields = _insert_fields()
    values = _insert_values(patient, fields)
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute(_insert_sql(fields, 1, "id"), values)
            row = cursor.fetchone()
            if row is not None:
                mark_saved(patient, row[0], connection.alias)
                return patient, True
            return _by_document(key), False
        cursor.execute(_insert_or_find_sql(), [*values, *key])
        row = cursor.fetchone()
    if row is None:
        return None, False
    if row[0]:
        mark_saved(patient, row[1], connection.alias)
        return patient, True
    stored = Patient.from_db(connection.alias, ["id", *(f.attname for f in fields)], row[1:])
    return stored, False


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
    found, created = _insert_or_find(_new_patient(data, guardian), key)
    if created:
        assert found is not None
        return found, True
    if found is None:
        # Another request registered the same document a moment ago: use theirs.
        stored = Patient.objects.with_document().get(
            document_type_id=key[0], document_number=key[1], document_issuer=key[2]
        )
        return stored, False
    changed = _refresh_contact(found, data)
    if changed:
        found.save(update_fields=[*changed, "updated_at"])
    return found, False


#: Rows per INSERT statement of a batch (PostgreSQL allows 65,535 parameters per statement, SQLite 32,766).
_INSERT_CHUNK = 1000


def _insert_many(patients: dict[tuple[int, str, str], Patient]) -> None:
    """Inserts the new patients of a batch, skipping documents stored meanwhile (those stay unsaved, pk None)."""
    fields = _insert_fields()
    items = list(patients.items())
    returning = "id, document_type_id, document_number, document_issuer"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The rows travel as one JSON text that PostgreSQL turns into rows of the table's own type: psycopg
            # escapes nothing (UNNEST arrays cost more to send than the insert) and the statement text is
            # constant, so it is prepared once per connection.
            quote = connection.ops.quote_name
            payload = json_rows([patient for _key, patient in items], fields, connection, pre_save=True)
            columns = ", ".join(quote(f.column) for f in fields)
            table = quote(Patient._meta.db_table)
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} "  # noqa: S608 (names from the model only)
                f"FROM json_populate_recordset(NULL::{table}, %s::json) ON CONFLICT DO NOTHING RETURNING {returning}",
                [payload],
            )
            stored = cursor.fetchall()
        else:
            stored = []
            for start in range(0, len(items), _INSERT_CHUNK):
                chunk = items[start : start + _INSERT_CHUNK]
                values = [v for _key, patient in chunk for v in _insert_values(patient, fields)]
                cursor.execute(_insert_sql(fields, len(chunk), returning), values)
                stored.extend(cursor.fetchall())
    for pk, type_id, number, issuer in stored:
        mark_saved(patients[(type_id, number, issuer)], pk, connection.alias)


def patients_resolve_many(items: Sequence[ResolvedPatient]) -> list[Patient]:
    """Bulk form of `patient_resolve` for batches: one query to find known documents, one insert for new ones."""
    keys = {p.identity_key for p in items if p.identity_key is not None and p.guardian is None}
    known: dict[tuple[int, str, str], Patient] = {}
    if keys:
        numbers = {k[1] for k in keys}
        for patient in Patient.objects.with_document().filter(document_number__in_array=list(numbers)):
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
    fields = sorted({f for _, changed in to_update.values() for f in changed})
    if to_update:
        Patient.objects.bulk_update([p for p, _ in to_update.values()], fields=fields)
    if to_create:
        _insert_many(to_create)
    # Unsaved here: no document, a newborn, or a document stored by a concurrent writer since the look-up.
    return [
        p if p is not None and p.pk is not None else patient_resolve(item)[0]
        for p, item in zip(result, items, strict=True)
    ]
