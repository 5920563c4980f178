"""What outbound events cost: the hot path (registering 1,000 samples in a batch with 0 and 3 subscriptions) and
the sender (deliveries per second to a receiver on 127.0.0.1).

    .venv/bin/python -m bench.outbound                 # PostgreSQL database muestra_bench_outbound (recreated)
    .venv/bin/python -m bench.outbound --rounds 5

Uses its own database (`BENCH_OUTBOUND_DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/
muestra_bench_outbound) so it never disturbs the other benchmarks. Prints one JSON line per measure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

URL = os.environ.get("BENCH_OUTBOUND_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/muestra_bench_outbound")
os.environ["BENCH_DATABASE_URL"] = URL
os.environ["DATABASE_URL"] = URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "muestra.settings")
os.environ.setdefault("AXES_ENABLED", "0")


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()

    from bench import harness

    harness.fresh_database()
    import django

    django.setup()
    from django.db import connection

    from muestra.accounts.models import User
    from muestra.accounts.scoping import actor_for_user
    from muestra.demo.builders import sample_input
    from muestra.integrations.models import Delivery, Subscription
    from muestra.integrations.outbound import services as outbound
    from muestra.integrations.outbound.signing import secret_generate
    from muestra.samples import services

    taker = actor_for_user(User.objects.get(username="taker_a"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver = f"http://127.0.0.1:{server.server_address[1]}/events"

    def register_batch() -> float:
        items = [sample_input() for _ in range(args.batch)]
        started = time.perf_counter()
        outcomes = services.sample_register_batch(actor=taker, items=items)
        elapsed = time.perf_counter() - started
        assert all(o.ok for o in outcomes)
        return elapsed

    register_batch()  # warm the caches and the connection
    figures: dict[str, list[float]] = {"0": [], "3": []}
    for subscriptions in ("0", "3"):
        Subscription.objects.update(active=False)
        if subscriptions == "3":
            for name, kinds in (("surveillance", ["registered", "result_delivered"]), ("tracing", ["registered"])):
                Subscription.objects.create(name=name, url=receiver, secret=secret_generate(), event_kinds=kinds)
            Subscription.objects.create(
                name="fhir", url=receiver, secret=secret_generate(), event_kinds=["registered"], format="fhir"
            )
        outbound.subscriptions_cache_clear()
        register_batch()
        for _ in range(args.rounds):
            figures[subscriptions].append(register_batch())
    base, with_subs = statistics.median(figures["0"]), statistics.median(figures["3"])
    print(
        json.dumps(
            {
                "measure": "register_batch",
                "database": connection.vendor,
                "batch": args.batch,
                "seconds_no_subscription": round(base, 3),
                "seconds_3_subscriptions": round(with_subs, 3),
                "added_ms_per_sample": round((with_subs - base) * 1000 / args.batch, 3),
                "added_percent": round((with_subs / base - 1) * 100, 1),
            }
        )
    )
    # The recording step alone, for one batch's events.
    from muestra.samples.models import SampleEvent

    last_ids = list(SampleEvent.objects.order_by("-pk").values_list("pk", flat=True)[: args.batch])
    Delivery.objects.filter(sample_event_id__in=last_ids).delete()
    started = time.perf_counter()
    created = outbound.deliveries_record(event_ids=last_ids)
    record = time.perf_counter() - started
    print(
        json.dumps(
            {
                "measure": "deliveries_record",
                "events": len(last_ids),
                "deliveries": created,
                "ms": round(record * 1000, 1),
            }
        )
    )
    pending = Delivery.objects.exclude(state=Delivery.State.DELIVERED).count()
    started = time.perf_counter()
    report = outbound.deliveries_send(budget_seconds=600)
    send = time.perf_counter() - started
    print(
        json.dumps(
            {
                "measure": "send",
                "pending": pending,
                "delivered": report.delivered,
                "per_second": round(report.delivered / send, 1),
            }
        )
    )
    server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
