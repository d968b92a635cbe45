"""What keeping replaced record versions (for immutable change-feed pages) costs a page of updates.

    python -m bench.bench_record_versions --records 50000 --changed 2000 --repeat 9

Builds a catalogue of `--records` actors (bulk load), then times the harvest's
write path for a page of updates (the `records` upsert, the catalogue upsert,
the `changes` rows; 500 records per transaction) on fresh copies of it: without
the record_versions triggers, with them and an empty record_versions, and with
them and a record_versions already holding one older version per record.
Process CPU (other processes on the machine do not count), best of `--repeat`,
and WAL pages per updated record (automatic checkpoints off).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from bench.records import actor

NODE = {"id": "n", "name": "N", "licence": "CC-BY-4.0", "base_url": "https://n.example"}
PAGE = 500
# The harvest's records upsert (harvest.commit._PageBatch.flush).
UPSERT = ("INSERT INTO records (id, node_id, type, version, date_modified, verified_at, signed_json,"
          " record_url, stale, stale_since) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, NULL)"
          " ON CONFLICT (id) DO UPDATE SET type = excluded.type, version = excluded.version,"
          " date_modified = excluded.date_modified, verified_at = excluded.verified_at,"
          " signed_json = excluded.signed_json, record_url = excluded.record_url, stale = 0, stale_since = NULL")
VARIANTS = ("no triggers", "triggers, empty record_versions", "triggers, record_versions of one version per record")


def record(i: int, version: int) -> dict:
    r = actor("n", i)
    r["version"] = version
    if version > 1:  # a searchable, indexed column changes, as in bench_page_writes
        r["names"][0]["value"] += f" v{version}"
    return r


def write_pages(conn: sqlite3.Connection, records: list[dict], now: str) -> None:
    from biofed.aggregator import catalogue

    for start in range(0, len(records), PAGE):
        page = records[start:start + PAGE]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(UPSERT, [(r["id"], "n", "Actor", r["version"], None, now, json.dumps(r, ensure_ascii=False),
                                   "https://n.example/records/" + r["id"]) for r in page])
        catalogue.upsert_flat(conn, [catalogue.flatten(r) for r in page], node=NODE, verified_at=now)
        conn.executemany("INSERT INTO changes (record_id, node_id, op, version, at) VALUES (?, ?, 'put', ?, ?)",
                         [(r["id"], "n", r["version"], now) for r in page])
        conn.execute("COMMIT")


def build(path: Path, records: int, with_versions: bool) -> None:
    from biofed.aggregator import catalogue, state

    conn = state.connect(path)
    conn.execute("BEGIN")
    catalogue.ensure_schema(conn, bulk=True)
    catalogue.bulk_begin(conn)
    conn.execute("COMMIT")
    write_pages(conn, [record(i, 1) for i in range(records)], "2026-01-01T00:00:00Z")
    catalogue.bulk_finish(conn)
    conn.execute("BEGIN")
    catalogue.finalise(conn)
    if with_versions:
        conn.executemany("INSERT INTO record_versions (record_id, version, signed_json) VALUES (?, 0, ?)",
                         ((f"n/actor/org-{i:06d}", json.dumps(record(i, 1))) for i in range(records)))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def run(base: Path, work: Path, variant: str, changed: list[dict]) -> tuple[float, float]:
    from biofed.aggregator import state

    db = work / "run.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    shutil.copy(base, db)
    conn = state.connect(db)
    if variant == "no triggers":
        conn.executescript("DROP TRIGGER records_keep_replaced; DROP TRIGGER records_keep_deleted;")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    for table in ("records", "actors", "changes", "record_versions"):  # pages cached, as in a warm re-harvest
        conn.execute(f"SELECT count(*), sum(length(quote(rowid))) FROM {table}").fetchone()
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    wal_before = os.path.getsize(str(db) + "-wal")
    start = time.process_time()
    write_pages(conn, changed, "2026-02-01T00:00:00Z")
    seconds = time.process_time() - start
    frames = (os.path.getsize(str(db) + "-wal") - wal_before) / (page_size + 24)
    conn.close()
    return seconds, frames


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--changed", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-record-versions-"))
    try:
        bases = {False: work / "plain.db", True: work / "versions.db"}
        for with_versions, path in bases.items():
            build(path, args.records, with_versions)
        step = max(1, args.records // args.changed)
        changed = [record(i, 2) for i in range(0, args.records, step)][:args.changed]
        results: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
        for _ in range(args.repeat):  # alternating, so a busy moment does not favour one variant
            for variant in VARIANTS:
                results[variant].append(run(bases[variant == VARIANTS[2]], work, variant, changed))
        print(f"{args.changed} of {args.records} actors updated, {PAGE} per transaction, best of {args.repeat}:")
        for variant, runs in results.items():
            best = min(seconds for seconds, _ in runs)
            print(f"  {variant:52s} {best * 1e6 / len(changed):6.1f} µs CPU, "
                  f"{runs[0][1] / len(changed):.2f} WAL pages per updated record")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
