"""The registration form driven over HTTP as a browser would, against the real server (gunicorn) on PostgreSQL.

    python -m bench.registration_form                       # 8 virtual takers, 150 registrations each
    python -m bench.registration_form --users 8 --per-user 150

Each virtual user signs in once through the login page (session cookie + CSRF cookie), opens the form
(GET /register/), then repeats "save and register the next": parse the CSRF and idempotency tokens and the
remembered settings out of the page, POST a registration of a new patient (unique RUN), follow the 303 to the
confirmation, which is the next empty form. Prints one JSON line: registrations per second and p50/p95/p99 of the
POST, of the GET that follows it, and of one whole registration (POST + GET, what the taker waits for).

The database is recreated first (bench.harness.fresh_database). Environment: BENCH_DATABASE_URL, BENCH_WORKER_CLASS,
BENCH_WORKERS, BENCH_THREADS (gunicorn, as bench.samples: sync workers, 2 x cores + 1).
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import statistics
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.cookies import SimpleCookie
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from bench.harness import RunSequence, fresh_database, running_server, server_options

CHILE = ZoneInfo("America/Santiago")
PASSWORD = "Muestra-demo-2026"  # the demo personas' published password (muestra.demo.world.DEMO_PASSWORD)
TAKER = "taker_a"

_TOKEN = re.compile(r'name="idempotency_token" value="([0-9A-Za-z]+)"')
_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_HIDDEN_ESTABLISHMENT = re.compile(r'name="establishment" value="([^"]*)"')
_SAVED = re.compile(r"data-sample-number>(\d{10})<")


def _selected(html: str, name: str) -> str:
    select = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html, re.S)
    if not select:
        return ""
    option = re.search(r'<option value="([^"]*)"[^>]*selected', select.group(1))
    return option.group(1) if option else ""


class Browser:
    """One keep-alive connection with the cookies a browser would keep (session, CSRF)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: dict[str, str] | None = None) -> tuple[int, str, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        data = None
        if body is not None:
            data = urlencode(body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        payload = response.read().decode("utf-8", "replace")
        for header in response.headers.get_all("Set-Cookie") or []:
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for key, morsel in jar.items():
                self.cookies[key] = morsel.value
        return response.status, response.headers.get("Location", ""), payload

    def sign_in(self) -> None:
        status, _, page = self.request("GET", "/accounts/login/")
        csrf = _CSRF.search(page)
        assert status == 200 and csrf, f"login page: {status}"
        status, location, _ = self.request(
            "POST",
            "/accounts/login/",
            {"csrfmiddlewaretoken": csrf.group(1), "username": TAKER, "password": PASSWORD, "next": "/"},
        )
        assert status == 302 and "sessionid" in self.cookies, f"sign-in failed: {status} {location}"


def registration(page: str, run: str, n: int) -> dict[str, str]:
    """What a taker types for a new patient, on top of what the page already holds (tokens, remembered settings)."""
    token = _TOKEN.search(page)
    csrf = _CSRF.search(page)
    establishment = _HIDDEN_ESTABLISHMENT.search(page)
    assert token and csrf and establishment, "the form lacks its tokens"
    collected = datetime.now(CHILE) - timedelta(minutes=30 + n % 60)
    return {
        "csrfmiddlewaretoken": csrf.group(1),
        "idempotency_token": token.group(1),
        "establishment": establishment.group(1),
        "laboratory": _selected(page, "laboratory") or "1000000001",
        "test": _selected(page, "test") or "covid19-pcr",
        "sample_type": _selected(page, "sample_type") or "nasopharyngeal-swab",
        "strategy": _selected(page, "strategy") or "symptomatic",
        "document_type": "run",
        "document_number": run,
        "document_issuer": "",
        "given_names": "Paciente",
        "paternal_surname": "Carga",
        "maternal_surname": "Prueba",
        "birth_date": "1985-05-17",
        "sex": "F",
        "residence": _selected(page, "residence") or "13101",
        "address": "Av. Siempre Viva 742",
        "phone": "912345678",
        "email": "",
        "insurance": "fonasa",
        "nationality": "",
        "collected_at": collected.strftime("%Y-%m-%dT%H:%M"),
        "result": "",
        "result_at": "",
        "tube_code": "",
        "save": "next",
    }


@dataclass
class Figures:
    posts: list[float] = field(default_factory=list)
    gets: list[float] = field(default_factory=list)
    whole: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000, 1)


def virtual_user(port: int, count: int, runs: RunSequence, runs_lock: threading.Lock, figures: Figures) -> None:
    browser = Browser(port)
    browser.sign_in()
    status, _, page = browser.request("GET", "/register/")
    assert status == 200, f"form: {status}"
    for n in range(count):
        with runs_lock:
            run = runs()
        body = registration(page, run, n)
        started = time.perf_counter()
        status, location, answer = browser.request("POST", "/register/", body)
        posted = time.perf_counter()
        if status != 303 or "saved=" not in location:
            with figures.lock:
                figures.errors += 1
                figures.first_error = figures.first_error or f"POST {status}: {answer[:300]!r}"
            page = answer if _TOKEN.search(answer) else browser.request("GET", "/register/")[2]
            continue
        status, _, page = browser.request("GET", location)  # the confirmation, with the next empty form
        done = time.perf_counter()
        with figures.lock:
            figures.posts.append(posted - started)
            figures.gets.append(done - posted)
            figures.whole.append(done - started)
            if status != 200 or not _SAVED.search(page):
                figures.errors += 1
                figures.first_error = figures.first_error or f"GET {status}"


def run(port: int, users: int, per_user: int) -> dict[str, object]:
    figures = Figures()
    runs = RunSequence(60_000_000)
    runs_lock = threading.Lock()
    threads = [
        threading.Thread(target=virtual_user, args=(port, per_user, runs, runs_lock, figures)) for _ in range(users)
    ]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    done = len(figures.whole)
    return {
        "benchmark": f"web registration form (POST + follow 303), concurrency {users}",
        "registrations": done,
        "errors": figures.errors,
        "first_error": figures.first_error,
        "seconds": round(seconds, 1),
        "registrations_per_s": round(done / seconds, 1),
        "requests_per_s": round(2 * done / seconds, 1),
        "post_p50_ms": percentile(figures.posts, 50),
        "post_p95_ms": percentile(figures.posts, 95),
        "post_p99_ms": percentile(figures.posts, 99),
        "get_p50_ms": percentile(figures.gets, 50),
        "get_p95_ms": percentile(figures.gets, 95),
        "get_p99_ms": percentile(figures.gets, 99),
        "request_p95_ms": percentile(figures.posts + figures.gets, 95),
        "registration_p50_ms": percentile(figures.whole, 50),
        "registration_p95_ms": percentile(figures.whole, 95),
        "registration_p99_ms": percentile(figures.whole, 99),
        "registration_mean_ms": round(statistics.fmean(figures.whole) * 1000, 1) if figures.whole else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=8, help="virtual takers (concurrent connections)")
    parser.add_argument("--per-user", type=int, default=150, help="registrations per virtual taker")
    parser.add_argument("--reuse-database", action="store_true", help="skip recreating the benchmark database")
    args = parser.parse_args()
    _worker_class, workers, _threads = server_options()
    if not args.reuse_database:
        fresh_database()
    with running_server() as server:
        # One warm-up registration per worker process fills its look-up caches, as on any running server.
        run(server.port, users=workers, per_user=2)
        summary = run(server.port, users=args.users, per_user=args.per_user)
        summary["peak_worker_rss_mb"] = round(server.peak_worker_rss_mb(), 1)
    print(json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
    main()
