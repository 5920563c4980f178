# mypy: disable-error-code="union-attr"
"""The hot path stays cheap: one registration costs a fixed handful of queries, and a batch costs the same
statements whatever its size (bulk inserts; SQLite only splits an INSERT into chunks because Django caps it at
999 bound parameters per statement)."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from muestra.demo.builders import sample_input
from muestra.samples import services

#: SAVEPOINT/RELEASE included: patient lookup + insert, sample insert, event insert, audit head lock, audit insert,
#: audit id read-back, head update. Catalogue and facility look-ups come from the in-process cache.
MAX_QUERIES_ONE_SAMPLE = 16


def _warm_caches(world) -> None:
    services.sample_register(actor=world.actors["taker_a"], data=sample_input())


def test_registering_one_sample_stays_under_a_fixed_number_of_queries(world, django_assert_max_num_queries):
    _warm_caches(world)
    with django_assert_max_num_queries(MAX_QUERIES_ONE_SAMPLE):
        _sample, created = services.sample_register(actor=world.actors["taker_a"], data=sample_input())
    assert created


def test_registering_one_sample_for_a_known_patient_is_not_dearer(world, django_assert_max_num_queries):
    _warm_caches(world)
    data = sample_input()
    services.sample_register(actor=world.actors["taker_a"], data=data)
    data.client_code = ""
    with django_assert_max_num_queries(MAX_QUERIES_ONE_SAMPLE):
        services.sample_register(actor=world.actors["taker_a"], data=sample_input(patient=data.patient))


def _statement_shape(queries: list[dict]) -> list[str]:
    """The statements run, with consecutive INSERTs into one table (chunks of one bulk insert) counted once."""
    shape: list[str] = []
    for q in queries:
        sql = q["sql"]
        insert = re.match(r'INSERT INTO "?(\w+)"?', sql)
        # Literals, numbers and savepoint names differ between runs; the statement itself must not.
        generic = re.sub(r"'[^']*'|\d+", "?", sql.split(" WHERE ")[0])[:120]
        key = f"INSERT {insert.group(1)}" if insert else generic
        if not (insert and shape and shape[-1] == key):
            shape.append(key)
    return shape


def _batch_queries(world, n: int) -> list[dict]:
    items = [sample_input() for _ in range(n)]
    with CaptureQueriesContext(connection) as ctx:
        outcomes = services.sample_register_batch(actor=world.actors["taker_a"], items=items)
    assert all(o.ok and o.created for o in outcomes)
    return ctx.captured_queries


def test_batch_of_50_and_of_200_run_the_same_statements(world):
    _warm_caches(world)
    small, large = _batch_queries(world, 50), _batch_queries(world, 200)
    assert _statement_shape(small) == _statement_shape(large)
    assert len(_statement_shape(large)) <= MAX_QUERIES_ONE_SAMPLE
    if connection.vendor == "postgresql":
        assert len(small) == len(large)
    else:
        # Only INSERT chunking may differ, and by no more than the chunks Django must make.
        extra = len(large) - len(small)
        assert 0 <= extra <= 4 * (200 // connection.ops.bulk_batch_size(["x"] * 40, [None] * 200) + 1)


@pytest.mark.parametrize("n", [1, 20])
def test_batch_cost_does_not_grow_with_retries_of_known_codes(world, n):
    _warm_caches(world)
    items = [sample_input(client_code=f"QC-{i}") for i in range(n)]
    services.sample_register_batch(actor=world.actors["key_lab_x"], items=items)
    with CaptureQueriesContext(connection) as ctx:
        again = services.sample_register_batch(actor=world.actors["key_lab_x"], items=items)
    assert all(o.ok and not o.created for o in again)
    # One look-up of the stored codes, then per retried item a read of the stored sample and its patient.
    assert len(ctx.captured_queries) <= 1 + 4 * n
