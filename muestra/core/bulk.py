"""Set-based writes for the batch paths (thousands of results per request or file chunk).

`bulk_insert_rows` inserts with PostgreSQL's COPY: Django's multi-row `INSERT … VALUES` for 500 rows is a
~100 kB statement that psycopg scans character by character for placeholders on every call (statements that
long are not cached), ~20 ms per statement, more than the database's own work; UNNEST arrays avoid that but
escape every JSON text again. COPY has neither cost. Other databases use `bulk_create`.

Django's `QuerySet.bulk_update` builds one `CASE WHEN id = … THEN …` expression per field per row: for a chunk of
500 samples and 7 fields that is 3,500 resolved expressions, and it cost ~80% of a results file's processing
time. `bulk_update_rows` sends the same change as one `UPDATE … FROM …` statement: on PostgreSQL the rows travel as
one JSON document (`json_populate_recordset`), on SQLite (3.33+) as a VALUES list; other databases fall back to
`bulk_update`. The batch of new patients travels the same way (`json_rows`), because it needs `ON CONFLICT`.

Values are converted per field once (`_plan`): a value that already has the column's type goes as it is, anything
else through Django's own `get_db_prep_save`, so what is stored is what `save()` would store.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from django.db import connections, models, router
from django.db.models import QuerySet, signals
from django.db.models.base import ModelState

M = TypeVar("M", bound=models.Model)

_CHUNK = 1000  # rows per statement: far below SQLite's 32,766 parameters with the fields we update

#: Field classes whose database value is the Python value itself when it already has one of these exact types
#: (Django's `get_db_prep_save` would only check and return it). Any other value, and every other field class
#: (JSON, files, decimals, custom fields), goes through Django's own conversion. On PostgreSQL only: SQLite
#: stores dates, times and UUIDs as text that Django formats itself, so there only numbers and text pass as they
#: are (`_PORTABLE`).
_TEXT: tuple[type, ...] = (str,)
_PORTABLE = (int, str)
_READY_TYPES: dict[type[models.Field[Any, Any]], tuple[type, ...]] = {
    models.AutoField: (int,),
    models.BigAutoField: (int,),
    models.IntegerField: (int,),
    models.BigIntegerField: (int,),
    models.SmallIntegerField: (int,),
    models.PositiveIntegerField: (int,),
    models.PositiveSmallIntegerField: (int,),
    models.PositiveBigIntegerField: (int,),
    models.CharField: _TEXT,
    models.TextField: _TEXT,
    models.EmailField: _TEXT,
    models.SlugField: _TEXT,
    models.BooleanField: (bool,),
    models.DateField: (date,),
    models.UUIDField: (uuid.UUID,),
}


def _ready_types(field: Any, *, native: bool) -> tuple[type, ...]:
    if isinstance(field, models.ForeignKey) and type(field) is models.ForeignKey:
        return _ready_types(field.target_field, native=native)
    if type(field) is models.DateTimeField:
        return ()  # timezone-aware or not is checked per value below
    ready = _READY_TYPES.get(type(field), ())
    return ready if native or (ready and ready[0] in _PORTABLE) else ()


def _needs_pre_save(field: Any) -> bool:
    """Fields whose `pre_save` does more than read the attribute: auto_now dates, files."""
    return bool(getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)) or isinstance(
        field, models.FileField
    )


_Plan = list[tuple[Any, str, bool, tuple[type, ...], bool]]


#: JSON values that go into a JSON document as they are (`json_values=True` below).
_JSON_TYPES = (dict, list, str, int, float, bool)


def _plan(fields: Sequence[Any], connection: Any, *, pre_save: bool = True, json_values: bool = False) -> _Plan:
    """Per field once: how to read its value and whether Django must convert it. Running every value through
    `pre_save` + `get_db_prep_save` was half the time of a bulk insert for values that need nothing. Updates
    (`pre_save=False`) read the attributes as they are, as `bulk_update` does; `json_values` keeps the values of
    JSON fields as Python data, for rows sent inside one JSON document."""
    native = connection.vendor == "postgresql"
    return [
        (
            field,
            field.attname,
            pre_save and _needs_pre_save(field),
            _JSON_TYPES if json_values and isinstance(field, models.JSONField) else _ready_types(field, native=native),
            native and type(field) is models.DateTimeField,
        )
        for field in fields
    ]


def _json_scalar(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_rows(objs: Sequence[models.Model], fields: Sequence[Any], connection: Any, *, pre_save: bool) -> str:
    """The rows as one JSON array of objects keyed by column, for PostgreSQL's `json_populate_recordset`: one
    parameter whatever the number of rows, so the statement text stays the same (prepared once per connection)
    and neither psycopg nor the server parses thousands of placeholders."""
    plan = _plan(fields, connection, pre_save=pre_save, json_values=True)
    names = [field.column for field in fields]
    return json.dumps(
        [dict(zip(names, _copy_row(plan, obj, connection), strict=True)) for obj in objs], default=_json_scalar
    )


_value_plans: dict[tuple[str, tuple[Any, ...], bool], _Plan] = {}


def db_values(obj: models.Model, fields: Sequence[Any], connection: Any, *, pre_save: bool = True) -> list[Any]:
    """The database values of `fields` of one object, as `save()` would send them (`pre_save` fills auto_now
    dates), through the same per-field plan as the bulk writers, kept per field list."""
    key = (connection.vendor, tuple(fields), pre_save)
    plan = _value_plans.get(key)
    if plan is None:
        plan = _value_plans[key] = _plan(fields, connection, pre_save=pre_save)
    return _copy_row(plan, obj, connection)


_MISSING = object()


def _copy_row(plan: _Plan, obj: Any, connection: Any) -> list[Any]:
    row = []
    # Values are read from the instance's dictionary: a foreign key's `<name>_id` is a descriptor in Django, and
    # going through it for every column of every row cost more than converting the values.
    attrs = obj.__dict__
    for field, attname, pre_save, ready, is_datetime in plan:
        if pre_save:
            value = field.pre_save(obj, True)
        else:
            value = attrs.get(attname, _MISSING)
            if value is _MISSING:
                value = getattr(obj, attname)  # a deferred column: Django loads it
        if value is not None and type(value) not in ready:
            if ready is _TEXT and isinstance(value, str):
                value = str(value)  # a choices member (`SampleState.RESULT`) is stored as its value, as Django does
            elif not (is_datetime and type(value) is datetime and value.tzinfo is not None):
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
    if signals.pre_init.has_listeners(model) or signals.post_init.has_listeners(model):
        return model(*args)
    # What `Model.__init__` does with positional values when nobody listens to its signals: a fresh state and the
    # attributes, without going through the descriptors of a new object that has no related rows cached yet.
    obj = model.__new__(model)
    obj._state = ModelState()
    obj.__dict__.update(zip([attname for attname, _f, _c in plan], args, strict=True))
    return obj


def loaded_rows(queryset: QuerySet[M]) -> list[M]:
    """The queryset's objects (every concrete field loaded, no related rows), built as `Model.from_db` builds
    them but without `Model.__init__`, when nobody listens to its signals: for the batch paths that load
    thousands of rows to change them, where `__init__` setting each foreign key through its descriptor cost a
    fifth of a results file's app CPU. The values are those Django loads (each field's `from_db_value`)."""
    model = queryset.model
    if signals.pre_init.has_listeners(model) or signals.post_init.has_listeners(model):
        return list(queryset)
    attnames = [field.attname for field in model._meta.concrete_fields]
    alias = queryset.db
    objs = []
    for values in queryset.values_list(*attnames):
        obj = model.__new__(model)
        state = obj._state = ModelState()
        state.adding, state.db = False, alias
        obj.__dict__.update(zip(attnames, values, strict=True))
        objs.append(obj)
    return objs


_relation_plans: dict[type[models.Model], list[tuple[str, str, str]]] = {}


def _prepare_related(model: type[models.Model], objs: Sequence[models.Model], operation: str) -> None:
    """`Model._prepare_related_fields_for_save` for many objects, looking only at the related rows an object holds:
    one saved after it was assigned gives its id now, an unsaved one is refused (its id would be lost)."""
    relations = _relation_plans.get(model)
    if relations is None:
        relations = _relation_plans[model] = [
            (field.name, field.attname, field.target_field.attname)
            for field in model._meta.concrete_fields
            if isinstance(field, models.ForeignKey)
        ]
    for obj in objs:
        cache = obj._state.fields_cache
        if not cache:
            continue
        for name, attname, target_attname in relations:
            related = cache.get(name)
            if related is None:
                continue
            if related.pk is None:
                raise ValueError(
                    f"{operation}() prohibited to prevent data loss due to unsaved related object '{name}'."
                )
            if obj.__dict__.get(attname) is None:
                setattr(obj, attname, getattr(related, target_attname))


def bulk_update_rows(model: type[models.Model], objs: Sequence[models.Model], fields: Sequence[str]) -> int:
    """Writes `fields` of every object (already changed in memory) back: one statement on PostgreSQL, one per
    1,000 objects on SQLite.

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
    table = quote(meta.db_table)
    if vendor == "postgresql":
        # The rows as one JSON document turned into rows of the table's own type (so every value is read as its
        # column's type): a constant statement text, prepared once per connection, instead of a VALUES list of
        # thousands of placeholders that psycopg and the server both parse on every call.
        assignments = ", ".join(f"{quote(field.column)} = v.{quote(field.column)}" for field in columns[1:])
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {assignments} "  # noqa: S608 - names quoted
                f"FROM json_populate_recordset(NULL::{table}, %s::json) AS v "
                f"WHERE {table}.{quote(pk.column)} = v.{quote(pk.column)}",
                [json_rows(objs, columns, connection, pre_save=False)],
            )
        return len(objs)
    # SQLite names the columns of a VALUES list column1, column2...
    placeholder = "(" + ", ".join("%s" for _field in columns) + ")"
    assignments = ", ".join(f"{quote(field.column)} = v.column{i}" for i, field in enumerate(columns[1:], start=2))
    written = 0
    plan = _plan(columns, connection, pre_save=False)
    with connection.cursor() as cursor:
        for start in range(0, len(objs), _CHUNK):
            chunk = objs[start : start + _CHUNK]
            params: list[Any] = []
            for obj in chunk:
                params.extend(_copy_row(plan, obj, connection))
            values = ", ".join(placeholder for _obj in chunk)
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM (VALUES {values}) AS v "  # noqa: S608 - names quoted
                f"WHERE {table}.{quote(pk.column)} = v.column1",
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
    # As bulk_create does: a related object saved after this one was built gives its id now.
    _prepare_related(model, objs, "bulk_insert_rows")
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
        plan = _plan(fields, connection)
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for obj in objs:
                copy.write_row(_copy_row(plan, obj, connection))
    for obj in objs:
        mark_saved(obj, obj.pk, connection.alias)
    return list(objs)


