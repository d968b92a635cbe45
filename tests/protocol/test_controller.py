"""The controller document (W3C Controlled Identifiers v1.0) that resolves `urn:biofed:<node>#<kid>`.

A real node rotates and revokes keys; every record in its log verifies with
the key its controller document lists under the proof's verificationMethod,
within the validity the document states. tests/interop/js/ verifies the same
records with Digital Bazaar's Data Integrity libraries.
"""

from __future__ import annotations

import time

import orjson
import pytest
from fastapi.testclient import TestClient
from support.controller import resolver
from support.node import NODE_ID, actors, make_node

from biofed.node.app import create_app
from biofed.protocol.controller import CID_CONTEXT, controller_document
from biofed.trust import proofs
from biofed.trust.keys import KeyFormatError, PublicKey


@pytest.fixture(scope="module")
def rotated(tmp_path_factory):
    """A node that signed with three keys: the first revoked, the second retired, the third active."""
    tmp_path = tmp_path_factory.mktemp("controller")
    node, _ = make_node(tmp_path)
    node.put_many(actors(3))
    first = node.signing_key.kid
    time.sleep(1.01)  # times have whole seconds: a key signs before the second it is retired in
    node.rotate_key()
    node.put_many(actors(3, start=3))
    second = node.signing_key.kid
    time.sleep(1.01)
    node.rotate_key()
    node.put_many(actors(2, start=6))
    node.revoke_key(first, "2000-01-01T00:00:00Z")  # before anything it signed: its records are signed anew
    node.close()
    with TestClient(create_app(tmp_path / "node")) as client:
        yield client, first, second


def test_a_node_serves_its_controller_document(rotated):
    client, first, second = rotated
    response = client.get("/controller.json")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.headers["access-control-allow-origin"] == "*" and response.headers["cache-control"] == "no-cache"
    assert client.get("/controller.json", headers={"If-None-Match": response.headers["etag"]}).status_code == 304
    document = response.json()
    descriptor = client.get("/.well-known/biofed-node.json").json()
    keys = {k["kid"]: k for k in descriptor["keys"]["keys"]}
    assert document["@context"] == CID_CONTEXT and document["id"] == f"urn:biofed:{NODE_ID}"
    assert [m["id"] for m in document["verificationMethod"]] == document["assertionMethod"] == \
        [f"urn:biofed:{NODE_ID}#{kid}" for kid in keys]
    for method in document["verificationMethod"]:
        kid = method["id"].split("#")[1]
        assert method["type"] == "Multikey" and method["controller"] == document["id"]
        assert PublicKey.from_multibase(method["publicKeyMultibase"]) == PublicKey.from_jwk(keys[kid])
        assert method.get("expires") == keys[kid]["validUntil"]
        assert method.get("revoked") == keys[kid]["compromisedSince"]
    by_kid = {m["id"].split("#")[1]: m for m in document["verificationMethod"]}
    assert by_kid[first]["revoked"] == "2000-01-01T00:00:00Z"
    assert "expires" in by_kid[second] and "revoked" not in by_kid[second]


def test_every_current_record_verifies_with_the_controller_document(rotated):
    client, first, second = rotated
    resolve = resolver(client.get("/controller.json").json())
    log = client.get("/log?limit=1000").json()["entries"]
    current = {}
    for entry in log:  # the latest version of each content record
        if entry["record"]["type"] in ("Actor", "Project", "Offer"):
            current[entry["record"]["id"]] = entry["record"]
    assert len(current) == 8
    signers = set()
    for record in current.values():
        proof = proofs.verify(record, lambda method, created=record["proof"]["created"]: resolve(method, created))
        signers.add(proof["verificationMethod"].split("#")[1])
    assert len(signers) == 2 and second in signers and first not in signers  # the revoked key's were signed anew
    # what the first key signed before it was revoked now fails, as the document says
    revoked = [e["record"] for e in log if e["record"]["proof"]["verificationMethod"].endswith(first)]
    assert revoked and all(resolve(r["proof"]["verificationMethod"], r["proof"]["created"]) is None for r in revoked)
    # a changed record fails with the right key
    record = next(iter(current.values()))
    changed = orjson.loads(orjson.dumps(record))
    changed["version"] += 1
    with pytest.raises(proofs.ProofError) as failure:
        proofs.verify(changed, lambda method: resolve(method, record["proof"]["created"]))
    assert failure.value.reason == "bad-signature"


def test_a_registry_entry_gives_the_same_document(rotated):
    client, _, _ = rotated
    descriptor = client.get("/.well-known/biofed-node.json").json()
    entry = {"id": descriptor["id"], "keys": descriptor["keys"]["keys"]}  # a registry entry pins the same keys
    assert controller_document(entry["id"], entry["keys"]) == client.get("/controller.json").json()


def test_a_key_entry_that_is_no_ed25519_key_is_named():
    with pytest.raises(KeyFormatError, match="not an OKP/Ed25519 public key"):
        controller_document(NODE_ID, [{"kty": "RSA", "n": "AQAB", "e": "AQAB", "status": "active"}])
    with pytest.raises(KeyFormatError, match="is not the RFC 7638 thumbprint"):
        controller_document(NODE_ID, [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                                       "kid": "A" * 43, "status": "active"}])
