"""Sample-creation benchmarks against the real server (gunicorn) on PostgreSQL.

    python -m bench.samples                 # all scenarios
    python -m bench.samples --scenario single --count 6000
    python -m bench.samples --scenario batch --batches 40
    python -m bench.samples --scenario pntm --batches 40

Scenarios (each prints one JSON line: throughput, p50/p99 latency, peak app-worker memory, ratio to baseline):
  single    POST /api/v1/samples, one sample per request, at concurrency 16
  batch     POST /api/v1/samples/batch with 1,000 samples per request
  pntm      POST /pntm/crearMuestras_v3 with 1,000 samples per request (the national API, per-item semantics)
  baseline  the same rows inserted with raw SQL (bench/baseline.py), the denominator of every ratio

Every row is a new patient with a unique RUN (the realistic, expensive case). The database is recreated first.
Each line also gives the CPU spent per sample by the app workers and by the PostgreSQL backends serving the
benchmark database (app_cpu_ms_per_item, db_cpu_ms_per_item) and the load average: on a shared machine the
throughput moves with everyone else's work, the CPU per sample much less.
Environment: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/muestra_bench), BENCH_WORKER_CLASS,
BENCH_WORKERS, BENCH_THREADS (gunicorn; by default sync workers, 2 x cores + 1, as docs/operations.md says).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench import baseline
from bench.harness import (
    RunSequence,
    Server,
    database_url,
    fresh_database,
    issue_key,
    print_figures,
    recent_time,
    run_load,
    running_server,
)

LAB_X = 1000000001
CHILE = ZoneInfo("America/Santiago")
ESTABLISHMENT_A = "113100"


def api_sample(run: str, n: int) -> dict[str, object]:
    return {
        "establishment": ESTABLISHMENT_A,
        "laboratory": LAB_X,
        "test": "covid19-pcr",
        "sample_type": "nasopharyngeal-swab",
        "collected_at": recent_time().isoformat(),
        "strategy": "symptomatic",
        "client_code": f"B-{n}",
        "patient": {
            "document_type": "run",
            "document_number": run,
            "given_names": "Paciente",
            "paternal_surname": "Carga",
            "maternal_surname": "Prueba",
            "birth_date": "1985-05-17",
            "sex": "F",
            "residence": "13101",
            "address": "Av. Siempre Viva 742",
            "phone": "+56912345678",
            "insurance": "fonasa",
        },
    }


def pntm_sample(run: str, n: int) -> dict[str, object]:
    body, dv = run.split("-")
    return {
        "codigo_muestra_cliente": f"P-{n}",
        "id_laboratorio": str(LAB_X),
        "rut_responsable": "11111111-1",
        "cod_deis": ESTABLISHMENT_A,
        "sin_orden_medica": "true",
        "paciente_tipodoc": "RUN",
        "paciente_run": body,
        "paciente_dv": dv,
        "paciente_nombres": "Paciente",
        "paciente_ap_pat": "Carga",
        "paciente_ap_mat": "Prueba",
        "paciente_fecha_nac": "17-05-1985",
        "paciente_comuna": "13101",
        "paciente_direccion": "Av. Siempre Viva 742",
        "paciente_telefono": "912345678",
        "paciente_sexo": "F",
        "paciente_prevision": "FONASA",
        # The national API sends Chilean local time without an offset.
        "fecha_muestra": recent_time().astimezone(CHILE).strftime("%d-%m-%YT%H:%M:%S"),
        "tecnica_muestra": "RT-PCR",
        "tipo_muestra": "Tórulas Nasofaríngeas",
        "busqueda_activa": "false",
    }


def _batch_ok(status: int, body: bytes) -> bool:
    if status >= 300:
        return False
    data = json.loads(body)
    return int(data.get("counts", {}).get("error", 0)) == 0


def _pntm_ok(status: int, body: bytes) -> bool:
    if status >= 300:
        return False
    data = json.loads(body)
    items = data if isinstance(data, list) else data.get("muestras", data.get("items", []))
    return all("error" not in item for item in items)


def scenario_single(
    port: int, key: str, count: int, concurrency: int, runs: RunSequence, offset: int = 0
) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    requests = [
        ("POST", "/api/v1/samples", json.dumps(api_sample(runs(), offset + i)).encode(), headers, 1)
        for i in range(count)
    ]
    return run_load(port, requests, concurrency=concurrency).summary(f"REST single sample, concurrency {concurrency}")


def scenario_batch(
    port: int, key: str, batches: int, size: int, concurrency: int, runs: RunSequence, offset: int
) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    requests = []
    for b in range(batches):
        items = [api_sample(runs(), offset + b * size + i) for i in range(size)]
        requests.append(("POST", "/api/v1/samples/batch", json.dumps({"items": items}).encode(), headers, size))
    return run_load(port, requests, concurrency=concurrency, ok=_batch_ok).summary(
        f"REST batches of {size}, concurrency {concurrency}"
    )


def scenario_pntm(
    port: int, key: str, batches: int, size: int, concurrency: int, runs: RunSequence, offset: int
) -> dict[str, object]:
    headers = {"ACCESSKEY": key, "Content-Type": "application/json"}
    requests = []
    for b in range(batches):
        items = [pntm_sample(runs(), offset + b * size + i) for i in range(size)]
        requests.append(("POST", "/pntm/crearMuestras_v3", json.dumps(items).encode(), headers, size))
    return run_load(port, requests, concurrency=concurrency, ok=_pntm_ok).summary(
        f"crearMuestras_v3 batches of {size}, concurrency {concurrency}"
    )


# --- CPU per sample: the figure that does not depend on what else the machine is doing ---------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def _database_backends() -> list[int]:
    import psycopg

    url = database_url()
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [row[0] for row in rows]


def cpu_snapshot(server: Server) -> dict[int, float]:
    """CPU seconds used so far by each app worker and each PostgreSQL backend serving the benchmark database."""
    return {pid: _cpu_seconds(pid) for pid in [*server.worker_pids(), *_database_backends()]}


def measured(server: Server, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Runs a scenario and adds the CPU it cost per sample, split into app workers and PostgreSQL backends
    (CPU time, unlike throughput, barely changes when other programs share the machine)."""
    workers = set(server.worker_pids())
    before = cpu_snapshot(server)
    summary = run()
    after = cpu_snapshot(server)
    app = sum(after[p] - before.get(p, 0.0) for p in after if p in workers)
    database = sum(after[p] - before.get(p, 0.0) for p in after if p not in workers)
    items = max(int(summary["items"]), 1)
    summary["app_cpu_ms_per_item"] = round(app * 1000 / items, 3)
    summary["db_cpu_ms_per_item"] = round(database * 1000 / items, 3)
    summary["loadavg"] = Path("/proc/loadavg").read_text().split()[0:3]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=["all", "single", "batch", "pntm", "baseline"], default="all")
    parser.add_argument("--count", type=int, default=6000, help="single: number of requests")
    parser.add_argument("--concurrency", type=int, default=16, help="single: concurrent connections")
    parser.add_argument("--batches", type=int, default=30, help="batch/pntm: number of batches")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-concurrency", type=int, default=4)
    parser.add_argument("--baseline-samples", type=int, default=30000)
    parser.add_argument(
        "--warm-up",
        type=int,
        default=None,
        help="untimed batches per scenario sent first, ten times as many single requests (default: 3 per app "
        "worker; 0 for none)",
    )
    args = parser.parse_args()
    run_all = args.scenario == "all"
    baseline_rate = None
    if run_all or args.scenario == "baseline":
        baseline_rate = baseline.measure(args.baseline_samples, args.batch_size)
        if args.scenario == "baseline":
            return
    fresh_database()
    key = issue_key(LAB_X)
    runs = RunSequence(50_000_000)
    with running_server() as server:
        # A production server's workers are long-running: each has opened its connection, prepared its statements
        # and filled its look-up caches long before. Without a warm-up a short run charges every worker's first
        # requests (imports, first connection, caches) to the figures; the warm-up requests are not counted.
        warm = args.warm_up if args.warm_up is not None else 3 * len(server.worker_pids())
        if run_all or args.scenario == "single":
            if warm:
                scenario_single(server.port, key, warm * 10, args.concurrency, runs, 5_000_000)
            print_figures(
                measured(server, lambda: scenario_single(server.port, key, args.count, args.concurrency, runs)),
                baseline_rate=baseline_rate,
                rss_mb=server.peak_worker_rss_mb(),
            )
        if run_all or args.scenario == "batch":
            if warm:
                scenario_batch(server.port, key, warm, args.batch_size, len(server.worker_pids()), runs, 3_000_000)
            print_figures(
                measured(
                    server,
                    lambda: scenario_batch(
                        server.port, key, args.batches, args.batch_size, args.batch_concurrency, runs, 1_000_000
                    ),
                ),
                baseline_rate=baseline_rate,
                rss_mb=server.peak_worker_rss_mb(),
            )
        if run_all or args.scenario == "pntm":
            if warm:
                scenario_pntm(server.port, key, warm, args.batch_size, len(server.worker_pids()), runs, 4_000_000)
            print_figures(
                measured(
                    server,
                    lambda: scenario_pntm(
                        server.port, key, args.batches, args.batch_size, args.batch_concurrency, runs, 2_000_000
                    ),
                ),
                baseline_rate=baseline_rate,
                rss_mb=server.peak_worker_rss_mb(),
            )


if __name__ == "__main__":
    main()
