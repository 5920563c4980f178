"""HL7 v2 results: N ORU^R01 messages (one result each, CWE SNOMED "specimen unsatisfactory", which needs no signed
report) processed by `integrations.hl7.processing.receive` in FHS/BHS batches, in-process (no HTTP), timed.

    .venv/bin/python -m bench.hl7                          # fresh PostgreSQL database, 10,000 messages
    .venv/bin/python -m bench.hl7 --messages 100000 --batch 500 --reuse-database

The database is `BENCH_DATABASE_URL` (default `.../muestra_bench_hl7`), recreated, migrated, with reference data and
the demo personas; the samples are registered first through `sample_register_batch` (not timed). Prints one JSON
line: messages/s, the peak RSS of the process, and the ratio to the raw-SQL baseline of the same writes
(`bench/results_baseline.py`, measured after on fresh samples). Nothing asserts a timing.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
from collections.abc import Iterator
from pathlib import Path

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/muestra_bench_hl7"

MESSAGE = (
    "MSH|^~\\&|LIS-BENCH|LAB X|MUESTRA|MINSAL|{now}||ORU^R01^ORU_R01|B{n}|P|2.5.1\r"
    "PID|1||{doc}^^^CL&&ISO^NNCHL||Demo^Paciente||19850517|F\r"
    "ORC|RE|{number}|LIS-{n}||CM\r"
    "OBR|1|{number}|LIS-{n}|94500-6^SARS-CoV-2 RNA NAA^LN|||{collected}|||||||||||||||{now}|||F\r"
    "OBX|1|CWE|94500-6^SARS-CoV-2 RNA NAA^LN||125154007^Specimen unsatisfactory for evaluation^SCT||||||F\r"
    "SPM|1|{number}||258500001^Nasopharyngeal swab^SCT|||||||||||||{collected}\r"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500, help="messages per FHS/BHS batch")
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

    from muestra.accounts.scoping import SYSTEM, actor_for_api_key
    from muestra.accounts.services import api_key_issue
    from muestra.demo.builders import sample_input
    from muestra.facilities.models import Laboratory
    from muestra.integrations.hl7 import er7, processing
    from muestra.samples import services

    key, _raw = api_key_issue(
        actor=SYSTEM, name=f"bench hl7 {time.time()}", laboratory=Laboratory.objects.get(platform_id=1000000001)
    )
    actor = actor_for_api_key(key)
    # (number, document, collection time) only: 100,000 model instances would weigh more than the processing.
    samples: list[tuple[int, str, str]] = []
    while len(samples) < args.messages:
        size = min(1000, args.messages - len(samples))
        for outcome in services.sample_register_batch(actor=actor, items=[sample_input() for _ in range(size)]):
            sample = outcome.sample
            assert sample is not None, outcome.errors
            document = sample.patient.document_number if sample.patient else ""
            samples.append((sample.number, document, er7.format_ts(sample.collected_at)))
    with connection.cursor() as cursor:  # fresh statistics, as a live database has: the planner then uses the keys
        cursor.execute("ANALYZE")
    now = er7.format_ts()

    def batches() -> Iterator[bytes]:
        # Built one at a time, outside the timed part.
        for b in range(0, len(samples), args.batch):
            chunk = samples[b : b + args.batch]
            texts = [
                MESSAGE.format(now=now, n=i, doc=doc, number=number, collected=collected)
                for i, (number, doc, collected) in enumerate(chunk, start=b)
            ]
            yield (
                f"FHS|^~\\&|LIS-BENCH|LAB X|||{now}\rBHS|^~\\&|LIS-BENCH|LAB X|||{now}||||BATCH{b}\r"
                + "".join(texts)
                + f"BTS|{len(samples)}\rFTS|1\r"
            ).encode()

    accepted = 0
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    seconds = 0.0
    for body in batches():
        started = time.perf_counter()
        answer = processing.receive(actor, body)
        seconds += time.perf_counter() - started
        accepted += answer.body.count("MSA|AA|")
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
                "scenario": "HL7 ORU^R01 in FHS/BHS batches, in-process",
                "database": connection.vendor,
                "messages": len(samples),
                "batch": args.batch,
                "accepted": accepted,
                "seconds": round(seconds, 1),
                "messages_per_s": round(len(samples) / seconds, 1) if seconds else None,
                "peak_rss_mb": round(hwm_kb / 1024, 1),
                # The raw-SQL writes of the same results on this database (bench/results_baseline.py), measured after.
                **(compared(len(samples) / seconds, len(samples)) if seconds else {}),
            }
        )
    )


if __name__ == "__main__":
    main()
