"""HL7 v2 results: N ORU^R01 messages (one result each, CWE SNOMED "specimen unsatisfactory", which needs no signed
report) processed by `integrations.hl7.processing.receive` in FHS/BHS batches, in-process (no HTTP), timed.

    .venv/bin/python -m bench.hl7                          # fresh PostgreSQL database, 10,000 messages
    .venv/bin/python -m bench.hl7 --messages 100000 --batch 500 --reuse-database

The database is `BENCH_DATABASE_URL` (default `.../muestra_bench_hl7`), recreated, migrated, with reference data and
the demo personas; the samples are registered first through `sample_register_batch` (not timed). Prints one JSON
line: messages/s, and the peak RSS of the process. Nothing asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import time
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
    args = parser.parse_args()

    os.environ.setdefault("BENCH_DATABASE_URL", DEFAULT_URL)
    from bench.harness import _env, fresh_database

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
    samples = []
    while len(samples) < args.messages:
        size = min(1000, args.messages - len(samples))
        for outcome in services.sample_register_batch(actor=actor, items=[sample_input() for _ in range(size)]):
            assert outcome.sample is not None, outcome.errors
            samples.append(outcome.sample)
    now = er7.format_ts()
    texts = [
        MESSAGE.format(
            now=now,
            n=i,
            doc=s.patient.document_number if s.patient else "",
            number=s.number,
            collected=er7.format_ts(s.collected_at),
        )
        for i, s in enumerate(samples)
    ]
    batches = [
        (
            f"FHS|^~\\&|LIS-BENCH|LAB X|||{now}\rBHS|^~\\&|LIS-BENCH|LAB X|||{now}||||BATCH{b}\r"
            + "".join(texts[b : b + args.batch])
            + f"BTS|{len(texts[b : b + args.batch])}\rFTS|1\r"
        ).encode()
        for b in range(0, len(texts), args.batch)
    ]
    accepted = 0
    started = time.perf_counter()
    for body in batches:
        answer = processing.receive(actor, body)
        accepted += answer.body.count("MSA|AA|")
    seconds = time.perf_counter() - started
    status = Path("/proc/self/status").read_text()
    hwm_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    print(
        json.dumps(
            {
                "scenario": "HL7 ORU^R01 in FHS/BHS batches, in-process",
                "database": connection.vendor,
                "messages": len(texts),
                "batch": args.batch,
                "accepted": accepted,
                "seconds": round(seconds, 1),
                "messages_per_s": round(len(texts) / seconds, 1) if seconds else None,
                "peak_rss_mb": round(hwm_kb / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
