"""FHIR results: N results (Specimen + Observation + DiagnosticReport per result) POSTed as `batch` Bundles of
1,000 results, processed by `integrations.fhir.ingest.process_bundle` in-process (no HTTP), timed.

    .venv/bin/python -m bench.fhir                          # fresh PostgreSQL database, 10,000 results
    .venv/bin/python -m bench.fhir --results 100000 --batch 1000 --reuse-database
    .venv/bin/python -m bench.fhir --with-report            # a signed PDF inline in every DiagnosticReport

The value is SNOMED 125154007 "specimen unsatisfactory", which needs no signed report (as bench/hl7.py), unless
`--with-report` sends negatives with a PDF. The database is `BENCH_DATABASE_URL` (default `.../muestra_bench_fhir`),
recreated, migrated, with reference data and the demo personas; the samples are registered first through
`sample_register_batch` (not timed). Prints one JSON line: results/s, Bundle validation share, peak RSS.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import json
import os
import pstats
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/muestra_bench_fhir"
PDF = base64.b64encode(b"%PDF-1.4\n% bench signed report\n%%EOF\n").decode()


def _entries(i: int, number: int, issued: str, with_report: bool) -> list[dict[str, Any]]:
    spec, obs, rep = (
        f"urn:uuid:00000000-0000-4000-8000-{i:06d}000001",
        f"urn:uuid:00000000-0000-4000-8000-{i:06d}000002",
        f"urn:uuid:00000000-0000-4000-8000-{i:06d}000003",
    )
    value = ("260415000", "Not detected") if with_report else ("125154007", "Specimen unsatisfactory for evaluation")
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "94500-6"}]},
        "issued": issued,
        "result": [{"reference": obs}],
    }
    if with_report:
        report["presentedForm"] = [{"contentType": "application/pdf", "data": PDF}]
    return [
        {
            "fullUrl": spec,
            "resource": {
                "resourceType": "Specimen",
                "identifier": [{"system": "https://fhir.muestra.org/sid/sample-number", "value": str(number)}],
                "type": {"coding": [{"system": "http://snomed.info/sct", "code": "258500001"}]},
            },
            "request": {"method": "POST", "url": "Specimen"},
        },
        {
            "fullUrl": obs,
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "94500-6"}]},
                "issued": issued,
                "valueCodeableConcept": {
                    "coding": [{"system": "http://snomed.info/sct", "code": value[0], "display": value[1]}]
                },
                "specimen": {"reference": spec},
            },
            "request": {"method": "POST", "url": "Observation"},
        },
        {"fullUrl": rep, "resource": report, "request": {"method": "POST", "url": "DiagnosticReport"}},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1000, help="results per Bundle")
    parser.add_argument("--with-report", action="store_true")
    parser.add_argument("--reuse-database", action="store_true")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="cProfile the timed part; print its N costliest calls"
    )
    args = parser.parse_args()

    os.environ.setdefault("BENCH_DATABASE_URL", DEFAULT_URL)
    from bench.harness import _env, fresh_database
    from bench.results_baseline import compared

    if not args.reuse_database:
        fresh_database()
    os.environ.update({k: v for k, v in _env().items() if k in {"DATABASE_URL", "DJANGO_DEBUG", "AXES_ENABLED"}})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "muestra.settings")
    os.environ["TASKS_BACKEND"] = "django_tasks.backends.dummy.DummyBackend"
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from muestra.accounts.scoping import SYSTEM, actor_for_api_key
    from muestra.accounts.services import api_key_issue
    from muestra.demo.builders import sample_input
    from muestra.facilities.models import Laboratory
    from muestra.integrations.fhir import ingest
    from muestra.samples import services

    key, _raw = api_key_issue(
        actor=SYSTEM, name=f"bench fhir {time.time()}", laboratory=Laboratory.objects.get(platform_id=1000000001)
    )
    actor = actor_for_api_key(key)
    numbers: list[int] = []
    while len(numbers) < args.results:
        size = min(1000, args.results - len(numbers))
        for outcome in services.sample_register_batch(actor=actor, items=[sample_input() for _ in range(size)]):
            assert outcome.sample is not None, outcome.errors
            numbers.append(outcome.sample.number)
    with connection.cursor() as cursor:  # fresh statistics, as a live database has: the planner then uses the keys
        cursor.execute("ANALYZE")
    issued = timezone.now().isoformat()

    def bodies() -> Iterator[bytes]:
        # Built one at a time (outside the timed part), so the peak memory is the processing's, not 100 MB of JSON.
        for start in range(0, len(numbers), args.batch):
            entries = [
                entry
                for i, number in enumerate(numbers[start : start + args.batch], start=start)
                for entry in _entries(i, number, issued, args.with_report)
            ]
            yield json.dumps({"resourceType": "Bundle", "type": "batch", "entry": entries}).encode()

    # The share of the time spent validating with fhir.resources, measured on one Bundle.
    started = time.perf_counter()
    ingest.parse_bundle(next(bodies()))
    parse_seconds = time.perf_counter() - started

    created = 0
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    seconds = 0.0
    for body in bodies():
        started = time.perf_counter()
        answer = ingest.process_bundle(actor, body)
        seconds += time.perf_counter() - started
        created += sum(1 for e in answer.body["entry"] if e["response"]["status"].startswith("201")) // 3
    if profiler is not None:
        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("cumulative").print_stats(args.profile)
        stats.sort_stats("tottime").print_stats(args.profile)
    status = Path("/proc/self/status").read_text()
    hwm_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    print(
        json.dumps(
            {
                "scenario": "FHIR batch Bundles of results, in-process",
                "database": connection.vendor,
                "results": len(numbers),
                "batch": args.batch,
                "with_report": args.with_report,
                "recorded": created,
                "seconds": round(seconds, 1),
                "results_per_s": round(len(numbers) / seconds, 1) if seconds else None,
                "validation_seconds_per_bundle": round(parse_seconds, 2),
                "peak_rss_mb": round(hwm_kb / 1024, 1),
                # The raw-SQL writes of the same results on this database (bench/results_baseline.py), measured after.
                **(compared(len(numbers) / seconds, len(numbers)) if seconds else {}),
            }
        )
    )


if __name__ == "__main__":
    main()
