"""A real BioFed node's checkpoint and log, checked by Go's golang.org/x/mod/sumdb/note and /tlog.

note.Open must verify the node's checkpoint with the verifier key the node
publishes (also with a witness cosignature added), and refuse what BioFed's
verifier refuses; tlog must compute the same leaf hashes and tree roots and
accept -- and itself compute -- the node's inclusion and consistency proofs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct

import orjson
import pytest
from fastapi.testclient import TestClient
from support.node import NODE_ID, actors, make_node

from biofed.node.app import create_app
from biofed.node.store import Node
from biofed.trust import checkpoint, merkle
from biofed.trust.canonical import canonicalize
from biofed.trust.checkpoint import Checkpoint, CheckpointError
from biofed.trust.keys import SigningKey

ORIGIN = f"biofed/node/{NODE_ID}"


@pytest.fixture
def served(tmp_path):
    """A real node with 14 log entries (12 puts, an update, a tombstone) behind its real app."""
    node, _ = make_node(tmp_path)
    node.put_many(actors(12))
    node.put({**actors(1, start=5)[0], "names": [{"value": "Renamed", "preferred": True}]}, expect_version=1)
    node.delete("actor/org-3")
    node.close()
    with TestClient(create_app(tmp_path / "node")) as client:
        yield client, tmp_path / "node"


def published(client):
    """(checkpoint note, the node's verifier key, its public key) as a third party gets them."""
    (vkey,) = client.get("/.well-known/biofed-node.json").json()["checkpointKeys"]
    return client.get("/checkpoint").text, vkey, checkpoint.parse_verifier_key(vkey)[1]


def cosignature_line(witness: SigningKey, note: str, name: str = "witness.example/w1", when: int = 1795000000) -> str:
    """A C2SP tlog-cosignature/v1 line: key hash (type 0x04) || 8-byte time || Ed25519 signature."""
    body = note[: note.rindex("\n\n") + 1].encode()
    key_hash = hashlib.sha256(name.encode() + b"\n\x04" + witness.public.raw).digest()[:4]
    signed = b"cosignature/v1\ntime %d\n" % when + body
    return f"\u2014 {name} " + base64.b64encode(key_hash + struct.pack(">Q", when) + witness.sign(signed)).decode() + "\n"


def go_open(go_interop, tmp_path, note: str, *vkeys: str):
    path = tmp_path / "checkpoint.txt"
    path.write_bytes(note.encode("utf-8"))
    result = go_interop.run("note", str(path), *vkeys)
    return (json.loads(result.stdout) if result.returncode == 0 else None), result.stderr.strip()


def test_go_note_verifies_the_node_checkpoint(go_interop, served, tmp_path):
    client, _ = served
    note, vkey, key = published(client)
    opened, error = go_open(go_interop, tmp_path, note, vkey)
    assert opened is not None, error
    cp = checkpoint.verify(note, [key], origin=ORIGIN)
    assert cp.size == 14 and opened["text"].encode() == cp.body()
    assert opened["sigs"] == [{"name": ORIGIN, "hash": vkey.split("+")[1]}] and opened["unverified"] == []


def test_go_note_ignores_a_witness_cosignature(go_interop, served, tmp_path):
    client, _ = served
    note, vkey, key = published(client)
    witness = SigningKey.generate()
    body, _, own = note.rpartition("\n\n")
    for cosigned in (note + cosignature_line(witness, note), body + "\n\n" + cosignature_line(witness, note) + own):
        opened, error = go_open(go_interop, tmp_path, cosigned, vkey)
        assert opened is not None, error
        assert opened["sigs"] == [{"name": ORIGIN, "hash": vkey.split("+")[1]}]
        assert [s["name"] for s in opened["unverified"]] == ["witness.example/w1"]
        assert checkpoint.verify(cosigned, [key], origin=ORIGIN).body().decode() == opened["text"]


def test_go_and_biofed_refuse_the_same_notes(go_interop, served, tmp_path):
    client, directory = served
    note, vkey, key = published(client)
    cp = checkpoint.verify(note, [key], origin=ORIGIN)
    with Node.open(directory) as node:
        old_name = Checkpoint(cp.origin, cp.size, cp.root, cp.timestamp).sign(node.signing_key, NODE_ID)
    body, _, own = note.rpartition("\n\n")
    cases = {
        "tampered size": (note.replace(f"\n{cp.size}\n", f"\n{cp.size + 1}\n", 1), "bad-signature", "invalid signature"),
        "signed under the node id": (old_name, "bad-signature", "no verifiable signatures"),
        "only a stranger's signature": (Checkpoint(cp.origin, cp.size, cp.root, cp.timestamp).sign(SigningKey.generate()),
                                        "bad-signature", "no verifiable signatures"),
        "101 signature lines": (note + "\u2014 w AAAAAAA=\n" * 100, "malformed", "malformed note"),
        "control character": (note.replace("timestamp", "\x0btimestamp"), "malformed", "malformed note"),
        "no final newline": (note[:-1], "malformed", "malformed note"),
        "empty signature block": (body + "\n\n", "malformed", "malformed note"),
        "key name with a plus": (note + "\u2014 a+b AAAAAAA=\n", "malformed", "malformed note"),
    }
    for label, (bad, reason, go_words) in cases.items():
        opened, error = go_open(go_interop, tmp_path, bad, vkey)
        assert opened is None and go_words in error, (label, error)
        with pytest.raises(CheckpointError) as err:
            checkpoint.verify(bad, [key], origin=ORIGIN)
        assert err.value.reason == reason, (label, str(err.value))
    # and the 100-line limit is the same on both sides
    opened, error = go_open(go_interop, tmp_path, note + "\u2014 w AAAAAAA=\n" * 99, vkey)
    assert opened is not None, error
    checkpoint.verify(note + "\u2014 w AAAAAAA=\n" * 99, [key], origin=ORIGIN)


def b64(hashes):
    return [base64.b64encode(h).decode() for h in hashes]


def test_go_tlog_agrees_on_leaves_root_and_proofs(go_interop, served, tmp_path):
    client, _ = served
    note, _, key = published(client)
    cp = checkpoint.verify(note, [key], origin=ORIGIN)
    raw = client.get(f"/log?after=0&limit={cp.size}").content
    entries = orjson.loads(raw)["entries"]
    leaves = [canonicalize(entry["record"]) for entry in entries]
    assert all(b'"record":%s}' % leaf in raw for leaf in leaves)  # the page carries the leaf bytes verbatim
    n = cp.size
    inclusion = [(seq, size) for size in (1, 5, 8, n) for seq in sorted({1, (size + 1) // 2, size})]
    consistency = [(first, second) for second in (2, 8, n) for first in sorted({1, second // 2, second - 1}) if first]
    node_inclusion = [client.get(f"/log/proof/inclusion?seq={seq}&size={size}").json()["hashes"] for seq, size in inclusion]
    node_consistency = [client.get(f"/log/proof/consistency?first={f}&second={s}").json()["hashes"] for f, s in consistency]
    tampered = [base64.b64encode(bytes([base64.b64decode(node_inclusion[-1][0])[0] ^ 1]) +
                                 base64.b64decode(node_inclusion[-1][0])[1:]).decode()] + node_inclusion[-1][1:]
    doc = {"leaves": [base64.b64encode(leaf).decode() for leaf in leaves], "size": n,
           "root": base64.b64encode(cp.root).decode(),
           "inclusion": [{"index": seq - 1, "size": size, "proof": proof}
                         for (seq, size), proof in zip(inclusion + [inclusion[-1]], node_inclusion + [tampered])],
           "consistency": [{"first": f, "second": s, "proof": proof} for (f, s), proof in zip(consistency, node_consistency)]}
    path = tmp_path / "tlog.json"
    path.write_text(json.dumps(doc))
    result = go_interop.run("tlog", str(path))
    assert result.returncode == 0, result.stderr
    go = json.loads(result.stdout)
    hashes = [merkle.leaf_hash(leaf) for leaf in leaves]
    assert go["leafHashes"] == b64(hashes)
    assert go["treeHashes"] == b64([merkle.root(hashes[:size]) for size in range(1, n + 1)])
    assert go["rootMatches"] is True
    for (seq, size), mine, theirs in zip(inclusion, node_inclusion, go["inclusion"]):
        assert theirs["error"] == "" and theirs["proof"] == mine, (seq, size, theirs)
    assert go["inclusion"][-1]["error"] != ""  # the tampered proof: tlog can say no
    for (first, second), mine, theirs in zip(consistency, node_consistency, go["consistency"]):
        assert theirs["error"] == "" and (theirs["proof"] or []) == mine, (first, second, theirs)
