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
3. `--phase process`: starts `--workers` task workers (`manage.py db_worker`, default 2), queues the upload's task
   and times it until the unit is closed (a file of 10,000 rows or more is processed in two parts at once, one per
   worker); prints rows/s, the peak RSS (VmHWM) of the busiest worker, each worker's CPU seconds and the app and
   PostgreSQL CPU per row;
4. the raw-SQL baseline of the same writes (`bench/results_baseline.py`, up to 20,000 results) and the ratio.

Prints one JSON line. Nothing asserts a timing.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
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
    from django.db import connection

    if connection.vendor == "postgresql":
        # Statistics as autovacuum leaves them within a minute of a load this size (a quarter of the table, or
        # more, is new). Without it the planner takes lab X for a lab of a few hundred samples and reads every
        # sample of the lab for each chunk's 500 (72 ms instead of 1 ms per look-up, 40 % of the run).
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
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


def _peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")) / 1024


def process(intake_id: int, *, workers: int) -> dict[str, object]:
    """Queues the upload's task and times it until the unit is closed, run by `workers` task workers
    (`manage.py db_worker`, as `docs/operations.md` deploys them); their peak memory and CPU are read from /proc."""
    os.environ["TASKS_BACKEND"] = "django_tasks_db.DatabaseBackend"
    if "DATABASE_URL" in os.environ:  # the backends whose CPU is counted are those of the database processed in
        os.environ.setdefault("BENCH_DATABASE_URL", os.environ["DATABASE_URL"])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "muestra.settings")
    import django

    django.setup()
    from django.db import connection

    from bench.samples import _cpu_seconds, _database_backends
    from muestra.integrations.bulk.tasks import process_upload
    from muestra.integrations.models import Intake

    command = [sys.executable, "manage.py", "db_worker", "--queue-name", "*", "--interval", "0.1"]
    command += ["--no-startup-delay", "--no-reload", "--verbosity", "0"]
    started_workers = [subprocess.Popen(command, cwd=ROOT) for _ in range(workers)]
    try:
        time.sleep(3)  # the workers' start-up (Django set-up, first poll) is not the file's processing
        pids = [w.pid for w in started_workers]
        before = {pid: _cpu_seconds(pid) for pid in [*pids, *_database_backends()]}
        started = time.perf_counter()
        process_upload.enqueue(intake_id)
        while Intake.objects.filter(pk=intake_id, state__in=["received", "processing"]).exists():
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        after = {pid: _cpu_seconds(pid) for pid in [*pids, *_database_backends()]}
        peak_rss = max(_peak_rss_mb(pid) for pid in pids)
    finally:
        for worker in started_workers:
            worker.terminate()
        for worker in started_workers:
            worker.wait(timeout=30)
    intake = Intake.objects.get(pk=intake_id)
    return {
        "scenario": "bulk results file (national «Resultados» CSV)",
        "database": connection.vendor,
        "task_workers": workers,
        "parts": intake.parts.count(),
        "state": intake.state,
        "rows": intake.total,
        "accepted": intake.accepted,
        "rejected": intake.rejected,
        "seconds": round(seconds, 1),
        "items_per_s": round(intake.total / seconds, 1) if seconds else None,
        "peak_rss_mb": round(peak_rss, 1),
        "worker_cpu_s": [round(after[pid] - before[pid], 2) for pid in pids],
        "app_cpu_ms_per_item": round(sum(after[p] - before[p] for p in pids) * 1000 / max(intake.total, 1), 3),
        "db_cpu_ms_per_item": round(
            sum(after[p] - before.get(p, 0.0) for p in after if p not in pids) * 1000 / max(intake.total, 1), 3
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--reuse-database", action="store_true")
    parser.add_argument("--phase", choices=["all", "prepare", "process"], default="all")
    parser.add_argument("--intake", type=int)
    parser.add_argument("--workers", type=int, default=2, help="task workers that process the file (default 2)")
    parser.add_argument("--unknown-samples", action="store_true", help="rows name samples that do not exist")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the raw-SQL baseline (bench/results_baseline.py)"
    )
    args = parser.parse_args()
    if args.phase == "prepare":
        print(prepare(args.rows, unknown=args.unknown_samples))
        return
    if args.phase == "process":
        print(json.dumps(process(args.intake, workers=args.workers), ensure_ascii=False))
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
        [*me, "--phase", "process", "--intake", intake_id, "--workers", str(args.workers)],
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
