"""The node store: init, writes, versions, namespace, bulk import, tombstones, keys."""

from __future__ import annotations

import os
import stat

import orjson
import pytest
from support.node import NODE_ID, actors, descriptor_keys, make_node

from biofed.errors import BiofedError
from biofed.node.store import (
    ImportRejected,
    Node,
    RecordExists,
    RecordGone,
    RecordInvalid,
    RecordNotFound,
    VersionConflict,
    hash_token,
)
from biofed.trust import checkpoint, merkle, proofs
from biofed.trust.keys import PublicKey


def test_init_writes_config_key_0600_and_hashed_admin_token(tmp_path):
    node, token = make_node(tmp_path)
    directory = tmp_path / "node"
    config = orjson.loads((directory / "node.json").read_bytes())
    assert config["id"] == NODE_ID and config["checkpointInterval"] == 300 and config["licence"] == "CC-BY-4.0"
    key_files = list((directory / "keys").iterdir())
    assert [p.name for p in key_files] == [f"{node.signing_key.kid}.pem"]
    assert stat.S_IMODE(os.stat(key_files[0]).st_mode) == 0o600
    rows = node.conn.execute("SELECT hash, name, scopes FROM tokens").fetchall()
    assert rows == [(hash_token(token), "admin", "admin")]
    assert token.encode() not in (directory / "node.db").read_bytes()
    assert node.authenticate(token).allows("delete")
    assert node.authenticate(token + "x") is None
    # an empty log is signed from the start
    note = node.checkpoint_note()
    cp = checkpoint.verify(note, [node.signing_key.public], origin=f"biofed/node/{NODE_ID}")
    assert cp.size == 0 and cp.root == merkle.EMPTY_ROOT
    node.close()


def test_init_refuses_an_existing_node(tmp_path):
    make_node(tmp_path)[0].close()
    with pytest.raises(BiofedError, match="not an empty directory"):
        make_node(tmp_path)


@pytest.mark.parametrize("kwargs, message", [
    ({"node_id": "Bad_Id"}, "node id"), ({"country": "Germany"}, "country"), ({"region": "FR1"}, "region"),
])
def test_init_rejects_bad_settings(tmp_path, kwargs, message):
    args = {"node_id": NODE_ID, "name": "X", "country": "DE", **kwargs}
    from biofed.node.store import init_node

    with pytest.raises(BiofedError, match=message):
        init_node(tmp_path / "n", **args)
    assert not (tmp_path / "n" / "node.json").exists()


def test_put_signs_versions_and_logs(tmp_path):
    node, _ = make_node(tmp_path)
    content = actors(1)[0]
    first = node.put(content)
    assert first["id"] == f"{NODE_ID}/actor/org-0" and first["version"] == 1
    assert first["proof"]["verificationMethod"] == f"urn:biofed:{NODE_ID}#{node.signing_key.kid}"
    assert first["proof"]["created"] == first["dateModified"]
    proofs.verify(first, node.signing_key.public)
    # unchanged content: no new version, no new log entry
    assert node.put(content)["version"] == 1 and node.tree_size() == 1
    changed = {**content, "foundingYear": 2001}
    second = node.put(changed)
    assert second["version"] == 2 and node.tree_size() == 2
    stored = node.get(f"{NODE_ID}/actor/org-0")
    assert stored == node.log_page(1, 1)[0][1]  # served bytes = leaf bytes
    assert orjson.loads(stored) == second
    assert node.check_log() == []
    node.close()


@pytest.mark.parametrize("record_id, message", [
    ("other-node/actor/x", "outside this node's namespace"),
    ("project/x", "needs 'actor'"),
    ("actor/Upper Case", "local id"),
])
def test_put_refuses_ids_outside_the_namespace(tmp_path, record_id, message):
    node, _ = make_node(tmp_path)
    with pytest.raises(RecordInvalid, match=message) as info:
        node.put({**actors(1)[0], "id": record_id})
    assert info.value.errors[0]["pointer"] == "/id"
    assert node.tree_size() == 0
    node.close()


def test_put_refuses_schema_violations_naming_the_field(tmp_path):
    node, _ = make_node(tmp_path)
    bad = {**actors(1)[0], "actorType": "spaceship"}
    with pytest.raises(RecordInvalid) as info:
        node.put(bad)
    assert any(e["pointer"] == "/actorType" for e in info.value.errors)
    assert node.tree_size() == 0
    node.close()


def test_put_create_and_expect_version(tmp_path):
    node, _ = make_node(tmp_path)
    content = actors(1)[0]
    node.put(content, create=True)
    with pytest.raises(RecordExists):
        node.put(content, create=True)
    with pytest.raises(VersionConflict):
        node.put({**content, "foundingYear": 1999}, expect_version=2)
    with pytest.raises(RecordNotFound):
        node.put(actors(1, start=5)[0], expect_version=1)
    assert node.put({**content, "foundingYear": 1999}, expect_version=1)["version"] == 2
    node.close()


def test_put_many_is_all_or_nothing_and_idempotent(tmp_path):
    node, _ = make_node(tmp_path)
    records = actors(50)
    records[30] = {**records[30], "country": "Germany"}
    with pytest.raises(ImportRejected, match="nothing imported") as info:
        node.put_many(records, sources=[f"row {i + 2}" for i in range(50)])
    assert [(r.source, r.id) for r in info.value.result.rejected] == [("row 32", f"{NODE_ID}/actor/org-30")]
    assert node.tree_size() == 0 and node.conn.execute("SELECT count(*) FROM records").fetchone()[0] == 0

    result = node.put_many(records, skip_invalid=True)
    assert (result.created, len(result.rejected), result.tree_size) == (49, 1, 49)
    again = node.put_many(records, skip_invalid=True)
    assert (again.created, again.updated, again.unchanged, again.tree_size) == (0, 0, 49, 49)
    records[30] = actors(1, start=30)[0]
    records[0] = {**records[0], "foundingYear": 1990}
    third = node.put_many(records)
    assert (third.created, third.updated, third.unchanged, third.tree_size) == (1, 1, 48, 51)
    assert node.check_log() == []
    node.close()


