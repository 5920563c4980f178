"""Loading reference data (countries, territories, the test catalogue) idempotently.

`sync_rows` is the one primitive every loader uses: rows are matched to stored records by a natural key, new
ones are bulk-created, changed ones bulk-updated and identical ones left alone. Re-running a load therefore
writes nothing, and the counts it returns say so ("created 0, updated 0"), which is what makes a deployment
step that always runs `load_reference` safe.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from django.db import models, transaction

ModelT = TypeVar("ModelT", bound=models.Model)

#: A natural key: the values of the key fields, in order.
NaturalKey = tuple[Any, ...]

#: Rows written per INSERT/UPDATE statement; small enough for SQLite's variable limit on wide tables.
BATCH_SIZE = 500


@dataclass(frozen=True)
class LoadCounts:
    """What one load did to one kind of record."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)

    def __add__(self, other: LoadCounts) -> LoadCounts:
        return LoadCounts(
            created=self.created + other.created,
            updated=self.updated + other.updated,
            unchanged=self.unchanged + other.unchanged,
        )

    def __str__(self) -> str:
        return f"{self.total} rows (created {self.created}, updated {self.updated}, unchanged {self.unchanged})"


#: Counts per kind of record, e.g. {"territories.cl_comuna": LoadCounts(...)}.
LoadReport = dict[str, LoadCounts]


@dataclass
class SyncResult(Generic[ModelT]):
    counts: LoadCounts
    # Every synced record (created, updated or unchanged) by natural key, with its primary key set, so the
    # next level of a hierarchy can point at it without querying again.
    by_key: dict[NaturalKey, ModelT] = field(default_factory=dict)
    # Keys of the records this sync created or updated (not the unchanged ones).
    changed_keys: set[NaturalKey] = field(default_factory=set)


def sync_rows(
    queryset: models.QuerySet[ModelT],
    key_fields: Sequence[str],
    rows: Iterable[Mapping[str, Any]],
) -> SyncResult[ModelT]:
    """Make the records in `queryset` match `rows`, matching them by `key_fields`.

    Rows are dicts of concrete field attribute names (use `parent_id`, not `parent`) to values. Records in the
    queryset that no row mentions are left as they are: reference data is never deleted by a load, because
    samples and patients point at it; retire a row by setting `active` to false in the data instead.
    """
    model = queryset.model
    allowed_fields = {concrete.attname for concrete in model._meta.concrete_fields}
    existing: dict[NaturalKey, ModelT] = {
        tuple(getattr(record, name) for name in key_fields): record for record in queryset
    }
    to_create: list[ModelT] = []
    to_update: list[ModelT] = []
    updated_fields: set[str] = set()
    by_key: dict[NaturalKey, ModelT] = {}
    changed_keys: set[NaturalKey] = set()
    unchanged = 0

    for row in rows:
        unknown = set(row) - allowed_fields
        if unknown:
            raise ValueError(f"{model.__name__}: unknown field(s) {sorted(unknown)} in row {dict(row)!r}")
        key = tuple(row[name] for name in key_fields)
        if key in by_key:
            # Two rows with one key would silently overwrite each other: a data error worth stopping for.
            raise ValueError(f"{model.__name__}: duplicate natural key {key!r} in the reference data")
        record = existing.get(key)
        if record is None:
            record = model(**row)
            to_create.append(record)
            changed_keys.add(key)
        else:
            differing = [name for name, value in row.items() if getattr(record, name) != value]
            if differing:
                for name in differing:
                    setattr(record, name, row[name])
                to_update.append(record)
                updated_fields.update(differing)
                changed_keys.add(key)
            else:
                unchanged += 1
        by_key[key] = record

    if to_update:
        model._default_manager.bulk_update(to_update, sorted(updated_fields), batch_size=BATCH_SIZE)
    if to_create:
        model._default_manager.bulk_create(to_create, batch_size=BATCH_SIZE)
        if any(record.pk is None for record in to_create):
            # Backends that cannot return ids from a bulk insert: read the new records back by their keys.
            stored = {tuple(getattr(record, name) for name in key_fields): record for record in queryset.all()}
            by_key = {key: stored[key] for key in by_key}

    counts = LoadCounts(created=len(to_create), updated=len(to_update), unchanged=unchanged)
    return SyncResult(counts=counts, by_key=by_key, changed_keys=changed_keys)


def load_all() -> LoadReport:
    """Load every kind of reference data in dependency order, all or nothing."""
    # Imported here, not at module level: the loaders import `sync_rows` from this module.
    from muestra.catalog.loaders import load_catalog
    from muestra.territories.loaders import (
        load_chile_territories,
        load_countries,
        load_country_profiles,
        load_vietnam_territories,
    )

    report: LoadReport = {}
    with transaction.atomic():
        # Profiles point at countries and territories point at profiles, hence this order.
        report.update(load_countries())
        report.update(load_country_profiles())
        report.update(load_chile_territories())
        report.update(load_vietnam_territories())
        report.update(load_catalog())
    return report
