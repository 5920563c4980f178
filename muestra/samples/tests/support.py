"""Helpers shared by the core-service test packages (samples, patients, accounts, audit).

Imported by each package's conftest, so the fixtures below are available to all of them:
- `_fast_password_hasher` (autouse): the root conftest sets MUESTRA_FAST_PASSWORD_HASHER after pytest-django has
  already imported the settings, so without this every `world` build hashes 8 passwords with Argon2 (~2 s).
- `actors`: shortcut to `world.actors`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection

from muestra.audit.models import AuditEntry
from muestra.patients.models import Patient
from muestra.samples.models import (
    CorrectionAuthorization,
    Result,
    Sample,
    SampleEvent,
    Shipment,
    ShipmentItem,
)

SAMPLE_FIELDS = (
    "state",
    "laboratory_id",
    "establishment_id",
    "shipment_id",
    "received_at",
    "result_value_id",
    "result_at",
    "retest_needed",
    "rejection_reason_id",
    "state_changed_at",
    "collected_at",
    "sample_type_id",
    "strategy_id",
    "surveillance_number",
    "ordering_physician_run",
    "without_medical_order",
    "active_case_finding",
    "updated_at",
)


@dataclass(frozen=True)
class DbState:
    """Row counts of everything a sample service may write, plus one sample's fields."""

    counts: tuple[tuple[str, int], ...]
    sample: tuple[tuple[str, Any], ...] | None

    def diff(self, other: DbState) -> dict[str, tuple[Any, Any]]:
        mine, theirs = dict(self.counts) | dict(self.sample or ()), dict(other.counts) | dict(other.sample or ())
        return {k: (mine.get(k), theirs.get(k)) for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k)}


def table_counts() -> dict[str, int]:
    return {
        "samples": Sample.objects.count(),
        "events": SampleEvent.objects.count(),
        "audit": AuditEntry.objects.count(),
        "results": Result.objects.count(),
        "patients": Patient.objects.count(),
        "shipments": Shipment.objects.count(),
        "shipment_items": ShipmentItem.objects.count(),
        "authorisations": CorrectionAuthorization.objects.count(),
        "used_authorisations": CorrectionAuthorization.objects.filter(used_at__isnull=False).count(),
    }


def db_state(sample_id: int | None = None) -> DbState:
    sample = None
    if sample_id is not None:
        row = Sample.objects.filter(pk=sample_id).values(*SAMPLE_FIELDS).get()
        sample = tuple(sorted(row.items()))
    return DbState(tuple(sorted(table_counts().items())), sample)


def assert_unchanged(before: DbState, sample_id: int | None = None) -> None:
    after = db_state(sample_id)
    assert before == after, f"a refused call changed the database: {before.diff(after)}"


def event_kinds(sample: Sample | int) -> list[str]:
    sample_id = sample if isinstance(sample, int) else sample.pk
    return list(SampleEvent.objects.filter(sample_id=sample_id).order_by("id").values_list("kind", flat=True))


def run_in_threads(n: int, fn: Callable[[int], Any], *, timeout: float = 60) -> tuple[list[Any], list[BaseException]]:
    """Runs fn(0..n-1) in n threads released together; each thread closes its own DB connection at the end."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException | None] = [None] * n

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=timeout)
            results[i] = fn(i)
        except BaseException as exc:
            errors[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a worker thread hung (deadlock?)"
    return results, [e for e in errors if e is not None]


requires_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="Row locks (SELECT ... FOR UPDATE) and concurrent writers need PostgreSQL; SQLite serialises every "
    "writer on one file lock, so these races cannot happen there. Run with DATABASE_URL=postgres://...",
)


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def actors(world: Any) -> dict[str, Any]:
    return world.actors  # type: ignore[no-any-return]