def test_tombstone(tmp_path):
    node, _ = make_node(tmp_path)
    node.put(actors(1)[0])
    tombstone = node.delete("actor/org-0")
    assert tombstone["type"] == "Tombstone" and tombstone["version"] == 2
    proofs.verify(tombstone, node.signing_key.public)
    stored = node.record("actor/org-0")
    assert stored.deleted and orjson.loads(stored.signed) == tombstone
    with pytest.raises(RecordGone):
        node.delete("actor/org-0")
    with pytest.raises(RecordNotFound):
        node.delete("actor/nothing")
    assert node.current_records()[1] == []
    # put again after deletion: a new version, not a reuse
    assert node.put(actors(1)[0])["version"] == 3
    assert node.check_log() == []
    node.close()


def test_rotation_keeps_old_records_verifiable(tmp_path):
    node, _ = make_node(tmp_path)
    old_kid = node.signing_key.kid
    old_record = node.put(actors(1)[0])
    new_kid = node.rotate_key()
    assert node.signing_key.kid == new_kid != old_kid
    new_record = node.put(actors(1, start=1)[0])
    keys = descriptor_keys(node.descriptor())
    listed = {k["kid"]: k for k in node.descriptor()["keys"]["keys"]}
    assert listed[old_kid]["status"] == "retired" and listed[old_kid]["validUntil"]
    assert listed[new_kid]["status"] == "active"
    proofs.verify(old_record, keys.values())
    assert proofs.key_fragment(proofs.verify(new_record, keys.values())["verificationMethod"]) == new_kid
    statement = orjson.loads(node.get(f"{NODE_ID}/key/{new_kid}"))
    assert statement["type"] == "KeyRotation" and statement["previousKid"] == old_kid
    assert PublicKey.from_jwk(statement["newKey"]).kid == new_kid
    proofs.verify(statement, keys[old_kid])  # signed by the OLD key
    with pytest.raises(proofs.ProofError):
        proofs.verify(statement, keys[new_kid])
    # the checkpoint is now signed by the new key
    checkpoint.verify(node.checkpoint_note(), [keys[new_kid]], origin=f"biofed/node/{NODE_ID}")
    assert node.check_log() == []
    node.close()
    reopened = Node.open(tmp_path / "node")
    assert reopened.signing_key.kid == new_kid
    reopened.close()


def test_revocation_of_the_current_key_rotates_first(tmp_path):
    node, _ = make_node(tmp_path)
    kid = node.signing_key.kid
    statement = node.revoke_key(kid, "2026-01-02T03:04:05+01:00")
    assert statement["type"] == "KeyRevocation" and statement["compromisedSince"] == "2026-01-02T02:04:05Z"
    keys = descriptor_keys(node.descriptor())
    current = node.signing_key.kid
    assert current != kid
    proofs.verify(statement, keys[current])
    listed = {k["kid"]: k for k in node.descriptor()["keys"]["keys"]}
    assert listed[kid]["status"] == "revoked" and listed[kid]["compromisedSince"] == "2026-01-02T02:04:05Z"
    with pytest.raises(BiofedError, match="already revoked"):
        node.revoke_key(kid, "2026-01-01T00:00:00Z")
    with pytest.raises(BiofedError, match="RFC 3339"):
        node.revoke_key(current, "yesterday")
    assert node.tree_size() == 2 and node.check_log() == []
    node.close()


def test_revocation_resigns_records_signed_after_compromise(tmp_path):
    node, _ = make_node(tmp_path)
    old = node.signing_key.kid
    before = node.put(actors(1)[0])
    node.rotate_key()
    current = node.signing_key.kid
    node.revoke_key(old, before["dateModified"])  # everything the old key signed is suspect
    record = orjson.loads(node.get(before["id"]))
    assert record["version"] == 2 and proofs.key_fragment(record["proof"]["verificationMethod"]) == current
    assert {k: v for k, v in record.items() if k not in ("version", "dateModified", "proof")} == \
        {k: v for k, v in before.items() if k not in ("version", "dateModified", "proof")}
    node.revoke_key(current, "2099-01-01T00:00:00Z")  # nothing signed after that time: nothing re-signed
    assert orjson.loads(node.get(before["id"]))["version"] == 2
    assert node.check_log() == []
    node.close()


def test_checkpoint_matches_leaves_and_resigns(tmp_path):
    node, _ = make_node(tmp_path)
    node.put_many(actors(7))
    leaves = [merkle.leaf_hash(leaf) for _, leaf in node.log_page(0, 7)]  # from the published bytes
    cp = checkpoint.verify(node.checkpoint_note(), [node.signing_key.public], origin=f"biofed/node/{NODE_ID}")
    assert cp.size == 7 and cp.root == merkle.root(leaves)
    for seq in range(1, 8):
        merkle.verify_inclusion(leaves[seq - 1], seq - 1, 7, node.inclusion_proof(seq, 7), cp.root)
    for first in range(1, 8):
        merkle.verify_consistency(first, 7, merkle.root(leaves[:first]), cp.root, node.consistency_proof(first, 7))
    note = node.resign_checkpoint()
    assert checkpoint.verify(note, [node.signing_key.public], origin=f"biofed/node/{NODE_ID}").root == cp.root
    node.close()
