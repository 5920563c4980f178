"""Baseline for result ingestion: what delivering N results writes, done straight in PostgreSQL with psycopg.

Per result the platform stores a result row, moves the sample to "result" (state, times, value), appends the
"result delivered" event and one hash-chained audit entry. This module writes exactly those rows with raw SQL
(multi-row INSERTs, one `UPDATE … FROM (VALUES …)`, one transaction per 1,000 results, one connection, the hashes
computed in Python as the platform does), no Django, no parsing, no validation. The ingestion benchmarks
(`bench/uploads.py`, `bench/hl7.py`, `bench/fhir.py`) print their rate as a ratio of this one, on the same machine
and database.

    .venv/bin/python -m bench.results_baseline --results 20000     # on a fresh bench database

The samples it delivers to are registered first through `sample_register_batch` (not timed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from datetime import UTC, datetime

import psycopg

from bench.harness import database_url, fresh_database

BATCH = 1000


def _one(conn: psycopg.Connection, sql: str) -> int:
    row = conn.execute(sql).fetchone()
    assert row is not None, sql
    return int(row[0])


def deliver_raw(url: str, sample_ids: list[int], *, batch: int = BATCH) -> float:
    """Writes a result for each sample with raw SQL; returns the seconds it took."""
    with psycopg.connect(url) as conn:
        value = _one(conn, "SELECT id FROM catalog_resultvalue WHERE code = 'unsatisfactory'")
        lab = _one(conn, "SELECT id FROM facilities_laboratory WHERE platform_id = 1000000001")
        est = _one(conn, "SELECT id FROM facilities_establishment WHERE code = '113100'")
        started = time.perf_counter()
        prev = conn.execute("SELECT last_hash FROM audit_audithead WHERE id = 1").fetchone()
        prev_hash = prev[0] if prev else "0" * 64
        for start in range(0, len(sample_ids), batch):
            ids = sample_ids[start : start + batch]
            now = datetime.now(UTC)
            with conn.transaction(), conn.cursor() as cur:
                cur.execute("SELECT id FROM samples_sample WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [ids])
                cur.execute(
                    "INSERT INTO samples_result (sample_id, version, value_id, reported_at, entered_at,"
                    " laboratory_id, actor, report, report_sha256, report_content_type, reason) VALUES "
                    + ",".join(["(%s,1,%s,%s,%s,%s,'apikey:1','','','','')"] * len(ids)),
                    [v for sid in ids for v in (sid, value, now, now, lab)],
                )
                cur.execute(
                    "UPDATE samples_sample SET state = 'result', state_changed_at = v.t, received_at = v.t,"
                    " result_value_id = v.r, result_at = v.t, updated_at = v.t FROM (VALUES "
                    + ",".join(["(%s::bigint, %s::timestamptz, %s::bigint)"] * len(ids))
                    + ") AS v (id, t, r) WHERE samples_sample.id = v.id",
                    [v for sid in ids for v in (sid, now, value)],
                )
                cur.execute(
                    "INSERT INTO samples_sampleevent (sample_id, kind, at, actor, from_state, to_state, reason,"
                    " channel, data, laboratory_id, establishment_id) VALUES "
                    + ",".join(
                        ["(%s,'result_delivered',%s,'apikey:1','received','result','','import',%s,%s,%s)"] * len(ids)
                    ),
                    [v for sid in ids for v in (sid, now, json.dumps({"result": "unsatisfactory"}), lab, est)],
                )
                audit = []
                for sid in ids:
                    digest = hashlib.sha256(f"{prev_hash}{sid}result".encode()).hexdigest()
                    audit.append((now, str(sid), json.dumps({"result": "unsatisfactory"}), prev_hash, digest))
                    prev_hash = digest
                cur.execute(
                    "INSERT INTO audit_auditentry (at, actor, action, object_type, object_id, data, prev_hash, hash)"
                    " VALUES "
                    + ",".join(["(%s,'apikey:1','sample.result_delivered','sample',%s,%s,%s,%s)"] * len(ids)),
                    [v for row in audit for v in row],
                )
                cur.execute("UPDATE audit_audithead SET last_hash = %s WHERE id = 1", [prev_hash])
        return time.perf_counter() - started


def prepare_samples(count: int) -> list[int]:
    """Registers `count` samples of establishment A for lab X through the service (untimed); returns their ids."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "muestra.settings")
    import django

    django.setup()  # before the project's imports: run on its own (bench/uploads.py does), nothing set Django up
    from bench.ingest import registered_samples
    from muestra.accounts.scoping import SYSTEM

    return registered_samples(SYSTEM, count, lambda s: s.pk)


def compared(rate: float, count: int) -> dict[str, float]:
    """The baseline measured now on `count` (at most 20,000) fresh samples, and `rate` as a ratio of it. For the
    in-process benchmarks, after their timed part (Django is already set up)."""
    ids = prepare_samples(min(count, 20_000))
    base = len(ids) / deliver_raw(database_url(), ids)
    return {"baseline_results_per_s": round(base, 1), "ratio_to_baseline": round(rate / base, 2)}


def measure(count: int) -> dict[str, object]:
    ids = prepare_samples(count)
    seconds = deliver_raw(database_url(), ids)
    return {
        "benchmark": "results baseline (raw SQL: result, sample update, event, audit entry)",
        "results": count,
        "seconds": round(seconds, 2),
        "results_per_s": round(count / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=int, default=20_000)
    parser.add_argument("--reuse-database", action="store_true")
    args = parser.parse_args()
    if not args.reuse_database:
        fresh_database()
    os.environ["DATABASE_URL"] = database_url()
    print(json.dumps(measure(args.results)))


if __name__ == "__main__":
    main()
