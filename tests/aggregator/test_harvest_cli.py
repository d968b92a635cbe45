"""The harvest command line, worker-process verification, and SIGKILL mid-harvest then resume."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from click.testing import CliRunner
from support.network import FAST, signed_leaves

from biofed.aggregator.cli import aggregator
from biofed.aggregator.harvest import harvest
from biofed.trust.canonical import canonicalize
from biofed.trust.keys import SigningKey


def snapshot(db) -> dict:
    conn = sqlite3.connect(db)
    try:
        return {
            "records": conn.execute("SELECT id, node_id, type, version, signed_json, stale FROM records ORDER BY id").fetchall(),
            "actors": conn.execute("SELECT id, name, node_id, version FROM actors ORDER BY id").fetchall(),
            "changes": conn.execute("SELECT record_id, op, version FROM changes ORDER BY record_id, version, op").fetchall(),
            "nodes": conn.execute("SELECT id, health, records, cursor, tree_size, root_hash FROM nodes ORDER BY id").fetchall(),
            "frontier": conn.execute("SELECT node_id, frontier, frontier_size FROM node_state ORDER BY node_id").fetchall(),
        }
    finally:
        conn.close()


def test_cli_harvest_and_status(net):
    net.real_node("alpha", 3)
    key = SigningKey.generate()
    net.log_server("down", [], key)
    net.servers[-1].stop()
    net.publish()
    runner = CliRunner()
    result = runner.invoke(aggregator, ["harvest", "--registry", str(net.registry_path), "--db", str(net.db)])
    assert result.exit_code == 1
    assert "down: error" in result.output and "1 ok" in result.output and "3 accepted" in result.output
    result = runner.invoke(aggregator, ["status", "--db", str(net.db)])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].startswith("registry version 1")
    assert any(line.startswith("alpha") and " ok " in line for line in lines)
    assert any(line.startswith("down") and "error" in line for line in lines)
    data = json.loads(runner.invoke(aggregator, ["status", "--db", str(net.db), "--json"]).output)
    alpha = next(n for n in data["nodes"] if n["id"] == "alpha")
    assert (alpha["records"], alpha["cursor"], alpha["health"]) == (3, 3, "ok")


def test_worker_processes_give_the_same_verdicts(net, tmp_path):
    net.real_node("alpha", 40)
    key = SigningKey.generate()
    leaves = signed_leaves("bad", key, 30)
    forged = json.loads(leaves[7])
    forged["actorType"] = "investor"
    leaves[7] = canonicalize(forged)
    net.log_server("bad", leaves, key)
    inline = net.harvest(dataclasses.replace(FAST, page_size=8))
    parallel_db = tmp_path / "parallel.db"
    parallel = harvest(net.registry_path, parallel_db, settings=dataclasses.replace(FAST, page_size=8, workers=2, parallel_threshold=1))
    assert {k: (v.status, v.accepted, v.rejected) for k, v in parallel.nodes.items()} == \
           {k: (v.status, v.accepted, v.rejected) for k, v in inline.nodes.items()} == {"alpha": ("ok", 40, 0), "bad": ("ok", 29, 1)}
    a, b = snapshot(net.db), snapshot(parallel_db)
    assert a["records"] == b["records"] and a["nodes"] == b["nodes"] and a["frontier"] == b["frontier"]


def test_sigkill_mid_harvest_then_resume_equals_clean_run(net, tmp_path):
    alpha, _ = net.real_node("alpha", 1500)
    net.real_node("beta", 20)
    net.publish()
    killed_db = tmp_path / "killed.db"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "biofed", "aggregator", "harvest", "--registry", str(net.registry_path),
           "--db", str(killed_db), "--page-size", "5", "--workers", "0"]
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cursor = 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                conn = sqlite3.connect(f"file:{killed_db}?mode=ro", uri=True, timeout=0.1)
                row = conn.execute("SELECT cursor FROM nodes WHERE id = 'alpha'").fetchone()
                conn.close()
                cursor = row[0] if row else 0
            except sqlite3.Error:
                cursor = 0
            if 0 < cursor:
                break
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(10)
    conn = sqlite3.connect(killed_db)
    cursor_after_kill = conn.execute("SELECT cursor FROM nodes WHERE id = 'alpha'").fetchone()[0]
    conn.close()
    assert 0 < cursor_after_kill < 1500, "the kill should land mid-harvest"
    report = harvest(net.registry_path, killed_db, settings=FAST)
    assert report.nodes["alpha"].status == "ok" and report.nodes["alpha"].entries == 1500 - cursor_after_kill
    clean_db = tmp_path / "clean.db"
    harvest(net.registry_path, clean_db, settings=FAST)
    killed, clean = snapshot(killed_db), snapshot(clean_db)
    for table in ("records", "actors", "changes", "nodes", "frontier"):
        assert killed[table] == clean[table], table
