"""Correctness under load: a real node and a real catalogue server, 50 concurrent clients.

Budget: ``BIOFED_LOAD_SECONDS`` of load per test (default 5, what CI runs) and
``BIOFED_LOAD_CLIENTS`` clients (default 50); the full run is::

    BIOFED_LOAD_SECONDS=60 .venv/bin/python -m pytest tests/aggregator/test_load.py

Nothing here is timed: the figures come from ``python -m bench.bench_load``
(docs/benchmarks.md, "Load"), which runs the same load functions.

Node: `biofed node serve` in its own process on loopback; the clients mix
reads (records, /log pages, /checkpoint, the descriptor) with authenticated
POSTs, PUTs with If-Match and DELETEs on shared records, so writes race.
Asserted: no 5xx and no transport errors, no unexpected status (a 412 for a
stale If-Match and a 410 for a record someone else deleted are correct and
counted); every acknowledged write is in the node exactly once: per id the
acknowledged versions are exactly 1..n (or 2..n+1 for records that existed
before), the stored version and the number of log entries match, a record is
deleted exactly when its last acknowledged write was a DELETE; the log grew by
exactly the number of acknowledged writes; the log verifies (check_log, the
signed checkpoint's root over all leaf hashes).

Catalogue: `biofed aggregator serve` (Datasette via make_datasette) over the
catalogue `biofed demo --no-serve` builds from the shipped real data; the
readers cycle through table pages, facets, search, row pages and canned
queries. Asserted: every answer is 200, no transport errors.
"""

from __future__ import annotations

import os

import pytest

# bench is a package of the repository root, which pytest puts on sys.path (pyproject.toml: pythonpath)
from bench.bench_load import build_demo_catalogue, run_catalogue_load, run_node_load

SECONDS = float(os.environ.get("BIOFED_LOAD_SECONDS", "5"))
CLIENTS = int(os.environ.get("BIOFED_LOAD_CLIENTS", "50"))


@pytest.mark.slow
def test_node_under_concurrent_reads_and_writes_loses_and_duplicates_nothing(tmp_path):
    stats, ledger, problems = run_node_load(tmp_path, clients=CLIENTS, seconds=SECONDS, records=500, seed=1)
    print(f"node: {stats.requests} requests, {ledger.writes} acknowledged writes, {ledger.conflicts} x 412; "
          f"statuses {dict(stats.statuses)}")
    assert stats.errors == [], stats.errors[:10]
    assert problems == [], problems[:10]
    kinds = {kind for kind, _ in stats.statuses}
    assert kinds == {"GET record", "GET /log", "GET /checkpoint", "GET descriptor", "POST record", "PUT record",
                     "DELETE record"}, kinds
    ops = {op for acks in ledger.acks.values() for op, _ in acks}
    assert ops == {"create", "update", "delete"}, ops


@pytest.mark.slow
def test_catalogue_under_concurrent_readers_answers_everything(tmp_path):
    db = build_demo_catalogue(tmp_path / "demo")
    stats = run_catalogue_load(tmp_path, db, clients=CLIENTS, seconds=SECONDS, seed=1)
    print(f"catalogue: {stats.requests} requests, statuses {dict(stats.statuses)}")
    assert stats.errors == [], stats.errors[:10]
    assert {kind for kind, _ in stats.statuses} == {"table", "facets", "search", "canned", "row", "index"}
