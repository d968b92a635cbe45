"""Crash consistency: real `biofed` processes killed with SIGKILL at seeded random points.

Budget: ``BIOFED_CRASH_POINTS`` kill points per test (default 5, what CI runs);
the full run is::

    BIOFED_CRASH_POINTS=20 BIOFED_CRASH_NODE_RECORDS=2000 .venv/bin/python -m pytest tests/test_crash_consistency.py

``BIOFED_CRASH_SEED`` (default 9162) seeds the random kill points; a failure
message names the seed and the kill point so it can be replayed.

Node (`biofed node import`)
    Round i imports batch i (a few thousand generated actors: half of them
    updates of the previous batch, half new) and is killed at a random point
    in one of three phases, drawn from the seeded RNG: before writing starts
    (interpreter start, reading the file), mid-transaction (validating,
    signing, writing rows), or at the tail (log append, checkpoint signing,
    commit). The phase lengths come from a clean run of the same batches by
    the same command in another node directory. After each kill the node is
    reopened and must hold *exactly* the state after batch i-1 or after
    batch i of the clean run (ids, types, versions, content hashes, deletion
    flags, log order): all or nothing; its log must verify (Node.check_log()
    is empty, the root of the stored leaf hashes equals the latest
    checkpoint's root, that checkpoint's signature verifies with the node's
    key, every record row points at its own log entry and every logged id has
    a record row). Then the import is rerun and completes. At the end the
    node equals the clean one: same record contents (compared without
    version/dateModified/proof, i.e. by content hash), same versions, same
    counts, same log length and order of ids.

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
import sys
import time
from pathlib import Path

import orjson
import pytest
from test_node_cli import init, write_jsonl
from node_support import NODE_ID

from biofed.node.samples import sample_actor
from biofed.node.store import Node
from biofed.trust import checkpoint as checkpoints
from biofed.trust import merkle
from biofed.trust.keys import PublicKey

POINTS = int(os.environ.get("BIOFED_CRASH_POINTS", "5"))
SEED = int(os.environ.get("BIOFED_CRASH_SEED", "9162"))
BATCH = int(os.environ.get("BIOFED_CRASH_BATCH", "2000"))


# --- node helpers


def batch(i: int) -> list[dict]:
    """Batch i: the second half of batch i-1 updated (new seed), plus BATCH/2 new actors."""
    start = i * (BATCH // 2)
    return [sample_actor(n, seed=i) for n in range(start, start + BATCH)]


def node_state(directory: Path) -> dict:
    """Everything all-or-nothing is about, independent of keys and clocks."""
    conn = sqlite3.connect(directory / "node.db")
    try:
        return {
            "records": conn.execute("SELECT id, type, version, content_hash, deleted FROM records "
                                    "WHERE type NOT IN ('KeyRotation', 'KeyRevocation') ORDER BY id").fetchall(),
            "log": [row[0] for row in conn.execute("SELECT record_id FROM log ORDER BY seq")],
        }
    finally:
        conn.close()


def assert_log_verifies(directory: Path, where: str) -> int:
    with Node.open(directory) as node:
        assert node.check_log() == [], where
        conn = node.conn
        size = node.tree_size()
        leaves = [row[0] for row in conn.execute("SELECT leaf_hash FROM log ORDER BY seq")]
        assert len(leaves) == size, where
        assert [merkle.leaf_hash(row[0]) for row in conn.execute("SELECT leaf FROM log ORDER BY seq")] == leaves, where
        note = node.checkpoint_note()
        keys = [PublicKey.from_jwk({f: k[f] for f in ("kty", "crv", "x", "kid")}) for k in node.keys()]
        cp = checkpoints.verify(note, keys, origin=node.config.origin)
        assert (cp.size, cp.root) == (size, merkle.root(leaves)), where
        # every record row is its own latest log entry, every logged id has its record row
        rows = conn.execute("SELECT r.id, r.seq, l.record_id, l.leaf = r.signed FROM records r "
                            "LEFT JOIN log l ON l.seq = r.seq").fetchall()
        assert all(rid == logged and same for rid, _, logged, same in rows), where
        latest = dict(conn.execute("SELECT record_id, max(seq) FROM log GROUP BY record_id").fetchall())
        assert latest == {rid: seq for rid, seq, _, _ in rows}, where
        return size


def spawn(args: list[str], **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "biofed", *args], env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            **kw)


def timed_import(directory: Path, path: Path) -> tuple[float, float]:
    """Run an import to completion; (seconds until writing began, seconds of writing and commit)."""
    began = time.monotonic()
    process = spawn(["node", "import", str(directory), str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    start = done = None
    for line in process.stderr:
        if b'"event": "start"' in line:
            start = time.monotonic()
        elif b'"event": "done"' in line:
            done = time.monotonic()
    assert process.wait(60) == 0
    process.stderr.close()
    assert start is not None and done is not None
    return start - began, done - start


@pytest.mark.slow
def test_sigkill_import_at_random_points_is_all_or_nothing(tmp_path):
    rng = random.Random(SEED)
    files = [write_jsonl(tmp_path / f"batch-{i}.jsonl", batch(i)) for i in range(POINTS)]

    # The clean run: the same command, never killed; its state after each batch is the oracle.
    clean_dir, _ = init(tmp_path / "clean")
    states = [node_state(clean_dir)]
    timings = []
    for path in files:
        timings.append(timed_import(clean_dir, path))
        states.append(node_state(clean_dir))

    killed_dir, _ = init(tmp_path / "killed")
    assert node_state(killed_dir) == states[0]
    landed = collections.Counter()
    for i, path in enumerate(files):
        startup, writing = timings[i]
        phase = ("before-writing", "mid-transaction", "commit")[i % 3] if i < 3 else \
            rng.choice(("before-writing", "mid-transaction", "commit"))
        delay = {"before-writing": rng.uniform(0, startup),
                 "mid-transaction": rng.uniform(0.05, 0.85) * writing,
                 "commit": rng.uniform(0.85, 1.05) * writing}[phase]
        where = f"seed {SEED}, batch {i}, phase {phase}, delay {delay:.3f} s"
        process = spawn(["node", "import", str(killed_dir), str(path)], stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE)
        try:
            if phase == "before-writing":
                time.sleep(delay)
            else:
                for line in process.stderr:  # writing begins right after this line
                    if b'"event": "start"' in line:
                        break
                time.sleep(delay)
            process.send_signal(signal.SIGKILL)
        finally:
            returncode = process.wait(30)
            process.stderr.close()
        assert_log_verifies(killed_dir, where)
        after = node_state(killed_dir)
        assert after in (states[i], states[i + 1]), f"partial import ({where}): log size {len(after['log'])}, " \
            f"expected {len(states[i]['log'])} or {len(states[i + 1]['log'])}"
        landed[(phase, "committed" if after == states[i + 1] else "rolled back",
                "killed" if returncode == -signal.SIGKILL else f"exited {returncode}")] += 1
        # the node still works: the import is rerun and completes
        result = subprocess.run([sys.executable, "-m", "biofed", "node", "import", str(killed_dir), str(path),
                                 "--quiet"], capture_output=True, timeout=120)
        assert result.returncode == 0, result.stderr.decode()[-2000:]
        assert_log_verifies(killed_dir, where + ", after the rerun")
        assert node_state(killed_dir) == states[i + 1], where + ", after the rerun"

    print(f"node kill points (seed {SEED}): {dict(landed)}")
    assert any(phase != "before-writing" and outcome == "rolled back" and how == "killed"
               for (phase, outcome, how) in landed), f"no kill landed inside an import: {dict(landed)}"
    # the final node equals the clean one: contents (content hashes), versions, counts, log order
    assert node_state(killed_dir) == node_state(clean_dir)
    with Node.open(killed_dir) as killed, Node.open(clean_dir) as clean:
        assert killed.tree_size() == clean.tree_size() == len(states[-1]["log"])
        strip = ("version", "dateModified", "proof")
        contents = lambda node: sorted(({k: v for k, v in orjson.loads(r).items() if k not in strip}  # noqa: E731
                                        for r in node.current_records()[1]), key=lambda r: r["id"])
        assert contents(killed) == contents(clean)
        assert len(contents(killed)) == POINTS * (BATCH // 2) + BATCH // 2
        assert all(r["id"].startswith(NODE_ID + "/") for r in contents(killed))


# --- aggregator helpers

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
    from test_harvest import Network

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
