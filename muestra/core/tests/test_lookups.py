# mypy: disable-error-code="union-attr"
"""`field__in_array` selects exactly what `field__in` selects, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from muestra.demo.builders import sample_in_state
from muestra.samples.models import Sample, SampleState


@pytest.fixture
def samples(world):
    return [
        sample_in_state(SampleState.REGISTERED, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
        for _ in range(3)
    ]


@pytest.mark.parametrize(
    "values",
    [
        lambda s: [s[0].pk, s[2].pk],
        lambda s: [s[1].pk, s[1].pk, None],  # repeats and NULL, as with IN
        lambda s: [str(s[0].pk)],  # prepared by the field like any look-up value
        lambda s: [],
        lambda s: [None],
        lambda s: [-1],
    ],
)
def test_selects_what_in_selects(samples, values):
    wanted = values(samples)
    expected = set(Sample.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    assert set(Sample.objects.filter(pk__in_array=wanted).values_list("pk", flat=True)) == expected


def test_text_values_and_combined_filters(samples):
    Sample.objects.filter(pk=samples[0].pk).update(tube_code="T-1")
    Sample.objects.filter(pk=samples[1].pk).update(tube_code="T-2")
    by_tube = Sample.objects.filter(tube_code__in_array=["T-2", "T-9"])
    found = by_tube | Sample.objects.filter(pk__in_array=[samples[2].pk])
    assert {s.pk for s in found} == {samples[1].pk, samples[2].pk}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the array form is PostgreSQL's")
def test_one_statement_text_whatever_the_number_of_values(samples):
    with CaptureQueriesContext(connection) as queries:
        list(Sample.objects.filter(pk__in_array=[samples[0].pk]))
        list(Sample.objects.filter(pk__in_array=[s.pk for s in samples]))
    first, second = (q["sql"] for q in queries.captured_queries)
    assert "ANY" in first
    assert first.split("ANY")[0] == second.split("ANY")[0]


def test_foreign_keys_too(samples):
    lab_id = samples[0].laboratory_id
    assert set(Sample.objects.filter(laboratory_id__in_array=[lab_id]).values_list("pk", flat=True)) == {
        s.pk for s in samples
    }
    assert not Sample.objects.filter(laboratory__in_array=[-1]).exists()
