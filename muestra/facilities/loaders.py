"""Loading establishments from a CSV file (Chile's DEIS list shipped in `facilities/data/`).

Idempotent: a second run creates nothing. Existing establishments are left as they are (an administrator may have
corrected them) unless `update=True`, which refreshes their name, type, comuna and public flag from the file.
Rows whose comuna is unknown are skipped and reported, never guessed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from muestra.facilities.models import Establishment
from muestra.samples import lookups
from muestra.territories.models import CountryProfile, Territory, TerritoryLevel

DEFAULT_FILE = Path(__file__).resolve().parent / "data" / "chile_establishments.csv"
REQUIRED_COLUMNS = {"code", "name", "type", "dependency", "comuna_code"}
PRIVATE_DEPENDENCY = "Privado"


class EstablishmentFileError(ValueError):
    """The file is not an establishment list this loader understands."""


@dataclass
class LoadReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)  # "code: reason"


def _comunas() -> dict[str, Territory]:
    """Chilean comunas by CUT code (05101) and by DEIS code (5101)."""
    index: dict[str, Territory] = {}
    for comuna in Territory.objects.filter(profile__code="CL", level=TerritoryLevel.CL_COMUNA):
        index.setdefault(comuna.code, comuna)
        if comuna.alt_code:
            index.setdefault(comuna.alt_code, comuna)
    return index


def load_establishments(path: Path = DEFAULT_FILE, *, update: bool = False) -> LoadReport:
    report = LoadReport()
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = REQUIRED_COLUMNS - set(reader.fieldnames or ())
        if missing:
            raise EstablishmentFileError(f"{path.name}: missing column(s) {', '.join(sorted(missing))}")
        rows = list(reader)
    chile = CountryProfile.objects.get(code="CL")
    comunas = _comunas()
    existing = {e.code: e for e in Establishment.objects.filter(code__in=[r["code"].strip() for r in rows])}
    to_create: list[Establishment] = []
    seen: set[str] = set()
    with transaction.atomic():
        for row in rows:
            code = row["code"].strip()
            name = " ".join(row["name"].split())
            comuna = comunas.get(row["comuna_code"].strip()) or comunas.get(row["comuna_code"].strip().zfill(5))
            if not code or not name:
                report.skipped.append(f"{code or '?'}: no code or name")
                continue
            if code in seen:
                report.skipped.append(f"{code}: repeated in the file")
                continue
            seen.add(code)
            if comuna is None:
                report.skipped.append(f"{code}: unknown comuna {row['comuna_code']!r}")
                continue
            values = {
                "name": name[:200],
                "kind": " ".join(row["type"].split())[:120],
                "territory": comuna,
                "is_public": row["dependency"].strip() != PRIVATE_DEPENDENCY,
            }
            current = existing.get(code)
            if current is None:
                to_create.append(Establishment(code=code, profile=chile, **values))
            elif update and any(getattr(current, k) != v for k, v in values.items()):
                for key, value in values.items():
                    setattr(current, key, value)
                current.save(update_fields=list(values))
                report.updated += 1
            else:
                report.unchanged += 1
        Establishment.objects.bulk_create(to_create, batch_size=500)
        report.created = len(to_create)
    lookups.clear()
    return report
