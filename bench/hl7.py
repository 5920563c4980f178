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
import json
from collections.abc import Iterator

from bench import ingest

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

    ingest.setup_django(DEFAULT_URL, fresh=not args.reuse_database)
    from django.db import connection

    from bench.results_baseline import compared
    from muestra.integrations.hl7 import er7, processing

    actor = ingest.lab_x_actor("bench hl7")
    samples = ingest.registered_samples(
        actor,
        args.messages,
        lambda s: (s.number, s.patient.document_number if s.patient else "", er7.format_ts(s.collected_at)),
    )
    now = er7.format_ts()

    def batches() -> Iterator[bytes]:
        for b, chunk in ingest.chunks(samples, args.batch):
            texts = [
                MESSAGE.format(now=now, n=i, doc=doc, number=number, collected=collected)
                for i, (number, doc, collected) in enumerate(chunk, start=b)
            ]
            yield (
                f"FHS|^~\\&|LIS-BENCH|LAB X|||{now}\rBHS|^~\\&|LIS-BENCH|LAB X|||{now}||||BATCH{b}\r"
                + "".join(texts)
                + f"BTS|{len(texts)}\rFTS|1\r"
            ).encode()

    accepted = 0

    def receive(body: bytes) -> None:
        nonlocal accepted
        accepted += processing.receive(actor, body).body.count("MSA|AA|")

    timed = ingest.Timed(profile=args.profile)
    timed.run(batches(), receive)
    seconds = timed.seconds
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
                "peak_rss_mb": ingest.peak_rss_mb(),
                # The raw-SQL writes of the same results on this database (bench/results_baseline.py), measured after.
                **(compared(len(samples) / seconds, len(samples)) if seconds else {}),
            }
        )
    )


if __name__ == "__main__":
    main()