def mark_saved(obj: models.Model, pk: Any, alias: str) -> None:
    """What `save()` leaves on an object it inserted: its key, and its state as stored in database `alias`."""
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = alias


_insert_statements: dict[tuple[str, type[models.Model], int], tuple[str, _Plan]] = {}


def insert_rows(model: type[M], objs: Sequence[M]) -> list[M]:
    """Inserts a few new objects (no primary key yet) with one `INSERT … RETURNING id` and sets their keys.

    For the one-by-one paths (a single registration, the few events of one change), where COPY would cost a
    statement more: the statement text is built once per model and row count and the values prepared by the
    same per-field plan as `bulk_insert_rows`, instead of compiling an ORM insert each time. Like `bulk_create`:
    no `save()`, no signals. Databases without `RETURNING` use `bulk_create`.
    """
    if not objs:
        return list(objs)
    connection = connections[router.db_for_write(model)]
    if connection.vendor not in ("postgresql", "sqlite") or any(obj.pk is not None for obj in objs):
        return model._default_manager.bulk_create(objs)
    key = (connection.vendor, model, len(objs))
    cached = _insert_statements.get(key)
    if cached is None:
        meta = model._meta
        pk = meta.pk
        assert pk is not None
        fields = [field for field in meta.concrete_fields if field is not pk]
        quote = connection.ops.quote_name
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        sql = (
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
            f"VALUES {', '.join([row] * len(objs))} RETURNING {quote(pk.column)}"
        )
        cached = _insert_statements[key] = (sql, _plan(fields, connection))
    sql, plan = cached
    # As bulk_create does: a related object saved after this one was built gives its id now.
    _prepare_related(model, objs, "insert_rows")
    params: list[Any] = []
    for obj in objs:
        params.extend(_copy_row(plan, obj, connection))
    # psycopg's and sqlite3's own errors (a unique code taken meanwhile) surface as Django's IntegrityError.
    with connection.wrap_database_errors, connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [row[0] for row in cursor.fetchall()]
    for obj, new_id in zip(objs, ids, strict=True):
        mark_saved(obj, new_id, connection.alias)
    return list(objs)
