"""Crash consistency: real `biofed` processes killed with SIGKILL at seeded random points.

Budget: ``BIOFED_CRASH_POINTS`` kill points per test (default 5, what CI runs);
the full run is::

    BIOFED_CRASH_POINTS=20 BIOFED_CRASH_NODE_RECORDS=2000 .venv/bin/python -m pytest tests/aggregator/test_crash_harvest.py

``BIOFED_CRASH_SEED`` (default 9162) seeds the random kill points; a failure
message names the seed and the kill point so it can be replayed.

Aggregator (`biofed aggregator harvest`)
    Three real nodes served by uvicorn on loopback, a signed registry file,
    3 x BIOFED_CRASH_NODE_RECORDS records at first (default 1,000; the full
    run uses 2,000, over the 4,000 new entries from which the harvester
    verifies in worker processes), then updates, new records and deletions. Round i first
    changes the nodes (new records, updates, deletions), then starts a
    harvest and kills its whole process group (the harvester and its
    verifying workers) after a random delay. After each kill the catalogue
    must be a committed prefix: for each node, the held records, versions,
    signed bytes and tombstones are exactly those of the node's log up to the
    stored cursor, and the frontier size equals the cursor. The next round's
    harvest resumes. At the end one more harvest completes (every node ok),
    and another one finds every node unchanged.

    Compared with a clean catalogue built by one uninterrupted harvest of
    the final nodes, these must be IDENTICAL:
      - records (id, node_id, type, version, signed_json, stale, record_url),
        tombstones (id, node_id, version);
      - actors / projects / offers / participations / junction tables: every
        column except first_seen, verified_at, stale_since (wall-clock times
        of when this aggregator saw a record);
      - nodes (id, health, status, records, cursor, tree_size, root_hash,
        error), node_state (frontier, frontier_size);
      - changes as a multiset of (record_id, node_id, op, version): every log
        entry applied exactly once, none lost, none twice.
    These may legitimately differ: changes.seq numbering and `at` (the killed
    catalogue applied the same entries over several runs, interleaving the
    nodes differently), harvest_runs (killed runs leave unfinished rows),
    every timestamp column, and checkpoint_timestamp / checkpoint notes (the
    nodes re-sign).
"""

from __future__ import annotations

import collections
import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import time

import pytest
from support.crash import (
    assert_committed_prefix,
    catalogue_contents,
    harvest_args,
    query,
    run_harvest,
    spawn,
)

from biofed.node.samples import sample_actor
from biofed.node.store import Node

POINTS = int(os.environ.get("BIOFED_CRASH_POINTS", "5"))
SEED = int(os.environ.get("BIOFED_CRASH_SEED", "9162"))
BATCH = int(os.environ.get("BIOFED_CRASH_BATCH", "2000"))



def change_nodes(nodes: dict[str, Node], round_: int, rng: random.Random, size: int) -> None:
    """New records, updates and a few deletions on every node (well under the mass-deletion threshold)."""
    for node in nodes.values():
        live = sorted(r[0] for r in node.conn.execute("SELECT id FROM records WHERE deleted = 0"))
        updates = rng.sample(range(size), size // 4)
        new = range(size + round_ * size // 8, size + (round_ + 1) * size // 8)
        node.put_many([sample_actor(n, seed=round_ + 1) for n in [*updates, *new]])
        for record_id in rng.sample(live, max(1, len(live) // 100)):
            node.delete(record_id)


@pytest.mark.slow
def test_sigkill_harvest_at_random_points_then_resume_equals_clean_run(tmp_path):
    from support.network import Network

    rng = random.Random(SEED + 1)
    size = int(os.environ.get("BIOFED_CRASH_NODE_RECORDS", "1000"))
    net = Network(tmp_path)
    try:
        nodes = {}
        for node_id in ("alpha", "beta", "gamma"):
            node, _ = net.real_node(node_id, 0)
            node.put_many([sample_actor(n) for n in range(size)])
            nodes[node_id] = node
        net.publish()
        node_dirs = {node_id: node.directory for node_id, node in nodes.items()}
        killed_db = tmp_path / "killed.db"
        landed = collections.Counter()
        for round_ in range(POINTS):
            if round_:
                change_nodes(nodes, round_, rng, size)
            before = dict(query(killed_db, "SELECT id, cursor FROM nodes")) if killed_db.exists() else {}
            target = {n: node.tree_size() for n, node in nodes.items()}
            pending = sum(target.values()) - sum(before.values())
            phase = ("startup", "mid-harvest", "finalise")[round_ % 3] if round_ < 3 else \
                rng.choice(("startup", "mid-harvest", "mid-harvest", "finalise"))
            fraction = rng.uniform(0.05, 0.95)
            delay = {"startup": rng.uniform(0, 0.8), "mid-harvest": 0.0, "finalise": rng.uniform(0, 0.05)}[phase]
            where = f"seed {SEED + 1}, round {round_}, phase {phase}, fraction {fraction:.2f}, delay {delay:.2f}"
            process = spawn(harvest_args(net.registry_path, killed_db), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                deadline = time.monotonic() + 120
                goal = sum(before.values()) + (fraction * pending if phase == "mid-harvest" else pending)
                while phase != "startup" and process.poll() is None and time.monotonic() < deadline:
                    try:
                        done = sum(c for (c,) in query(killed_db, "SELECT cursor FROM nodes"))
                    except sqlite3.Error:  # not created yet
                        done = 0
                    if done >= goal:
                        break
                    time.sleep(0.002)
                time.sleep(delay)
                exited_before = process.poll() is not None
                with contextlib.suppress(ProcessLookupError):  # the harvester and its verifying workers
                    os.killpg(process.pid, signal.SIGKILL)
            finally:
                process.wait(30)
            if not killed_db.exists():
                landed[(phase, "before the catalogue existed")] += 1
                continue
            cursors = assert_committed_prefix(killed_db, node_dirs, where)
            progress = sum(cursors.values()) - sum(before.values())
            landed[(phase, "after exit" if exited_before else
                    "nothing committed" if progress == 0 else
                    "all pages committed" if progress == pending else "mid-harvest")] += 1

        print(f"harvest kill points (seed {SEED + 1}): {dict(landed)}")
        assert landed[("mid-harvest", "mid-harvest")] >= 1, f"no kill landed between pages: {dict(landed)}"
        statuses = run_harvest(net.registry_path, killed_db)
        assert sum(statuses.values()) == 3 and set(statuses) <= {"ok", "unchanged"}, statuses
        assert_committed_prefix(killed_db, node_dirs, "after the completing harvest")
        assert dict(query(killed_db, "SELECT id, cursor FROM nodes")) == {n: node.tree_size() for n, node in nodes.items()}
        assert run_harvest(net.registry_path, killed_db) == {"unchanged": 3}

        clean_db = tmp_path / "clean.db"
        assert run_harvest(net.registry_path, clean_db) == {"ok": 3}
        killed, clean = catalogue_contents(killed_db), catalogue_contents(clean_db)
        assert killed["records"] and killed["actors"][1]
        for part in clean:
            assert killed[part] == clean[part], part
    finally:
        net.close()
