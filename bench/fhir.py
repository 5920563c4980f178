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
import json
import time
from collections.abc import Iterator
from typing import Any

from bench import ingest

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


def _in_processes(count: int, bodies: list[bytes], actor: Any) -> tuple[float, int, float]:
    """The Bundles shared among `count` forked processes, each with its own database connection, started together;
    returns (wall seconds until the last finished, results recorded, the largest peak RSS)."""
    import multiprocessing

    from django.db import connections

    from muestra.integrations.fhir import ingest as fhir_ingest

    context = multiprocessing.get_context("fork")
    start = context.Barrier(count + 1)
    answers = context.Queue()

    def work(share: list[bytes]) -> None:
        created = 0
        start.wait()
        for body in share:
            answer = fhir_ingest.process_bundle(actor, body)
            created += sum(1 for e in answer.body["entry"] if e["response"]["status"].startswith("201")) // 3
        answers.put((created, ingest.peak_rss_mb()))

    connections.close_all()  # each child opens its own
    children = [context.Process(target=work, args=(bodies[i::count],)) for i in range(count)]
    for child in children:
        child.start()
    start.wait()
    started = time.perf_counter()
    results = [answers.get() for _child in children]
    seconds = time.perf_counter() - started
    for child in children:
        child.join()
    return seconds, sum(c for c, _rss in results), max(rss for _c, rss in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1000, help="results per Bundle")
    parser.add_argument("--with-report", action="store_true")
    parser.add_argument("--reuse-database", action="store_true")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="processes posting Bundles at once, as that many app workers would serve concurrent requests",
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="cProfile the timed part; print its N costliest calls"
    )
    args = parser.parse_args()

    ingest.setup_django(DEFAULT_URL, fresh=not args.reuse_database)
    from django.db import connection
    from django.utils import timezone

    from bench.results_baseline import compared
    from muestra.integrations.fhir import ingest as fhir_ingest

    actor = ingest.lab_x_actor("bench fhir")
    numbers = ingest.registered_samples(actor, args.results, lambda s: s.number)
    issued = timezone.now().isoformat()

    def bodies() -> Iterator[bytes]:
        # Built one at a time (outside the timed part), so the peak memory is the processing's, not 100 MB of JSON.
        for start, chunk in ingest.chunks(numbers, args.batch):
            entries = [
                entry
                for i, number in enumerate(chunk, start=start)
                for entry in _entries(i, number, issued, args.with_report)
            ]
            yield json.dumps({"resourceType": "Bundle", "type": "batch", "entry": entries}).encode()

    # The share of the time spent validating with fhir.resources, measured on one Bundle.
    validation = ingest.Timed()
    validation.run([next(bodies())], fhir_ingest.parse_bundle)

    created = 0

    def process(body: bytes) -> None:
        nonlocal created
        answer = fhir_ingest.process_bundle(actor, body)
        created += sum(1 for e in answer.body["entry"] if e["response"]["status"].startswith("201")) // 3

    if args.processes > 1:
        seconds, created, peak_rss = _in_processes(args.processes, list(bodies()), actor)
    else:
        timed = ingest.Timed(profile=args.profile)
        timed.run(bodies(), process)
        seconds, peak_rss = timed.seconds, ingest.peak_rss_mb()
    print(
        json.dumps(
            {
                "scenario": "FHIR batch Bundles of results, in-process",
                "processes": args.processes,
                "database": connection.vendor,
                "results": len(numbers),
                "batch": args.batch,
                "with_report": args.with_report,
                "recorded": created,
                "seconds": round(seconds, 1),
                "results_per_s": round(len(numbers) / seconds, 1) if seconds else None,
                "validation_seconds_per_bundle": round(validation.seconds, 2),
                "peak_rss_mb": peak_rss,
                # The raw-SQL writes of the same results on this database (bench/results_baseline.py), measured after.
                **(compared(len(numbers) / seconds, len(numbers)) if seconds else {}),
            }
        )
    )


if __name__ == "__main__":
    main()
