"""Baseline: the same rows a sample registration stores (patient, sample, registration event, audit entry),
inserted straight into PostgreSQL with psycopg (multi-row INSERTs, one transaction per batch), no Django, no HTTP.

The API benchmarks print their rate as a ratio of this one, measured on the same machine.

    python bench/baseline.py --samples 20000 --batch 1000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from datetime import date

import psycopg

from bench.harness import RunSequence, database_url, fresh_database, print_figures, recent_time


def _ids(conn: psycopg.Connection) -> dict[str, int]:
    def one(sql: str) -> int:
        row = conn.execute(sql).fetchone()
        assert row is not None, sql
        return int(row[0])

    return {
        "doc": one("SELECT id FROM catalog_identitydocumenttype WHERE code = 'run'"),
        "ins": one("SELECT id FROM catalog_healthinsurance WHERE code = 'fonasa'"),
        "res": one("SELECT id FROM territories_territory WHERE level = 'cl_comuna' AND code = '13101'"),
        "est": one("SELECT id FROM facilities_establishment WHERE code = '113100'"),
        "lab": one("SELECT id FROM facilities_laboratory WHERE platform_id = 1000000001"),
        "test": one("SELECT id FROM catalog_test WHERE code = 'covid19-pcr'"),
        "dis": one("SELECT disease_id FROM catalog_test WHERE code = 'covid19-pcr'"),
        "st": one("SELECT id FROM catalog_sampletype WHERE code = 'nasopharyngeal-swab'"),
    }


def insert_batch(conn: psycopg.Connection, ids: dict[str, int], runs: RunSequence, size: int, prev_hash: str) -> str:
    now = recent_time(0)
    with conn.transaction(), conn.cursor() as cur:
        patients = [
            (
                ids["doc"],
                runs(),
                "",
                "Paciente",
                "Demo",
                "Prueba",
                date(1985, 5, 17),
                "F",
                ids["res"],
                "Av. Siempre Viva 742",
                "+56912345678",
                "p@example.invalid",
                ids["ins"],
                now,
                now,
            )
            for _ in range(size)
        ]
        cur.execute(
            "INSERT INTO patients_patient (document_type_id, document_number, document_issuer, given_names,"
            " paternal_surname, maternal_surname, birth_date, sex, residence_id, address, phone, email, insurance_id,"
            " created_at, updated_at) VALUES "
            + ",".join(["(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"] * size)
            + " RETURNING id",
            [v for row in patients for v in row],
        )
        patient_ids = [r[0] for r in cur.fetchall()]
        collected = recent_time()
        samples = [
            (
                ids["est"],
                ids["lab"],
                pid,
                False,
                ids["dis"],
                ids["test"],
                ids["st"],
                False,
                collected,
                "",
                "",
                "",
                True,
                "",
                "{}",
                "registered",
                now,
                False,
                now,
                now,
                "api",
            )
            for pid in patient_ids
        ]
        cur.execute(
            "INSERT INTO samples_sample (establishment_id, laboratory_id, patient_id, is_pool, disease_id, test_id,"
            " sample_type_id, active_case_finding, collected_at, client_code, responsible_run,"
            " ordering_physician_run, without_medical_order, surveillance_number, answers, state, state_changed_at,"
            " retest_needed, created_at, updated_at, channel) VALUES "
            + ",".join(["(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"] * size)
            + " RETURNING id",
            [v for row in samples for v in row],
        )
        sample_ids = [r[0] for r in cur.fetchall()]
        events = [
            (sid, "registered", now, "apikey:1", "", "registered", "", "api", "{}", ids["lab"], ids["est"])
            for sid in sample_ids
        ]
        cur.execute(
            "INSERT INTO samples_sampleevent (sample_id, kind, at, actor, from_state, to_state, reason, channel,"
            " data, laboratory_id, establishment_id) VALUES " + ",".join(["(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"] * size),
            [v for row in events for v in row],
        )
        audit = []
        for sid in sample_ids:
            digest = hashlib.sha256(f"{prev_hash}{sid}".encode()).hexdigest()
            audit.append((now, "apikey:1", "sample.registered", "sample", str(sid), json.dumps({}), prev_hash, digest))
            prev_hash = digest
        cur.execute(
            "INSERT INTO audit_auditentry (at, actor, action, object_type, object_id, data, prev_hash, hash) VALUES "
            + ",".join(["(%s,%s,%s,%s,%s,%s,%s,%s)"] * size),
            [v for row in audit for v in row],
        )
    return prev_hash


def measure(samples: int, batch: int, *, fresh: bool = True) -> float:
    if fresh:
        fresh_database()
    runs = RunSequence(40_000_000)
    with psycopg.connect(database_url()) as conn:
        ids = _ids(conn)
        prev = "0" * 64
        started = time.perf_counter()
        done = 0
        while done < samples:
            size = min(batch, samples - done)
            prev = insert_batch(conn, ids, runs, size, prev)
            done += size
        seconds = time.perf_counter() - started
    rate = samples / seconds
    print_figures(
        {
            "benchmark": "baseline (raw SQL insert of the same rows)",
            "items": samples,
            "batch": batch,
            "seconds": round(seconds, 2),
            "items_per_s": round(rate, 1),
        }
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    measure(args.samples, args.batch)


if __name__ == "__main__":
    main()
