"""Load countries, country profiles and territories from the CSV files shipped in `data/`.

Every function is idempotent: records are matched by natural key (a country's platform id or ISO code, a
profile's alpha-2 code, a territory's (profile, level, code)), so running a loader again changes nothing unless
the data files changed. Parents are always loaded before their children because a territory's `path` is built
from its parent's path (`Territory.build_path`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db.models import F

from muestra.core.reference import LoadCounts, LoadReport, SyncResult, sync_rows
from muestra.territories.models import Country, CountryProfile, Territory, TerritoryLevel

DATA_DIR = Path(__file__).resolve().parent / "data"


def read_csv(file_name: str) -> list[dict[str, str]]:
    """Rows of one shipped CSV file as dicts of text (codes stay text so leading zeros survive)."""
    with (DATA_DIR / file_name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# --- Countries ------------------------------------------------------------------------------------------------

#: ISO numeric codes that Chile's platform list (pntm_countries.csv) has missing or wrong, by platform id.
#: Corrected from the DEIS list so the country is found by its real ISO code and the DEIS-only pass below does
#: not add a second row for it. "Congo" 505/506 (both 178) is left alone: which one meant DR Congo is unknown.
ISO_NUMERIC_CORRECTIONS: dict[int, str] = {
    541: "254",  # Guayana Francesa: the source has 328, which is Guyana's code
    571: "580",  # Islas Marianas del Norte: missing
    576: "581",  # Islas Ultramarinas Menores de Estados Unidos: missing
    657: "663",  # San Martín (Francia): missing
    672: "729",  # Sudán: the source has 736, the code withdrawn when South Sudan split off in 2011
    703: "894",  # Zambia: missing
    704: "716",  # Zimbabue: missing
}

#: Words kept in lower case when the upper-case DEIS names are turned into display names.
_LOWER_CASE_WORDS = {"de", "del", "la", "las", "los", "y", "e"}


def display_case(upper_case_name: str) -> str:
    """'REPUBLICA DEMOCRATICA DEL CONGO' -> 'Republica Democratica del Congo' (DEIS names are all capitals)."""
    words = []
    for position, word in enumerate(upper_case_name.lower().split(" ")):
        if position > 0 and word in _LOWER_CASE_WORDS:
            words.append(word)
            continue
        # Capitalise the first letter even after punctuation: "(parte" -> "(Parte".
        first_letter = next((index for index, char in enumerate(word) if char.isalpha()), None)
        if first_letter is not None:
            word = word[:first_letter] + word[first_letter].upper() + word[first_letter + 1 :]
        words.append(word)
    return " ".join(words)


def load_countries() -> LoadReport:
    """Countries of Chile's platform list (with their platform id), then DEIS countries missing from it."""
    deis_names = {row["code"]: row["name"] for row in read_csv("deis_countries.csv")}

    platform_rows: list[dict[str, Any]] = []
    for row in read_csv("pntm_countries.csv"):
        pntm_id = int(row["pntm_id"])
        iso_numeric = ISO_NUMERIC_CORRECTIONS.get(pntm_id, row["iso_numeric"])
        platform_rows.append(
            {
                "pntm_id": pntm_id,
                "name": row["name"],
                "iso_numeric": iso_numeric,
                # Re-joined on the corrected code, so a corrected row gets its real DEIS name.
                "deis_name": deis_names.get(iso_numeric, ""),
            }
        )
    platform = sync_rows(Country.objects.filter(pntm_id__isnull=False), ["pntm_id"], platform_rows)

    known_iso_codes = {row["iso_numeric"] for row in platform_rows}
    deis_only_rows = [
        {"iso_numeric": code, "name": display_case(name), "deis_name": name, "pntm_id": None}
        for code, name in deis_names.items()
        if code not in known_iso_codes
    ]
    deis_only = sync_rows(Country.objects.filter(pntm_id__isnull=True), ["iso_numeric"], deis_only_rows)
    return {"territories.country": platform.counts + deis_only.counts}


# --- Country profiles -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CountryProfileSpec:
    code: str
    name: str
    default_language: str
    time_zone: str
    phone_country_code: str
    # Digits of a mobile number as dialled inside the country without any trunk prefix: the number that gets an
    # SMS with the result is stored as country code + these digits.
    phone_national_digits: int
    iso_numeric: str


COUNTRY_PROFILES: tuple[CountryProfileSpec, ...] = (
    # Chile: every number has 9 digits since 2016 (mobiles 9XXXXXXXX, Santiago landlines 2XXXXXXXX).
    CountryProfileSpec("CL", "Chile", "es", "America/Santiago", "+56", 9, "152"),
    # Vietnam: mobiles are written 0XX XXX XXXX; the leading 0 is the trunk prefix, dropped after +84, leaving 9
    # digits. Landlines have 10 digits after the 0 (3-digit area code + 8), but results go to mobiles, so 9.
    CountryProfileSpec("VN", "Vietnam", "vi", "Asia/Ho_Chi_Minh", "+84", 9, "704"),
)


def load_country_profiles() -> LoadReport:
    """The Chile (CL) and Vietnam (VN) profiles, linked to their Country row when countries are loaded."""
    rows = []
    for spec in COUNTRY_PROFILES:
        # Prefer the platform's row when both a platform and a DEIS-only row carry the code.
        country = (
            Country.objects.filter(iso_numeric=spec.iso_numeric).order_by(F("pntm_id").asc(nulls_last=True)).first()
        )
        rows.append(
            {
                "code": spec.code,
                "name": spec.name,
                "default_language": spec.default_language,
                "time_zone": spec.time_zone,
                "phone_country_code": spec.phone_country_code,
                "phone_national_digits": spec.phone_national_digits,
                "country_id": country.pk if country else None,
            }
        )
    result = sync_rows(CountryProfile.objects.all(), ["code"], rows)
    return {"territories.country_profile": result.counts}


