"""The database connection as configured from the environment: on PostgreSQL, statements a connection repeats are
prepared (Django leaves that off unless asked; re-planning them cost a registration 40 % of its database CPU), and
the garbage collector settings every process applies at start-up."""

from __future__ import annotations

import gc

import pytest
from django.db import connection

from muestra.core.gc_tuning import settle_startup_objects


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_a_statement_run_repeatedly_is_prepared_once_on_postgresql():
    statement = "SELECT %s::int + 41"
    for value in range(6):
        with connection.cursor() as cursor:
            cursor.execute(statement, [value])
            assert cursor.fetchone() == (value + 41,)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s", ["%+ 41%"])
        prepared = [row[0] for row in cursor.fetchall()]
    assert prepared == ["SELECT $1::int + 41"]


def test_startup_objects_are_frozen_and_young_collections_are_rarer(settings):
    threshold, gen1, gen2 = gc.get_threshold()
    try:
        settings.GC_GEN0_THRESHOLD = 12_345
        settle_startup_objects()
        assert gc.get_threshold() == (12_345, gen1, gen2)
        assert gc.get_freeze_count() > 10_000  # Django, the apps and their modules
        settings.GC_GEN0_THRESHOLD = 0  # leaves the collector as it is
        settle_startup_objects()
        assert gc.get_threshold() == (12_345, gen1, gen2)
    finally:
        gc.set_threshold(threshold, gen1, gen2)
