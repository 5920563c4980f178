"""Load the test catalogue from its versioned data file (`data/catalog_v1.json`).

The file is the source of truth for what it states: each row is matched to the stored record by `code` and the
fields written in the file are set on it. Fields the file leaves out are not touched, so an administrator's
choice there (typically `active`) survives a reload; to clear a value, write it empty in the file. Rows are never
deleted by a load, because samples point at them: retire one with `"active": false`.

References between rows (a test's disease, sample types and result values; a strategy's parent) are written
as codes, and an unknown code stops the load with a message naming it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.db import models

from muestra.catalog.models import (
    Disease,
    HealthInsurance,
    IdentityDocumentType,
    RejectionReason,
    ResultValue,
    SampleType,
    Strategy,
    Test,
)
from muestra.core.reference import LoadCounts, LoadReport, sync_rows

CATALOG_FILE = Path(__file__).resolve().parent / "data" / "catalog_v1.json"

#: Sections that are plain rows (no references to other rows), in the order they are loaded.
PLAIN_SECTIONS: tuple[tuple[str, type[models.Model]], ...] = (
    ("diseases", Disease),
    ("sample_types", SampleType),
    ("result_values", ResultValue),
    ("rejection_reasons", RejectionReason),
    ("identity_document_types", IdentityDocumentType),
    ("health_insurances", HealthInsurance),
)


def read_catalog(path: Path = CATALOG_FILE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        catalog: dict[str, Any] = json.load(handle)
    return catalog


def _ids_by_code(model: type[models.Model]) -> dict[str, int]:
    return dict(model._default_manager.values_list("code", "pk"))


def _resolve(ids_by_code: dict[str, int], code: str, what: str, owner: str) -> int:
    try:
        return ids_by_code[code]
    except KeyError:
        raise ValueError(f"Catalogue: {owner} refers to unknown {what} {code!r}") from None


def _load_tests(rows: list[dict[str, Any]]) -> LoadCounts:
    disease_ids = _ids_by_code(Disease)
    sample_type_ids = _ids_by_code(SampleType)
    result_value_ids = _ids_by_code(ResultValue)

    scalar_rows: list[dict[str, Any]] = []
    wanted_links: dict[str, tuple[set[int], set[int]]] = {}
    for row in rows:
        scalar = {
            name: value for name, value in row.items() if name not in {"disease", "sample_types", "result_values"}
        }
        scalar["disease_id"] = _resolve(disease_ids, row["disease"], "disease", row["code"])
        scalar_rows.append(scalar)
        wanted_links[row["code"]] = (
            {_resolve(sample_type_ids, code, "sample type", row["code"]) for code in row.get("sample_types", [])},
            {_resolve(result_value_ids, code, "result value", row["code"]) for code in row.get("result_values", [])},
        )

    result = sync_rows(Test.objects.prefetch_related("sample_types", "result_values"), ["code"], scalar_rows)

    relinked: set[str] = set()
    for (code,), test in result.by_key.items():
        wanted_sample_types, wanted_result_values = wanted_links[code]
        # New tests have no prefetch cache; `.all()` on them just finds nothing.
        current_sample_types = {sample_type.pk for sample_type in test.sample_types.all()}
        current_result_values = {result_value.pk for result_value in test.result_values.all()}
        if current_sample_types != wanted_sample_types:
            test.sample_types.set(wanted_sample_types)
            relinked.add(code)
        if current_result_values != wanted_result_values:
            test.result_values.set(wanted_result_values)
            relinked.add(code)

    # A test whose only change is its links counts as updated, not unchanged.
    newly_updated = len({code for code in relinked if (code,) not in result.changed_keys})
    counts = result.counts
    return LoadCounts(counts.created, counts.updated + newly_updated, counts.unchanged - newly_updated)


def _load_strategies(rows: list[dict[str, Any]]) -> LoadCounts:
    """Strategies form a tree (BAC Brotes -> BAC Escolar...): load parents first, a generation at a time."""
    counts = LoadCounts()
    pending = list(rows)
    while pending:
        stored_ids = _ids_by_code(Strategy)
        loaded_codes = {row["code"] for row in rows} - {row["code"] for row in pending}
        ready = [row for row in pending if row.get("parent") is None or row["parent"] in loaded_codes]
        if not ready:
            unresolved = sorted({row["parent"] for row in pending})
            raise ValueError(f"Catalogue: strategy parent(s) {unresolved} unknown or in a cycle")
        generation = []
        for row in ready:
            scalar = {name: value for name, value in row.items() if name != "parent"}
            parent_code = row.get("parent")
            scalar["parent_id"] = stored_ids[parent_code] if parent_code else None
            generation.append(scalar)
        counts += sync_rows(Strategy.objects.all(), ["code"], generation).counts
        pending = [row for row in pending if row not in ready]
    return counts


def load_catalog(path: Path = CATALOG_FILE) -> LoadReport:
    """Load every section of the catalogue file; returns counts per section ("catalog.tests": ...)."""
    catalog = read_catalog(path)
    report: LoadReport = {}
    for section, model in PLAIN_SECTIONS:
        report[f"catalog.{section}"] = sync_rows(
            model._default_manager.all(), ["code"], catalog.get(section, [])
        ).counts
    # Tests refer to diseases, sample types and result values, so they come after those.
    report["catalog.tests"] = _load_tests(catalog.get("tests", []))
    report["catalog.strategies"] = _load_strategies(catalog.get("strategies", []))
    return report
