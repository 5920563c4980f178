"""Shared plumbing of the in-process ingestion benchmarks (`bench/hl7.py`, `bench/fhir.py`, and the samples of
`bench/results_baseline.py`): Django against the benchmark database, lab X's key, samples to deliver results to,
a timer that leaves input building out, an optional profile, and the process's peak memory."""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

LAB_X = 1000000001


def setup_django(default_url: str, *, fresh: bool) -> None:
    """Points Django at the benchmark database (`BENCH_DATABASE_URL`, else `default_url`), recreated when `fresh`."""
    os.environ.setdefault("BENCH_DATABASE_URL", default_url)
    from bench.harness import _env, fresh_database

    if fresh:
        fresh_database()
    os.environ.update({k: v for k, v in _env().items() if k in {"DATABASE_URL", "DJANGO_DEBUG", "AXES_ENABLED"}})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "muestra.settings")
    os.environ["TASKS_BACKEND"] = "django_tasks.backends.dummy.DummyBackend"
    import django

    django.setup()


def lab_x_actor(name: str) -> Any:
    """An actor for a new API key of lab X, as a lab's system would call with."""
    from muestra.accounts.scoping import SYSTEM, actor_for_api_key
    from muestra.accounts.services import api_key_issue
    from muestra.facilities.models import Laboratory

    key, _raw = api_key_issue(
        actor=SYSTEM, name=f"{name} {time.time()}", laboratory=Laboratory.objects.get(platform_id=LAB_X)
    )
    return actor_for_api_key(key)


def registered_samples(actor: Any, count: int, keep: Callable[[Any], T]) -> list[T]:
    """Registers `count` samples of establishment A for lab X (1,000 per batch, untimed) and keeps `keep(sample)`
    of each (a few fields: 100,000 model instances would weigh more than the processing being measured). Then
    refreshes the planner's statistics, as a live database has them."""
    from django.db import connection

    from muestra.demo.builders import sample_input
    from muestra.samples import services

    kept: list[T] = []
    while len(kept) < count:
        size = min(1000, count - len(kept))
        for outcome in services.sample_register_batch(actor=actor, items=[sample_input() for _ in range(size)]):
            assert outcome.sample is not None, outcome.errors
            kept.append(keep(outcome.sample))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return kept


@dataclass
class Timed:
    """Runs `handle` on each input, timing only the handling (inputs are built lazily, outside the clock)."""

    profile: int = 0
    seconds: float = 0.0

    def run(self, inputs: Iterable[T], handle: Callable[[T], object]) -> None:
        # CPU time, not wall time: waits on PostgreSQL are the database's share, measured by the baseline.
        profiler = cProfile.Profile(time.process_time) if self.profile else None
        for item in inputs:
            started = time.perf_counter()
            if profiler is not None:
                profiler.enable()
            handle(item)
            if profiler is not None:
                profiler.disable()
            self.seconds += time.perf_counter() - started
        if profiler is not None:
            stats = pstats.Stats(profiler, stream=sys.stderr)
            stats.sort_stats("cumulative").print_stats(self.profile)
            stats.sort_stats("tottime").print_stats(self.profile)


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM)."""
    status = Path("/proc/self/status").read_text()
    return round(next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")) / 1024, 1)


def chunks(items: list[T], size: int) -> Iterator[tuple[int, list[T]]]:
    for start in range(0, len(items), size):
        yield start, items[start : start + size]