def get_profile(code: str) -> CountryProfile:
    try:
        return CountryProfile.objects.get(code=code)
    except CountryProfile.DoesNotExist as exc:
        raise LookupError(f"Country profile {code} is missing: run load_country_profiles() first.") from exc


# --- Territories ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TerritorySpec:
    code: str
    name: str
    alt_code: str = ""
    parent: Territory | None = None
    health_service: Territory | None = None
    active: bool = True


def sync_territories(
    profile: CountryProfile, level: TerritoryLevel, specs: Iterable[TerritorySpec]
) -> tuple[LoadCounts, dict[str, Territory]]:
    """Store one level of one country's territories; returns the counts and the territories by code."""
    rows = []
    for spec in specs:
        # An unsaved instance only to let the model compute the path: one rule for paths, in the model.
        path = Territory(profile=profile, level=level.value, code=spec.code, parent=spec.parent).build_path()
        rows.append(
            {
                "profile_id": profile.pk,
                # `.value`: TextChoices members hash by member name, so they would not match stored strings.
                "level": level.value,
                "code": spec.code,
                "alt_code": spec.alt_code,
                "name": spec.name,
                "parent_id": spec.parent.pk if spec.parent else None,
                "health_service_id": spec.health_service.pk if spec.health_service else None,
                "path": path,
                "active": spec.active,
            }
        )
    result: SyncResult[Territory] = sync_rows(
        Territory.objects.filter(profile=profile, level=level.value), ["profile_id", "level", "code"], rows
    )
    by_code = {territory.code: territory for territory in result.by_key.values()}
    return result.counts, by_code


def load_chile_territories() -> LoadReport:
    """Regions, provinces, comunas (CUT codes) and the 29 health-service areas, with each comuna's service."""
    profile = get_profile("CL")
    report: LoadReport = {}

    report["territories.cl_region"], regions = sync_territories(
        profile,
        TerritoryLevel.CL_REGION,
        (
            TerritorySpec(code=row["code"], name=row["name"], alt_code=row["deis_code"])
            for row in read_csv("chile_regions.csv")
        ),
    )
    report["territories.cl_province"], provinces = sync_territories(
        profile,
        TerritoryLevel.CL_PROVINCE,
        (
            # DEIS province codes are not in our sources, so alt_code stays empty rather than guessed.
            TerritorySpec(code=row["code"], name=row["name"], parent=regions[row["region_code"]])
            for row in read_csv("chile_provinces.csv")
        ),
    )
    report["territories.cl_health_service"], services = sync_territories(
        profile,
        TerritoryLevel.CL_HEALTH_SERVICE,
        (
            # The MINSAL code already is the DEIS form (no leading zero), so both codes are the same.
            TerritorySpec(code=row["code"], name=row["name"], alt_code=row["code"], parent=regions[row["region_code"]])
            for row in read_csv("chile_servicios_salud.csv")
        ),
    )
    service_by_comuna = {row["cut_code"]: row["servicio_code"] for row in read_csv("chile_comuna_servicio_salud.csv")}
    report["territories.cl_comuna"], _comunas = sync_territories(
        profile,
        TerritoryLevel.CL_COMUNA,
        (
            TerritorySpec(
                code=row["cut_code"],
                name=row["name"],
                # What DEIS and the national platform send as `paciente_comuna`: 13101, 1101.
                alt_code=row["deis_code"],
                parent=provinces[row["province_code"]],
                health_service=services[service_by_comuna[row["cut_code"]]],
            )
            for row in read_csv("chile_comunas.csv")
        ),
    )
    return report


def load_vietnam_territories() -> LoadReport:
    """The 34 provinces since 1 July 2025, the 63 before the merger under them, and the 696 former districts."""
    profile = get_profile("VN")
    report: LoadReport = {}

    report["territories.vn_province"], provinces = sync_territories(
        profile,
        TerritoryLevel.VN_PROVINCE,
        (TerritorySpec(code=row["code"], name=row["name"]) for row in read_csv("vietnam_provinces_2025.csv")),
    )
    new_code_by_old = {row["old_code"]: row["new_code"] for row in read_csv("vietnam_province_mapping_2025.csv")}
    # The pre-merger provinces and the districts no longer exist as administrative units since 1 July 2025.
    # They stay for history (old addresses, old reports, CCCD province codes) but are not offered for new data.
    report["territories.vn_legacy_province"], legacy_provinces = sync_territories(
        profile,
        TerritoryLevel.VN_LEGACY_PROVINCE,
        (
            TerritorySpec(
                code=row["code"], name=row["name"], parent=provinces[new_code_by_old[row["code"]]], active=False
            )
            for row in read_csv("vietnam_provinces.csv")
        ),
    )
    report["territories.vn_district"], _districts = sync_territories(
        profile,
        TerritoryLevel.VN_DISTRICT,
        (
            TerritorySpec(
                code=row["code"], name=row["name"], parent=legacy_provinces[row["province_code"]], active=False
            )
            for row in read_csv("vietnam_districts.csv")
        ),
    )
    return report
