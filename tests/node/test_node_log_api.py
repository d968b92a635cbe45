"""The node's checkpoint key, log index and log-page promises (docs/protocol.md §5, §6), through the real app."""

from __future__ import annotations

import base64
import re
import sqlite3

import orjson
import pytest
from fastapi.testclient import TestClient
from support.node import NODE_ID, actors, descriptor_keys, make_node

from biofed.node.app import create_app
from biofed.node.store import Node
from biofed.trust import checkpoint, merkle
from biofed.trust.canonical import canonicalize
from biofed.trust.checkpoint import Checkpoint

ORIGIN = f"biofed/node/{NODE_ID}"


@pytest.fixture
def served(tmp_path):
    """A node with 6 records, one updated and one deleted; yields (client, admin token, directory)."""
    node, token = make_node(tmp_path)
    node.put_many(actors(6))
    node.put({**actors(1, start=2)[0], "names": [{"value": "Renamed", "preferred": True}]}, expect_version=1)
    node.delete("actor/org-4")
    node.close()
    with TestClient(create_app(tmp_path / "node")) as client:
        yield client, token, tmp_path / "node"


def test_descriptor_publishes_checkpoint_verifier_keys(served):
    client, _, directory = served
    descriptor = client.get("/.well-known/biofed-node.json").json()
    keys = descriptor_keys(descriptor)
    (vkey,) = descriptor["checkpointKeys"]
    name, key = checkpoint.parse_verifier_key(vkey)
    assert name == ORIGIN and key in keys.values()
    # the verifier key alone is enough to verify the served checkpoint
    note = client.get("/checkpoint").text
    assert note.split("\n")[5].startswith(f"\u2014 {ORIGIN} ")
    assert checkpoint.verify(note, [key], origin=ORIGIN).size == 8
    # after a rotation both keys may vouch; a revoked key is no longer listed
    with Node.open(directory) as node:
        old = node.signing_key.kid
        new = node.rotate_key()
    listed = client.get("/.well-known/biofed-node.json").json()["checkpointKeys"]
    assert len(listed) == 2
    new_key = descriptor_keys(client.get("/.well-known/biofed-node.json").json())[new]
    assert checkpoint.verifier_key(ORIGIN, new_key) in listed
    with Node.open(directory) as node:
        node.revoke_key(old, "2020-01-01T00:00:00Z")
    assert client.get("/.well-known/biofed-node.json").json()["checkpointKeys"] == [checkpoint.verifier_key(ORIGIN, new_key)]


def test_a_note_signed_under_the_old_key_name_is_signed_again(served):
    client, _, directory = served
    with Node.open(directory) as node:
        cp = checkpoint.verify(node.checkpoint_note(), [node.signing_key.public], origin=ORIGIN)
        old_style = Checkpoint(cp.origin, cp.size, cp.root, cp.timestamp).sign(node.signing_key, NODE_ID)
        key = node.signing_key.public
    with sqlite3.connect(directory / "node.db") as conn:
        assert conn.execute("UPDATE checkpoints SET note = ? WHERE size = ?", (old_style, cp.size)).rowcount == 1
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.verify(old_style, [key], origin=ORIGIN)
    served_note = client.get("/checkpoint").text
    assert served_note != old_style
    assert checkpoint.verify(served_note, [key], origin=ORIGIN).root == cp.root


def _checked(client):
    keys = list(descriptor_keys(client.get("/.well-known/biofed-node.json").json()).values())
    return checkpoint.verify(client.get("/checkpoint").text, keys, origin=ORIGIN)


def test_log_index_leads_to_an_inclusion_proof(served):
    client, _, _ = served
    cp = _checked(client)
    for record_id, version, deleted in ((f"{NODE_ID}/actor/org-0", 1, False), (f"{NODE_ID}/actor/org-2", 2, False),
                                        (f"{NODE_ID}/actor/org-4", 2, True), ("actor/org-5", 1, False)):
        response = client.get("/log/index", params={"id": record_id})
        assert response.status_code == 200 and response.headers["cache-control"] == "no-cache"
        found = response.json()
        full_id = record_id if record_id.startswith(NODE_ID) else f"{NODE_ID}/{record_id}"
        assert found == {"id": full_id, "version": version, "seq": found["seq"], "deleted": deleted}
        served_bytes = client.get(f"/records/{full_id}").content  # 200, or 410 with the tombstone
        proof = client.get(f"/log/proof/inclusion?seq={found['seq']}&size={cp.size}").json()
        merkle.verify_inclusion(merkle.leaf_hash(served_bytes), found["seq"] - 1, cp.size,
                                [base64.b64decode(h) for h in proof["hashes"]], cp.root)
    # an updated record's index is its newest entry
    assert client.get("/log/index", params={"id": f"{NODE_ID}/actor/org-2"}).json()["seq"] == 7


def test_log_index_errors(served):
    client, _, _ = served
    missing = client.get("/log/index", params={"id": f"{NODE_ID}/actor/nothing"})
    assert missing.status_code == 404
    assert missing.json() == {"error": "not-found", "message": f"no record '{NODE_ID}/actor/nothing' on node {NODE_ID}",
                              "errors": []}
    for params in ({}, {"id": ""}, {"id": "x" * 513}):
        bad = client.get("/log/index", params=params)
        assert bad.status_code == 422 and bad.json()["error"] == "bad-parameter", params
    assert "/log/index" in client.get("/openapi.json").json()["paths"]


def test_log_page_record_is_the_leaf_bytes(served):
    """§5: JCS(record of a log entry, as parsed) == the leaf bytes; BioFed's node embeds them verbatim."""
    client, _, _ = served
    cp = _checked(client)
    raw = client.get(f"/log?after=0&limit={cp.size}").content
    entries = orjson.loads(raw)["entries"]
    leaves = [canonicalize(entry["record"]) for entry in entries]
    assert merkle.root([merkle.leaf_hash(leaf) for leaf in leaves]) == cp.root
    for entry, leaf in zip(entries, leaves):
        assert b'{"seq":%d,"record":%s}' % (entry["seq"], leaf) in raw  # verbatim, no re-serialisation
    current = client.get("/log/index", params={"id": f"{NODE_ID}/actor/org-2"}).json()["seq"]
    assert client.get(f"/records/{NODE_ID}/actor/org-2").content == leaves[current - 1]


def test_huge_integer_in_a_written_body_is_a_profile_refusal(served):
    client, token, _ = served
    before = client.get("/checkpoint").text.split("\n")[1]
    body = orjson.dumps(actors(1, start=50)[0])[:-1] + b',"address":{"postCode":' + b"9" * 5000 + b"}}"
    response = client.post("/records", content=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400 and response.json()["error"] == "bad-json"
    (issue,) = response.json()["errors"]
    assert issue["pointer"] == "/address/postCode" and issue["rule"] == "json-profile"
    assert re.search(r"5000 digits\) is outside", issue["message"])
    assert client.get("/checkpoint").text.split("\n")[1] == before  # nothing was written
