"""Shared plumbing for the benchmarks: a fresh PostgreSQL database, the real server (gunicorn) started against it,
API keys, a keep-alive HTTP load generator with latency percentiles, and peak memory of the app workers.

Benchmarks are scripts, not tests: they print figures for a human to compare, never assert timings.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DEFAULT_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
BENCH_DB = "muestra_bench"


def database_url() -> str:
    base = os.environ.get("BENCH_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}")
    return base


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DATABASE_URL": database_url(), "DJANGO_DEBUG": "0", "AXES_ENABLED": "0", "PYTHONPATH": str(ROOT)})
    env.update(extra or {})
    return env


def manage(*args: str) -> str:
    out = subprocess.run(
        [PYTHON, str(ROOT / "manage.py"), *args], cwd=ROOT, env=_env(), check=True, capture_output=True, text=True
    )
    return out.stdout


def fresh_database() -> None:
    """Drops and recreates the benchmark database, migrates it and loads reference data and the personas."""
    import psycopg

    url = database_url()
    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    manage("migrate", "-v0")
    manage("load_reference")
    manage("seed_demo")


def issue_key(lab_platform_id: int) -> str:
    return manage("issue_api_key", "--lab", str(lab_platform_id)).strip().splitlines()[-1].strip()


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(p) for p in children.read_text().split()]
        except OSError:
            return []

    def peak_worker_rss_mb(self) -> float:
        """The highest peak resident memory (VmHWM) among the app worker processes."""
        peaks = []
        for pid in self.worker_pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks.append(int(line.split()[1]) / 1024)
            except OSError:
                continue
        return max(peaks, default=0.0)


def server_options() -> tuple[str, int, int]:
    """gunicorn's worker class, workers and threads: by default what docs/operations.md tells operators to run,
    sync workers, 2 x cores + 1 (a request spends about a third of its time waiting on PostgreSQL, so two processes
    per core keep both cores busy). BENCH_WORKER_CLASS, BENCH_WORKERS and BENCH_THREADS override them: with
    `gthread` 4 x 2 on the 2-core machine the throughput was the same but the p99 of single registrations twice as
    high (threads of one process queue behind its GIL)."""
    worker_class = os.environ.get("BENCH_WORKER_CLASS", "sync")
    workers = int(os.environ.get("BENCH_WORKERS", str(2 * (os.cpu_count() or 1) + 1)))
    threads = int(os.environ.get("BENCH_THREADS", "1"))
    return worker_class, workers, threads


@contextmanager
def running_server(*, port: int = 8765) -> Iterator[Server]:
    worker_class, workers, threads = server_options()
    cmd = [
        PYTHON,
        "-m",
        "gunicorn",
        "muestra.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--worker-class",
        worker_class,
        "--log-level",
        "warning",
        "--timeout",
        "120",
    ]
    process = subprocess.Popen(cmd, cwd=ROOT, env=_env())
    server = Server(process, port)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/api/v1/openapi.json")
                conn.getresponse().read()
                break
            except OSError:
                time.sleep(0.3)
        else:
            raise RuntimeError("the server did not start")
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class LoadResult:
    requests: int
    items: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000

    def summary(self, label: str) -> dict[str, Any]:
        return {
            "benchmark": label,
            "requests": self.requests,
            "items": self.items,
            "errors": self.errors,
            "seconds": round(self.seconds, 2),
            "items_per_s": round(self.items / self.seconds, 1),
            "requests_per_s": round(self.requests / self.seconds, 1),
            "p50_ms": round(self.percentile(50), 1),
            "p99_ms": round(self.percentile(99), 1),
            "mean_ms": round(statistics.fmean(self.latencies) * 1000, 1) if self.latencies else 0,
        }


Request = tuple[str, str, bytes, dict[str, str], int]  # method, path, body, headers, items in it


def run_load(
    port: int,
    requests: list[Request],
    *,
    concurrency: int,
    ok: Callable[[int, bytes], bool] = lambda status, _b: status < 300,
) -> LoadResult:
    """Sends `requests` over `concurrency` keep-alive connections, as fast as the server answers."""
    lock = threading.Lock()
    position = iter(range(len(requests)))
    result = LoadResult(requests=len(requests), items=0, seconds=0.0)

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                index = next(position, None)
            if index is None:
                break
            method, path, body, headers, items = requests[index]
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                status, payload = 599, str(exc).encode()
            elapsed = time.perf_counter() - started
            with lock:
                result.latencies.append(elapsed)
                if ok(status, payload):
                    result.items += items
                else:
                    result.errors += 1
                    result.first_error = result.first_error or f"{status} {payload[:300]!r}"
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.perf_counter() - started
    return result


# --- realistic, unique rows --------------------------------------------------------------------------------------

_rng = random.Random(7)


def run_with_check_digit(body: int) -> str:
    total, factor = 0, 2
    for digit in reversed(str(body)):
        total += int(digit) * factor
        factor = 2 if factor == 7 else factor + 1
    check = 11 - total % 11
    return f"{body}-{'0' if check == 11 else 'K' if check == 10 else check}"


class RunSequence:
    """Distinct valid RUNs, so every benchmark row is a new patient (the expensive, realistic case)."""

    def __init__(self, start: int) -> None:
        self.next = start

    def __call__(self) -> str:
        self.next += 1
        return run_with_check_digit(self.next)


def recent_time(minutes_ago: int = 90) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes_ago + _rng.randrange(0, 60))


def print_figures(summary: dict[str, Any], *, baseline_rate: float | None = None, rss_mb: float | None = None) -> None:
    if baseline_rate:
        summary["ratio_to_baseline"] = round(summary["items_per_s"] / baseline_rate, 3)
    if rss_mb is not None:
        summary["peak_worker_rss_mb"] = round(rss_mb, 1)
    print(json.dumps(summary, ensure_ascii=False))
