"""Bulk results file: a 100,000-row national «Resultados» CSV processed by the upload worker, timed, with the peak
memory of the process that processes it.

    .venv/bin/python -m bench.uploads                    # fresh PostgreSQL database, 100,000 rows
    .venv/bin/python -m bench.uploads --rows 20000 --reuse-database

Three steps, each its own process so the memory figure is the processing alone:
1. a fresh database (`BENCH_DATABASE_URL`, default `.../muestra_bench_uploads`, so it never collides with the
   other benchmarks' `muestra_bench`), migrated, with reference data and the demo personas;
2. `--phase prepare`: registers N samples of establishment A for lab X through `sample_register_batch` (1,000 per
   call), writes the CSV (semicolons, one row per sample, result «Muestra no apta», which the catalogue allows
   without a signed report) and stores it with `upload_submit` (the task queue is the dummy backend: nothing runs);
3. `--phase process`: `process_intake` as the task worker runs it, timed; prints rows/s and the peak RSS (VmHWM);
4. the raw-SQL baseline of the same writes (`bench/results_baseline.py`, up to 20,000 results) and the ratio.

Prints one JSON line. Nothing asserts a timing.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/muestra_bench_uploads"


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "muestra.settings")
    os.environ["TASKS_BACKEND"] = "django_tasks.backends.dummy.DummyBackend"
    import django

    django.setup()


def prepare(rows: int, *, unknown: bool = False) -> int:
    _setup_django()
    from muestra.accounts.scoping import SYSTEM, actor_for_api_key
    from muestra.accounts.services import api_key_issue
    from muestra.demo.builders import sample_input
    from muestra.facilities.models import Laboratory
    from muestra.integrations.bulk.services import upload_submit
    from muestra.samples import services

    key, _raw = api_key_issue(
        actor=SYSTEM, name=f"bench uploads {time.time()}", laboratory=Laboratory.objects.get(platform_id=1000000001)
    )
    actor = actor_for_api_key(key)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["ID Muestra", "ID Paciente", "Resultado"])
    started = time.perf_counter()
    done = 0
    while unknown and done < rows:
        # Samples that do not exist: every row is rejected without a service write (parsing, look-up and outcome
        # recording only), to measure the pipeline's memory on a large file quickly.
        writer.writerow([9_000_000_000 + done, "", "Muestra no apta"])
        done += 1
    while done < rows:
        size = min(1000, rows - done)
        outcomes = services.sample_register_batch(actor=actor, items=[sample_input() for _ in range(size)])
        for outcome in outcomes:
            assert outcome.sample is not None, outcome.errors
            patient = outcome.sample.patient
            writer.writerow([outcome.sample.number, patient.document_number if patient else "", "Muestra no apta"])
        done += size
    content = out.getvalue().encode("utf-8")
    intake, _created = upload_submit(actor=actor, kind="results-national", filename="bench.csv", content=content)
    print(
        json.dumps(
            {
                "prepared_samples": rows,
                "seconds": round(time.perf_counter() - started, 1),
                "file_mb": len(content) / 1e6,
            }
        ),
        file=sys.stderr,
    )
    return intake.pk


def process(intake_id: int) -> dict[str, object]:
    _setup_django()
    from django.db import connection

    from muestra.integrations.bulk.processing import process_intake

    started = time.perf_counter()
    intake = process_intake(intake_id)
    seconds = time.perf_counter() - started
    status = Path("/proc/self/status").read_text()
    hwm_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return {
        "scenario": "bulk results file (national «Resultados» CSV)",
        "database": connection.vendor,
        "rows": intake.total,
        "accepted": intake.accepted,
        "rejected": intake.rejected,
        "seconds": round(seconds, 1),
        "items_per_s": round(intake.total / seconds, 1) if seconds else None,
        "peak_rss_mb": round(hwm_kb / 1024, 1),
        "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--reuse-database", action="store_true")
    parser.add_argument("--phase", choices=["all", "prepare", "process"], default="all")
    parser.add_argument("--intake", type=int)
    parser.add_argument("--unknown-samples", action="store_true", help="rows name samples that do not exist")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the raw-SQL baseline (bench/results_baseline.py)"
    )
    args = parser.parse_args()
    if args.phase == "prepare":
        print(prepare(args.rows, unknown=args.unknown_samples))
        return
    if args.phase == "process":
        print(json.dumps(process(args.intake), ensure_ascii=False))
        return

    os.environ.setdefault("BENCH_DATABASE_URL", DEFAULT_URL)
    from bench.harness import _env, fresh_database

    if not args.reuse_database:
        fresh_database()
    env = _env()
    me = [sys.executable, "-m", "bench.uploads"]
    prepared = subprocess.run(
        [*me, "--phase", "prepare", "--rows", str(args.rows), *(["--unknown-samples"] if args.unknown_samples else [])],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    sys.stderr.write(prepared.stderr)
    intake_id = prepared.stdout.strip().splitlines()[-1]
    processed = subprocess.run(
        [*me, "--phase", "process", "--intake", intake_id],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    figures = json.loads(processed.stdout.strip().splitlines()[-1])
    if not args.no_baseline:
        # The raw-SQL baseline on the same database and machine (bench/results_baseline.py), in its own process.
        baseline = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.results_baseline",
                "--reuse-database",
                "--results",
                str(min(args.rows, 20_000)),
            ],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        base = json.loads(baseline.stdout.strip().splitlines()[-1])
        figures["baseline_results_per_s"] = base["results_per_s"]
        figures["ratio_to_baseline"] = round(float(figures["items_per_s"]) / float(base["results_per_s"]), 2)
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
