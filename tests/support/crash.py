"""Helpers of the crash tests: start a `biofed` process to kill, read a catalogue, compare it with a clean one."""

from __future__ import annotations

import collections
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import orjson


def spawn(args: list[str], **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "biofed", *args], env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            **kw)



HARVEST_PAGE = 100  # small pages: many commit points to land between
CATALOGUE_TABLES = ("actors", "actor_sectors", "actor_value_chain", "actor_technologies", "projects",
                    "participations", "offers", "offer_technologies", "region_profiles")
WHEN_SEEN = {"first_seen", "verified_at", "stale_since"}


def query(db: Path, sql: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def log_prefix_state(node_dir: Path, cursor: int) -> dict:
    """What a catalogue that applied entries 1..cursor of this node's log holds for it."""
    live, tombs, changes = {}, {}, collections.Counter()
    for rid, leaf in query(node_dir / "node.db", "SELECT record_id, leaf FROM log WHERE seq <= ? ORDER BY seq",
                           (cursor,)):
        record = orjson.loads(leaf)
        if record["type"] == "Tombstone":
            if rid in live:
                changes[(rid, "delete", record["version"])] += 1
            live.pop(rid, None)
            tombs[rid] = record["version"]
        else:
            live[rid] = (record["version"], leaf.decode())
            tombs.pop(rid, None)
            changes[(rid, "put", record["version"])] += 1
    return {"records": live, "tombstones": tombs, "changes": changes}


def assert_committed_prefix(db: Path, node_dirs: dict[str, Path], where: str) -> dict[str, int]:
    """The catalogue holds, for every node, exactly the harvest of its log up to the stored cursor."""
    assert query(db, "PRAGMA integrity_check") == [("ok",)], where
    cursors = dict(query(db, "SELECT id, cursor FROM nodes"))
    frontier = dict(query(db, "SELECT node_id, frontier_size FROM node_state"))
    for node_id, node_dir in node_dirs.items():
        cursor = cursors.get(node_id, 0)
        assert frontier.get(node_id, 0) == cursor, f"{where}: {node_id} frontier size != cursor"
        expected = log_prefix_state(node_dir, cursor)
        held = {rid: (version, signed) for rid, version, signed in
                query(db, "SELECT id, version, signed_json FROM records WHERE node_id = ?", (node_id,))}
        assert held == expected["records"], f"{where}: {node_id} records are not the log prefix 1..{cursor}"
        assert dict(query(db, "SELECT id, version FROM tombstones WHERE node_id = ?", (node_id,))) == \
            expected["tombstones"], f"{where}: {node_id} tombstones"
        changes = collections.Counter(query(db, "SELECT record_id, op, version FROM changes WHERE node_id = ?",
                                            (node_id,)))
        assert changes == expected["changes"], f"{where}: {node_id} changes lost or applied twice"
        actors = {rid for (rid,) in query(db, "SELECT id FROM actors WHERE node_id = ?", (node_id,))}
        assert actors == set(expected["records"]), f"{where}: {node_id} actors table"
    return cursors


def catalogue_contents(db: Path) -> dict:
    """Everything that must be identical to a clean run (see the module docstring)."""
    out = {
        "records": query(db, "SELECT id, node_id, type, version, signed_json, stale, record_url FROM records ORDER BY id"),
        "tombstones": query(db, "SELECT id, node_id, version FROM tombstones ORDER BY id"),
        "nodes": query(db, "SELECT id, health, status, records, cursor, tree_size, root_hash, error FROM nodes ORDER BY id"),
        "node_state": query(db, "SELECT node_id, frontier, frontier_size FROM node_state ORDER BY node_id"),
        "changes": collections.Counter(query(db, "SELECT record_id, node_id, op, version FROM changes")),
        "rejections": query(db, "SELECT node_id, seq, record_id, reason FROM rejections ORDER BY node_id, seq"),
    }
    for table in CATALOGUE_TABLES:
        columns = [row[1] for row in query(db, f"PRAGMA table_info([{table}])") if row[1] not in WHEN_SEEN]
        listed = ", ".join(f"[{c}]" for c in columns)
        out[table] = (columns, query(db, f"SELECT {listed} FROM [{table}] ORDER BY {listed}"))
    return out


def harvest_args(registry: Path, db: Path) -> list[str]:
    return ["aggregator", "harvest", "--registry", str(registry), "--db", str(db), "--page-size", str(HARVEST_PAGE)]


def run_harvest(registry: Path, db: Path) -> dict[str, int]:
    """Harvest to the end; how many nodes ended in each status."""
    result = subprocess.run([sys.executable, "-m", "biofed", *harvest_args(registry, db)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    done = [orjson.loads(line) for line in result.stderr.splitlines() if '"event": "harvest-done"' in line]
    return done[-1]["nodes"]


