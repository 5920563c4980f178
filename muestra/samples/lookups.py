"""Cached look-ups of reference rows by code, used on every registration.

The catalogue and the facility list change rarely (an administrator's edit) but are read for every sample, so
each process keeps a copy for a short time instead of querying per row. A stale entry lives at most
`_TTL_SECONDS`; `clear()` drops everything (tests and admin saves call it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from django.db.models import Model

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
from muestra.facilities.models import Establishment, LabAssignment, Laboratory
from muestra.territories.models import Country, Territory, TerritoryLevel

_TTL_SECONDS = 60.0
_lock = threading.Lock()
_cache: dict[Hashable, tuple[float, Any]] = {}

T = TypeVar("T")
M = TypeVar("M", bound=Model)


def clear() -> None:
    with _lock:
        _cache.clear()


def _cached(key: Hashable, build: Callable[[], T]) -> T:
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is not None and now - hit[0] < _TTL_SECONDS:
        return hit[1]  # type: ignore[no-any-return]
    value = build()
    with _lock:
        _cache[key] = (now, value)
    return value


def _index(model: type[M], *fields: str, active_only: bool = True) -> dict[str, M]:
    def build() -> dict[str, M]:
        qs = model._default_manager.all()
        if active_only and any(f.name == "active" for f in model._meta.fields):
            qs = qs.filter(active=True)
        index: dict[str, M] = {}
        for row in qs:
            for f in fields:
                value = getattr(row, f)
                if value not in (None, ""):
                    index.setdefault(str(value).casefold(), row)
        return index

    # A tuple key: this runs several times per registered sample, and formatting a string key cost more than
    # the dictionary look-up itself.
    return _cached((model, fields, active_only), build)


def _get(model: type[M], code: Any, *fields: str) -> M | None:
    if code is None:
        return None
    return _index(model, *fields).get(str(code).strip().casefold())


def test(code: Any) -> Test | None:
    return _get(Test, code, "code")


def test_for_pntm(technique: Any, disease_code: str) -> Test | None:
    """The test the national platform meant by `tecnica_muestra` within one module (COVID-19 or Mpox)."""
    wanted = str(technique or "").strip().casefold()
    for candidate in _index(Test, "code").values():
        candidate_disease = disease(candidate.disease_id)
        if (
            candidate.pntm_name.casefold() == wanted
            and candidate_disease is not None
            and candidate_disease.code == disease_code
        ):
            return candidate
    return None


def disease(code_or_id: Any) -> Disease | None:
    if isinstance(code_or_id, int):
        return by_pk(Disease, code_or_id)
    return _get(Disease, code_or_id, "code")


def sample_type(code: Any) -> SampleType | None:
    return _get(SampleType, code, "code", "pntm_name", "snomed_code")


def result_value(code: Any) -> ResultValue | None:
    return _get(ResultValue, code, "code", "pntm_name", "snomed_code")


def rejection_reason(code: Any) -> RejectionReason | None:
    return _get(RejectionReason, code, "code", "pntm_name")


def strategy(code: Any) -> Strategy | None:
    return _get(Strategy, code, "code", "pntm_name")


def document_type(code: Any) -> IdentityDocumentType | None:
    return _get(IdentityDocumentType, code, "code", "pntm_name")


def insurance(code: Any) -> HealthInsurance | None:
    return _get(HealthInsurance, code, "code", "pntm_name")


#: Prefix that marks a country given by the national platform's own id (e.g. "pntm:499" = Chile) rather than by
#: ISO 3166 numeric code; 73 numbers are valid in both lists, so the two must never be guessed from the value.
PNTM_COUNTRY_PREFIX = "pntm:"


def country(code: Any) -> Country | None:
    """By ISO numeric code ("152", "32" = "032"), or by national platform id written "pntm:499"."""
    if code is None or str(code).strip() == "":
        return None
    text = str(code).strip()
    if text.startswith(PNTM_COUNTRY_PREFIX):
        pntm_id = text.removeprefix(PNTM_COUNTRY_PREFIX)
        return _index(Country, "pntm_id", active_only=False).get(str(int(pntm_id))) if pntm_id.isdigit() else None
    if text.isdigit() and len(text) <= 3:
        return _index(Country, "iso_numeric", active_only=False).get(text.zfill(3))
    return None


def comuna_or_district(code: Any) -> Territory | None:
    """A place of residence: Chilean comuna by CUT (05101) or DEIS (5101) code, Vietnamese province/district."""
    if code is None or str(code).strip() == "":
        return None
    index = _cached("residence-index", _build_residence_index)
    return index.get(str(code).strip())


def _build_residence_index() -> dict[str, Territory]:
    index: dict[str, Territory] = {}
    levels = [
        TerritoryLevel.CL_COMUNA,
        TerritoryLevel.VN_PROVINCE,
        TerritoryLevel.VN_LEGACY_PROVINCE,
        TerritoryLevel.VN_DISTRICT,
    ]
    for t in Territory.objects.filter(level__in=levels).select_related("profile"):
        if t.level == TerritoryLevel.CL_COMUNA:
            index.setdefault(t.code, t)
            index.setdefault(t.alt_code, t)
        else:
            index.setdefault(f"VN:{t.level}:{t.code}", t)
    return index


def establishment(code: Any) -> Establishment | None:
    return _get(Establishment, code, "code")


def laboratory(platform_id: Any) -> Laboratory | None:
    text = str(platform_id or "").strip()
    if not text.isdigit():
        return None
    return _index(Laboratory, "platform_id").get(str(int(text)))


def laboratory_by_pk(pk: int | None) -> Laboratory | None:
    # Retired labs included: samples still point at a lab an administrator has since deactivated.
    return by_pk(Laboratory, pk)


def lab_disease_ids(laboratory_id: int) -> frozenset[int]:
    def build() -> dict[int, frozenset[int]]:
        pairs: dict[int, set[int]] = {}
        for lab_id, disease_id in Laboratory.diseases.through.objects.values_list("laboratory_id", "disease_id"):
            pairs.setdefault(lab_id, set()).add(disease_id)
        return {k: frozenset(v) for k, v in pairs.items()}

    return _cached("lab-diseases", build).get(laboratory_id, frozenset())


def assigned_lab_ids(establishment_id: int) -> frozenset[int]:
    def build() -> dict[int, frozenset[int]]:
        pairs: dict[int, set[int]] = {}
        for est_id, lab_id in LabAssignment.objects.filter(active=True).values_list(
            "establishment_id", "laboratory_id"
        ):
            pairs.setdefault(est_id, set()).add(lab_id)
        return {k: frozenset(v) for k, v in pairs.items()}

    return _cached("assignments", build).get(establishment_id, frozenset())


def test_allowed(test_obj: Test) -> tuple[frozenset[int], frozenset[int]]:
    """The ids of the sample types and of the result values the catalogue allows for `test_obj`."""

    def build() -> dict[int, tuple[frozenset[int], frozenset[int]]]:
        types: dict[int, set[int]] = {}
        values: dict[int, set[int]] = {}
        for t_id, st_id in Test.sample_types.through.objects.values_list("test_id", "sampletype_id"):
            types.setdefault(t_id, set()).add(st_id)
        for t_id, rv_id in Test.result_values.through.objects.values_list("test_id", "resultvalue_id"):
            values.setdefault(t_id, set()).add(rv_id)
        return {t: (frozenset(types.get(t, ())), frozenset(values.get(t, ()))) for t in set(types) | set(values)}

    return _cached("test-accepts", build).get(test_obj.pk, (frozenset(), frozenset()))


def test_accepts(test_obj: Test, *, sample_type_id: int | None = None, result_value_id: int | None = None) -> bool:
    allowed_types, allowed_values = test_allowed(test_obj)
    if sample_type_id is not None and sample_type_id not in allowed_types:
        return False
    return not (result_value_id is not None and result_value_id not in allowed_values)


def active_rows(model: type[M]) -> list[M]:
    """Every active row of a reference table (catalogue, establishments, labs), from the cache, in primary-key
    order: what a screen offers in its option lists without a query per page."""
    return sorted(_index(model, "pk").values(), key=lambda row: row.pk)


def countries() -> list[Country]:
    """Every country (issuing countries, nationalities), from the cache, by name."""
    return sorted(_index(Country, "pk", active_only=False).values(), key=lambda row: row.name)


def residences(profile_code: str) -> list[tuple[str, Territory]]:
    """The places of residence of a country profile as (code accepted by `comuna_or_district`, territory): Chilean
    comunas by CUT code, Vietnamese 2025 provinces; from the cache, by name."""
    return _cached(f"residences:{profile_code}", lambda: _residences(profile_code))


def _residences(profile_code: str) -> list[tuple[str, Territory]]:
    index = _cached("residence-index", _build_residence_index)
    seen: set[int] = set()
    result: list[tuple[str, Territory]] = []
    for code, territory in index.items():
        if territory.pk in seen or territory.profile.code != profile_code:
            continue
        if territory.level == TerritoryLevel.CL_COMUNA and code != territory.code:
            continue  # the CUT form; the DEIS form of the same comuna is an alias
        if territory.level in (TerritoryLevel.VN_LEGACY_PROVINCE, TerritoryLevel.VN_DISTRICT):
            continue  # only today's provinces are offered; older codes stay accepted from other systems
        seen.add(territory.pk)
        result.append((code, territory))
    return sorted(result, key=lambda item: item[1].name)


def by_pk(model: type[M], pk: int | None) -> M | None:
    """A reference row by primary key, retired rows included (old samples point at them), from the cache;
    a row created since the cache was filled is fetched and added."""
    if pk is None:
        return None
    index = _index(model, "pk", active_only=False)
    row = index.get(str(pk))
    if row is None:
        row = model._default_manager.filter(pk=pk).first()
        if row is not None:
            with _lock:
                index[str(pk)] = row
    return row


#: Foreign keys of a sample that point at reference data, attached from the cache instead of joined.
SAMPLE_REFERENCE_FIELDS: dict[str, type[Model]] = {
    "establishment": Establishment,
    "laboratory": Laboratory,
    "disease": Disease,
    "test": Test,
    "sample_type": SampleType,
    "strategy": Strategy,
    "substrategy": Strategy,
    "result_value": ResultValue,
    "rejection_reason": RejectionReason,
}
PATIENT_REFERENCE_FIELDS: dict[str, type[Model]] = {
    "document_type": IdentityDocumentType,
    "residence": Territory,
    "insurance": HealthInsurance,
    "nationality": Country,
}


def attach_reference_rows(samples: Any) -> None:
    """Fills the reference foreign keys of `samples` (and of their patients) from the cache.

    Joining a dozen small reference tables made PostgreSQL spend ~45 ms *planning* each sample query; these rows
    are already in memory, so attaching them costs nothing and keeps every sample query to one or two joins.
    """
    for sample in samples:
        for name, model in SAMPLE_REFERENCE_FIELDS.items():
            pk = getattr(sample, f"{name}_id")
            if pk is not None and not sample._state.fields_cache.get(name):
                sample._state.fields_cache[name] = by_pk(model, pk)
        patient = sample._state.fields_cache.get("patient")
        if patient is not None:
            for name, model in PATIENT_REFERENCE_FIELDS.items():
                pk = getattr(patient, f"{name}_id")
                if pk is not None and not patient._state.fields_cache.get(name):
                    patient._state.fields_cache[name] = by_pk(model, pk)


def active_result_values() -> list[ResultValue]:
    """Every active result value, by code (from the cache)."""
    return sorted({row.pk: row for row in _index(ResultValue, "code").values()}.values(), key=lambda row: row.code)
