"""Shared plumbing for the benchmarks: a fresh PostgreSQL database, the real server (gunicorn) started against it,
API keys, a keep-alive HTTP load generator with latency percentiles, and peak memory of the app workers.

Benchmarks are scripts, not tests: they print figures for a human to compare, never assert timings.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import selectors
import signal
import socket
import statistics
import subprocess
import sys
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
    """Sends `requests` over `concurrency` connections, as fast as the server answers.

    One thread and non-blocking sockets: the load generator shares the machine with the server, so it must cost as
    little as possible (16 threads over `http.client` took 0.17 of a core at ~280 requests/s, most of it parsing
    headers and handing the GIL around). Requests are encoded before the clock starts. A connection the server
    closes after its answer (gunicorn's sync workers always do) is reopened for the next request, as a proxy in
    front of them would.
    """
    encoded = [_encode(port, method, path, body, headers) for method, path, body, headers, _items in requests]
    result = LoadResult(requests=len(requests), items=0, seconds=0.0)
    pending = iter(range(len(requests)))
    selector = selectors.DefaultSelector()

    def start(conn: _Connection | None) -> None:
        index = next(pending, None)
        if index is None:
            if conn is not None:
                conn.sock.close()
            return
        if conn is None or conn.closed:
            conn = _Connection(port)
            selector.register(conn.sock, selectors.EVENT_WRITE, conn)
        else:
            selector.modify(conn.sock, selectors.EVENT_WRITE, conn)
        conn.begin(index, encoded[index])

    def finish(conn: _Connection, status: int, payload: bytes) -> None:
        result.latencies.append(time.perf_counter() - conn.started)
        if ok(status, payload):
            result.items += requests[conn.index][4]
        else:
            result.errors += 1
            result.first_error = result.first_error or f"{status} {payload[:300]!r}"
        if conn.closed:
            selector.unregister(conn.sock)
            conn.sock.close()
            start(None)
        else:
            start(conn)

    started = time.perf_counter()
    for _ in range(min(concurrency, len(requests))):
        start(None)
    while selector.get_map():
        for key, events in selector.select(timeout=120):
            conn = key.data
            try:
                if events & selectors.EVENT_WRITE:
                    if conn.send():
                        selector.modify(conn.sock, selectors.EVENT_READ, conn)
                    continue
                answer = conn.receive()
            except BlockingIOError:  # woken with nothing to read or no room to write: wait again
                continue
            except OSError as exc:
                conn.closed = True
                finish(conn, 599, str(exc).encode())
                continue
            if answer is not None:
                finish(conn, *answer)
    result.seconds = time.perf_counter() - started
    selector.close()
    return result


def _encode(port: int, method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Connection:
    """One client connection: sends a request's bytes, then reads one HTTP/1.1 answer (Content-Length or
    chunked bodies; the server's `Connection: close` marks it for reopening)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.closed = False
        self.index = -1
        self.started = 0.0
        self.out = memoryview(b"")
        self.buffer = bytearray()

    def begin(self, index: int, data: bytes) -> None:
        self.index = index
        self.out = memoryview(data)
        self.buffer.clear()
        self.started = time.perf_counter()

    def send(self) -> bool:
        """Sends what the socket takes; True once the whole request is out."""
        sent = self.sock.send(self.out)
        self.out = self.out[sent:]
        return not self.out

    def receive(self) -> tuple[int, bytes] | None:
        """Reads what has arrived; (status, body) once the answer is complete."""
        chunk = self.sock.recv(1 << 20)
        if chunk:
            self.buffer += chunk
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            if not chunk:
                raise ConnectionError("the server closed the connection before answering")
            return None
        head = bytes(self.buffer[:head_end]).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        fields = {}
        for line in head[1:]:
            name, _sep, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        body = self.buffer[head_end + 4 :]
        payload: bytes | None
        if "content-length" in fields:
            length = int(fields["content-length"])
            payload = bytes(body[:length]) if len(body) >= length else None
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            payload = _dechunk(bytes(body))
        else:  # no length: the body ends when the server closes the connection
            payload = None if chunk else bytes(body)
        if payload is None:
            if not chunk:
                raise ConnectionError("the server closed the connection mid-answer")
            return None
        self.closed = fields.get("connection", "").lower() == "close" or not chunk
        return status, payload


def _dechunk(data: bytes) -> bytes | None:
    """A complete chunked body decoded, or None while its last chunk has not arrived."""
    out = bytearray()
    position = 0
    while True:
        line_end = data.find(b"\r\n", position)
        if line_end < 0:
            return None
        size = int(data[position:line_end].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        start = line_end + 2
        if len(data) < start + size + 2:
            return None
        out += data[start : start + size]
        position = start + size + 2


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
