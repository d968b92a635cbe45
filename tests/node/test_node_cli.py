"""`biofed node ...` commands. (A real import process killed with SIGKILL: node/test_crash_import.py.)"""

from __future__ import annotations

import json

import orjson
from support.node import NODE_ID, actors, init, run_cli, write_jsonl

from biofed.node.store import Node, hash_token
from biofed.trust import proofs


def test_init_prints_the_token_once_and_refuses_again(tmp_path):
    directory, token = init(tmp_path)
    assert token.startswith("bfn_")
    with Node.open(directory) as node:
        assert node.authenticate(token).name == "admin"
        assert node.conn.execute("SELECT hash FROM tokens").fetchone()[0] == hash_token(token)
    again = run_cli("node", "init", directory, "--id", NODE_ID, "--name", "X", "--country", "DE", ok=False)
    assert again.exit_code == 1 and again.output.startswith("Error: ") and "not an empty directory" in again.output
    bad = run_cli("node", "init", tmp_path / "other", "--id", "X Y", "--name", "X", "--country", "DE", ok=False)
    assert bad.exit_code == 1 and "node id" in bad.output


def test_import_export_show_and_reimport(tmp_path):
    directory, _ = init(tmp_path)
    source = write_jsonl(tmp_path / "members.jsonl", actors(30))
    result = run_cli("node", "import", directory, source, "--quiet")
    assert "30 created" in result.stderr
    again = run_cli("node", "import", directory, source, "--quiet")
    assert "0 created, 0 updated, 30 unchanged" in again.stderr
    with Node.open(directory) as node:
        assert node.tree_size() == 30
        key = node.signing_key.public
    exported = run_cli("node", "export", directory).stdout_bytes.splitlines()
    assert len(exported) == 30
    for line in exported:
        proofs.verify(orjson.loads(line), key)
    # an export re-imported is unchanged content
    out = tmp_path / "export.jsonl"
    run_cli("node", "export", directory, "--output", out)
    assert "30 unchanged" in run_cli("node", "import", directory, out, "--quiet").stderr
    descriptor = json.loads(run_cli("node", "show", directory).stdout)
    assert descriptor["id"] == NODE_ID and descriptor["keys"]["keys"][0]["kid"] == key.kid


def test_import_all_or_nothing_names_row_field_reason(tmp_path):
    directory, _ = init(tmp_path)
    records = actors(10)
    records[4] = {**records[4], "actorType": "spaceship"}
    source = tmp_path / "members.jsonl"
    source.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records) + b'{"broken": \n')
    result = run_cli("node", "import", directory, source, "--quiet", ok=False)
    assert result.exit_code == 1
    assert "members.jsonl line 5" in result.stderr and "/actorType" in result.stderr
    assert "members.jsonl line 11" in result.stderr
    assert "2 of 11 rows" in result.stderr and "nothing imported" in result.stderr
    with Node.open(directory) as node:
        assert node.tree_size() == 0
    rejects = tmp_path / "rejects.jsonl"
    ok = run_cli("node", "import", directory, source, "--quiet", "--skip-invalid", "--rejects", rejects)
    assert "9 created" in ok.stderr and "2 rejected" in ok.stderr
    lines = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [line["source"] for line in lines] == ["members.jsonl line 5", "members.jsonl line 11"]
    assert lines[0]["errors"][0]["pointer"] == "/actorType"


def test_import_reports_rows_in_spreadsheet_order(tmp_path):
    """Row 3 before row 12 (not sorted as text), mapping and schema errors interleaved by position."""
    directory, _ = init(tmp_path)
    lines = ["id,name,actor_type"] + [f"a{n},Actor {n} GmbH,sme" for n in range(2, 13)]
    lines[3 - 1] = "a3,Actor 3 GmbH,startup"      # row 3: unknown code (importer)
    lines[12 - 1] = "a12,,sme"                     # row 12: no name (importer)
    source = tmp_path / "members.csv"
    source.write_text("\n".join(lines) + "\n")
    result = run_cli("node", "import", directory, source, "--quiet", ok=False)
    rows = [line.split(":")[0] for line in result.stderr.splitlines() if line.startswith("members.csv row")]
    assert rows == sorted(set(rows), key=lambda r: int(r.split()[-1])) and rows[0] == "members.csv row 3", rows
    records = actors(12)
    records[10] = {**records[10], "actorType": "spaceship"}  # line 11: the node refuses it
    jsonl = tmp_path / "members.jsonl"
    jsonl.write_bytes(b'{"broken": \n' + b"".join(orjson.dumps(r) + b"\n" for r in records[1:]))
    rejects = tmp_path / "rejects.jsonl"
    run_cli("node", "import", directory, jsonl, "--quiet", "--skip-invalid", "--rejects", rejects)
    assert [json.loads(line)["source"] for line in rejects.read_text().splitlines()] == \
        ["members.jsonl line 1", "members.jsonl line 11"]


def test_tokens_and_keys(tmp_path):
    directory, _ = init(tmp_path)
    token = run_cli("node", "token", directory, "create", "--name", "crm", "--scope", "write", "--scope", "delete").stdout.strip()
    listed = [json.loads(line) for line in run_cli("node", "token", directory, "list").stdout.splitlines()]
    assert [(t["name"], t["scopes"]) for t in listed] == [("admin", ["admin"]), ("crm", ["write", "delete"])]
    assert token not in run_cli("node", "token", directory, "list").stdout
    run_cli("node", "token", directory, "revoke", "crm")
    assert run_cli("node", "token", directory, "revoke", "crm", ok=False).exit_code == 1
    with Node.open(directory) as node:
        assert node.authenticate(token) is None
        old = node.signing_key.kid
    new = run_cli("node", "rotate-key", directory).stdout.strip()
    assert new != old
    run_cli("node", "revoke-key", directory, old, "--compromised-since", "2026-01-01T00:00:00Z")
    statuses = {k["kid"]: k["status"] for k in json.loads(run_cli("node", "show", directory).stdout)["keys"]["keys"]}
    assert statuses == {old: "revoked", new: "active"}
    bad = run_cli("node", "revoke-key", directory, "nope", "--compromised-since", "2026-01-01T00:00:00Z", ok=False)
    assert bad.exit_code == 1 and "not a key of node" in bad.output
    # one kid in 64 starts with '-': still read as the KID argument
    bad = run_cli("node", "revoke-key", directory, "-U" + old[2:], "--compromised-since", "2026-01-01T00:00:00Z", ok=False)
    assert bad.exit_code == 1 and "not a key of node" in bad.output
