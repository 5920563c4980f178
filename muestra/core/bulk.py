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
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from django.db import connections, models, router

M = TypeVar("M", bound=models.Model)

_CHUNK = 1000  # rows per statement: far below SQLite's 32,766 parameters with the fields we update

#: Field classes whose database value is the Python value itself when it already has one of these exact types
#: (Django's `get_db_prep_save` would only check and return it). Any other value, and every other field class
#: (JSON, files, decimals, custom fields), goes through Django's own conversion.
_READY_TYPES: dict[type[models.Field[Any, Any]], tuple[type, ...]] = {
    models.AutoField: (int,),
    models.BigAutoField: (int,),
    models.IntegerField: (int,),
    models.BigIntegerField: (int,),
    models.SmallIntegerField: (int,),
    models.PositiveIntegerField: (int,),
    models.PositiveSmallIntegerField: (int,),
    models.PositiveBigIntegerField: (int,),
    models.CharField: (str,),
    models.TextField: (str,),
    models.EmailField: (str,),
    models.SlugField: (str,),
    models.BooleanField: (bool,),
    models.DateField: (date,),
    models.UUIDField: (uuid.UUID,),
}


def _ready_types(field: Any) -> tuple[type, ...]:
    if isinstance(field, models.ForeignKey) and type(field) is models.ForeignKey:
        return _ready_types(field.target_field)
    if type(field) is models.DateTimeField:
        return ()  # timezone-aware or not is checked per value below
    return _READY_TYPES.get(type(field), ())


def _needs_pre_save(field: Any) -> bool:
    """Fields whose `pre_save` does more than read the attribute: auto_now dates, files."""
    return bool(getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)) or isinstance(
        field, models.FileField
    )


_Plan = list[tuple[Any, str, bool, tuple[type, ...], bool]]


def _plan(fields: Sequence[Any], *, pre_save: bool = True) -> _Plan:
    """Per field once: how to read its value and whether Django must convert it. Running every value through
    `pre_save` + `get_db_prep_save` was half the time of a bulk insert for values that need nothing. Updates
    (`pre_save=False`) read the attributes as they are, as `bulk_update` does."""
    return [
        (
            field,
            field.attname,
            pre_save and _needs_pre_save(field),
            _ready_types(field),
            type(field) is models.DateTimeField,
        )
        for field in fields
    ]


def prepared_rows(objs: Sequence[models.Model], fields: Sequence[Any], connection: Any) -> list[list[Any]]:
    """The database values of `fields` for each new object, as `Model.save()` would insert them (auto_now dates
    filled, every value prepared by its field unless it already is what the database takes)."""
    plan = _plan(fields)
    return [_copy_row(plan, obj, connection) for obj in objs]


def _copy_row(plan: _Plan, obj: Any, connection: Any) -> list[Any]:
    row = []
    for field, attname, pre_save, ready, is_datetime in plan:
        value = field.pre_save(obj, True) if pre_save else getattr(obj, attname)
        aware = is_datetime and type(value) is datetime and value.tzinfo is not None
        if value is not None and type(value) not in ready and not aware:
            value = field.get_db_prep_save(value, connection)
        row.append(value)
    return row


_constructor_plans: dict[type[models.Model], list[tuple[str, Callable[[], Any] | None, Any]]] = {}


def new_instance(model: type[M], values: dict[str, Any]) -> M:
    """A new, unsaved `model` instance from attribute values (`<fk>_id`, never related objects); fields not given
    take their defaults.

    Built through Django's positional fast path (the one `Model.from_db` uses): keyword construction resolves
    every name, default and related descriptor and was the largest single cost of writing events by the thousand.
    """
    plan = _constructor_plans.get(model)
    if plan is None:
        plan = []
        for field in model._meta.concrete_fields:
            if field.has_default() and callable(field.default):
                plan.append((field.attname, field.default, None))
            else:
                plan.append((field.attname, None, field.get_default()))
        _constructor_plans[model] = plan
    unknown = values.keys() - {attname for attname, _factory, _constant in plan}
    if unknown:
        raise TypeError(f"{model.__name__} has no fields {sorted(unknown)}")
    args = [
        values[attname] if attname in values else (factory() if factory is not None else constant)
        for attname, factory, constant in plan
    ]
    return model(*args)


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
    plan = _plan(columns, pre_save=False)
    with connection.cursor() as cursor:
        for start in range(0, len(objs), _CHUNK):
            chunk = objs[start : start + _CHUNK]
            params: list[Any] = []
            for obj in chunk:
                params.extend(_copy_row(plan, obj, connection))
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
        plan = _plan(fields)
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for obj in objs:
                copy.write_row(_copy_row(plan, obj, connection))
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
    return list(objs)
