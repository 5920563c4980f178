"""Set-based writes for the batch paths (thousands of results per request or file chunk).

`bulk_insert_rows` inserts with PostgreSQL's COPY: Django's multi-row `INSERT … VALUES` for 500 rows is a
~100 kB statement that psycopg scans character by character for placeholders on every call (statements that
long are not cached), ~20 ms per statement, more than the database's own work; UNNEST arrays avoid that but
escape every JSON text again. COPY has neither cost. Other databases use `bulk_create`.

Django's `QuerySet.bulk_update` builds one `CASE WHEN id = … THEN …` expression per field per row: for a chunk of
500 samples and 7 fields that is 3,500 resolved expressions, and it cost ~80% of a results file's processing
time. `bulk_update_rows` sends the same change as one `UPDATE … FROM (VALUES …)` statement, which PostgreSQL and
SQLite (3.33+) both understand; other databases fall back to `bulk_update`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import connections, models, router

M = TypeVar("M", bound=models.Model)

_CHUNK = 1000  # rows per statement: far below SQLite's 32,766 parameters with the fields we update


def bulk_update_rows(model: type[models.Model], objs: Sequence[models.Model], fields: Sequence[str]) -> int:
    """Writes `fields` of every object (already changed in memory) back in one statement per 1,000 objects.

    Like `bulk_update`, it sends no signals and does not run `save()`: callers set `auto_now` fields themselves.
    Returns the number of objects written.
    """
    if not objs:
        return 0
    connection = connections[router.db_for_write(model)]
    vendor = connection.vendor
    if vendor not in ("postgresql", "sqlite") or (vendor == "sqlite" and sqlite3.sqlite_version_info < (3, 33)):
        return model._default_manager.bulk_update(objs, list(fields))  # type: ignore[no-any-return]
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    columns: list[Any] = [pk, *(meta.get_field(name) for name in fields)]
    quote = connection.ops.quote_name
    if vendor == "postgresql":
        # Every value cast to its column's type, so the VALUES list never guesses (NULLs, jsonb, timestamps).
        placeholder = "(" + ", ".join(f"%s::{field.db_type(connection)}" for field in columns) + ")"
        names = ", ".join(quote(field.column) for field in columns)
        alias = f"v ({names})"
        source = [quote(field.column) for field in columns]
    else:
        placeholder = "(" + ", ".join("%s" for _field in columns) + ")"
        alias = "v"
        source = [f"column{i}" for i in range(1, len(columns) + 1)]
    assignments = ", ".join(
        f"{quote(field.column)} = v.{src}" for field, src in zip(columns[1:], source[1:], strict=True)
    )
    table = quote(meta.db_table)
    written = 0
    with connection.cursor() as cursor:
        for start in range(0, len(objs), _CHUNK):
            chunk = objs[start : start + _CHUNK]
            params: list[Any] = []
            for obj in chunk:
                for field in columns:
                    params.append(field.get_db_prep_save(getattr(obj, field.attname), connection))
            values = ", ".join(placeholder for _obj in chunk)
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM (VALUES {values}) AS {alias} "  # noqa: S608 - names quoted
                f"WHERE {table}.{quote(pk.column)} = v.{source[0]}",
                params,
            )
            written += len(chunk)
    return written


def bulk_insert_rows(model: type[M], objs: Sequence[M]) -> list[M]:
    """Inserts new objects in one COPY on PostgreSQL (`bulk_create` elsewhere) and sets their primary keys.

    Like `bulk_create`: no `save()`, no signals; `auto_now`/`auto_now_add` and file fields are prepared by their
    `pre_save` as Django does. The ids are taken from the table's sequence first (one short query), so callers
    get them as with `bulk_create` on PostgreSQL.
    """
    if not objs:
        return list(objs)
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        return model._default_manager.bulk_create(objs)
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    fields: list[Any] = list(meta.concrete_fields)
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    for obj in objs:
        # As bulk_create does: a related object saved after this one was built gives its id now.
        obj._prepare_related_fields_for_save(operation_name="bulk_insert_rows")  # type: ignore[attr-defined]
    # psycopg's own errors (a unique code taken meanwhile) surface as Django's, e.g. IntegrityError.
    with connection.wrap_database_errors, connection.cursor() as cursor:
        missing = [obj for obj in objs if obj.pk is None]
        if missing:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [meta.db_table, pk.column, len(missing)],
            )
            for obj, (new_id,) in zip(missing, cursor.fetchall(), strict=True):
                obj.pk = new_id
        columns = ", ".join(quote(field.column) for field in fields)
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for obj in objs:
                copy.write_row([field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields])
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
    return list(objs)
