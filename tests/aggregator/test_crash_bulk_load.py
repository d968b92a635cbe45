"""A first harvest is a bulk load (no secondary indexes or FTS triggers while inserting; built once at
the end). A real `biofed aggregator harvest` killed with SIGKILL during it, and again once every page
is committed (while the indexes and FTS are being built, or finalise), must end, after the next
completed run, with exactly the schema (indexes, triggers, FTS tables), FTS answers and contents of a
harvest that never took the bulk path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sqlite3
import subprocess
import time

import pytest
from support.crash import catalogue_contents, harvest_args, query, run_harvest, spawn
from support.network import FAST, Network

from biofed.aggregator.harvest import harvest
from biofed.node.samples import sample_actor

SIZE = int(os.environ.get("BIOFED_CRASH_NODE_RECORDS", "1000"))
NORMAL = dataclasses.replace(FAST, page_size=100, bulk_load=False)
SEARCHES = ("Neckar", "Bio*", "Stern OR Filder", "pharm*", "research AND industry", "GmbH")


def schema(db) -> list[tuple]:
    """Every table, index, trigger and view by name and SQL (root pages differ between files)."""
    return query(db, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")


def searches(db) -> dict:
    out = {}
    for table, key in (("actors", "id"), ("projects", "id"), ("offers", "id")):
        for term in SEARCHES:
            out[(table, term)] = query(
                db, f"SELECT t.{key} FROM [{table}_fts] f JOIN [{table}] t ON t.rowid = f.rowid"
                    f" WHERE [{table}_fts] MATCH ? ORDER BY t.{key}", (term,))
    return out


def fts_integrity(db) -> None:
    conn = sqlite3.connect(db)
    try:
        for table in ("actors", "projects", "offers"):  # raises when the index does not match its content table
            conn.execute(f"INSERT INTO [{table}_fts] ([{table}_fts]) VALUES ('integrity-check')")
    finally:
        conn.close()


def bulk_flag(db) -> int:
    return dict(query(db, "SELECT name, value FROM harvest_flags")).get("bulk", 0)


def kill_when(registry, db, goal, total) -> tuple[str, bool]:
    """Start a harvest and SIGKILL its process group once the committed cursors reach `goal`."""
    process = spawn(harvest_args(registry, db), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            try:
                done = sum(c for (c,) in query(db, "SELECT cursor FROM nodes"))
            except sqlite3.Error:  # not created yet
                done = 0
            if done >= goal:
                break
            time.sleep(0.002)
        exited = process.poll() is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(30)
    return ("after exit" if exited else "killed"), bool(bulk_flag(db))


@pytest.mark.slow
def test_sigkill_during_bulk_first_harvest_ends_like_a_normal_harvest(tmp_path):
    net = Network(tmp_path)
    try:
        nodes = {}
        for node_id in ("alpha", "beta", "gamma"):
            node, _ = net.real_node(node_id, 0)
            node.put_many([sample_actor(n) for n in range(SIZE)])
            nodes[node_id] = node
        net.publish()
        total = sum(node.tree_size() for node in nodes.values())
        killed_db = tmp_path / "killed.db"

        # 1. killed between pages of the first harvest: the catalogue is in bulk mode (flag committed,
        #    indexes and triggers dropped)
        how, flagged = kill_when(net.registry_path, killed_db, total * 0.4, total)
        assert (how, flagged) == ("killed", True), "the kill did not land inside the bulk load"
        names = {name for (name,) in query(killed_db, "SELECT name FROM sqlite_master")}
        assert "idx_actors_name" not in names and "actors_ai" not in names and "actors_fts" in names
        assert 0 < query(killed_db, "SELECT count(*) FROM actors")[0][0] < total

        # 2. resumed and killed again once every page is committed (index/FTS build, finalise, or after exit)
        second, _ = kill_when(net.registry_path, killed_db, total, total)
        print(f"second kill: {second}, bulk flag {bulk_flag(killed_db)}")

        # 3. a completed run finishes the bulk load
        statuses = run_harvest(net.registry_path, killed_db)
        assert sum(statuses.values()) == 3 and set(statuses) <= {"ok", "unchanged"}, statuses
        assert bulk_flag(killed_db) == 0
        assert dict(query(killed_db, "SELECT name, value FROM harvest_flags"))["finalise"] == 0

        # the reference: one uninterrupted harvest on today's per-row path (indexes and triggers all along)
        clean_db = tmp_path / "clean.db"
        report = harvest(net.registry_path, clean_db, settings=NORMAL)
        assert report.ok and bulk_flag(clean_db) == 0

        def same(where):
            assert schema(killed_db) == schema(clean_db), where
            fts_integrity(killed_db)
            fts_integrity(clean_db)
            found = searches(killed_db)
            assert found[("actors", "Neckar")] and found[("actors", "GmbH")], where
            assert found == searches(clean_db), where
            killed, clean = catalogue_contents(killed_db), catalogue_contents(clean_db)
            for part in clean:
                assert killed[part] == clean[part], f"{where}: {part}"

        same("after the completed bulk load")

        # 4. the next (incremental) run is on the per-row path again: its triggers keep FTS right
        for node in nodes.values():
            node.put_many([sample_actor(n, seed=7) for n in range(0, SIZE, 10)])
            node.delete(sorted(r[0] for r in node.conn.execute("SELECT id FROM records WHERE deleted = 0"))[-1])
        assert run_harvest(net.registry_path, killed_db) == {"ok": 3}
        assert bulk_flag(killed_db) == 0
        assert harvest(net.registry_path, clean_db, settings=NORMAL).ok
        same("after an incremental run")
    finally:
        net.close()
