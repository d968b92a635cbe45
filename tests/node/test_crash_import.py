"""Crash consistency: real `biofed` processes killed with SIGKILL at seeded random points.

Budget: ``BIOFED_CRASH_POINTS`` kill points per test (default 5, what CI runs);
the full run is::

    BIOFED_CRASH_POINTS=20 BIOFED_CRASH_NODE_RECORDS=2000 .venv/bin/python -m pytest tests/node/test_crash_import.py

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
"""

from __future__ import annotations

import collections
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
from support.crash import spawn
from support.node import NODE_ID, init, write_jsonl

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


