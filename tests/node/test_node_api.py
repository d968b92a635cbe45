"""The node's HTTP API (docs/protocol.md §6), through the real ASGI app."""

from __future__ import annotations

import base64
import gzip
import time

import orjson
import pytest
from fastapi.testclient import TestClient
from support.node import NODE_ID, actors, descriptor_keys, make_node

from biofed.node.app import create_app
from biofed.trust import checkpoint, merkle, proofs


@pytest.fixture
def served(tmp_path):
    """A node with 12 records, one deleted, and its app; yields (client, admin token, directory)."""
    node, token = make_node(tmp_path)
    node.put_many(actors(12))
    node.delete("actor/org-3")
    node.close()
    directory = tmp_path / "node"
    with TestClient(create_app(directory)) as client:
        yield client, token, directory


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def test_descriptor_and_records_verify(served):
    client, _, _ = served
    response = client.get("/.well-known/biofed-node.json")
    assert response.status_code == 200 and response.headers["access-control-allow-origin"] == "*"
    descriptor = response.json()
    assert descriptor["id"] == NODE_ID and descriptor["origin"] == f"biofed/node/{NODE_ID}"
    keys = descriptor_keys(descriptor)
    response = client.get(f"/records/{NODE_ID}/actor/org-1")
    assert response.status_code == 200 and response.headers["etag"] == '"1"'
    assert response.headers["content-type"] == "application/json"
    record = orjson.loads(response.content)
    proofs.verify(record, keys.values())
    # the bytes served are the leaf bytes of its log entry
    log = client.get("/log?after=0&limit=13").json()
    entry = next(e for e in log["entries"] if e["record"]["id"] == record["id"])
    assert merkle.leaf_hash(response.content) == merkle.leaf_hash(orjson.dumps(entry["record"], option=orjson.OPT_SORT_KEYS))
    assert client.get(f"/records/{NODE_ID}/actor/org-1", headers={"If-None-Match": '"1"'}).status_code == 304


def test_unknown_and_deleted_records(served):
    client, _, _ = served
    missing = client.get(f"/records/{NODE_ID}/actor/nothing")
    assert missing.status_code == 404 and missing.json()["error"] == "not-found"
    gone = client.get(f"/records/{NODE_ID}/actor/org-3")
    assert gone.status_code == 410
    assert gone.json()["type"] == "Tombstone" and gone.json()["version"] == 2


def test_checkpoint_and_proofs_verify(served):
    client, _, _ = served
    keys = descriptor_keys(client.get("/.well-known/biofed-node.json").json())
    response = client.get("/checkpoint")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    cp = checkpoint.verify(response.text, list(keys.values()), origin=f"biofed/node/{NODE_ID}")
    assert cp.size == 13
    leaves = [merkle.leaf_hash(orjson.dumps(e["record"], option=orjson.OPT_SORT_KEYS))
              for e in client.get("/log?limit=1000").json()["entries"]]
    assert merkle.root(leaves) == cp.root
    for seq in (1, 7, 13):
        proof = client.get(f"/log/proof/inclusion?seq={seq}&size=13").json()
        assert proof["seq"] == seq and proof["treeSize"] == 13
        merkle.verify_inclusion(leaves[seq - 1], seq - 1, 13, [base64.b64decode(h) for h in proof["hashes"]], cp.root)
    for first in (1, 4, 12, 13):
        proof = client.get(f"/log/proof/consistency?first={first}&second=13").json()
        merkle.verify_consistency(first, 13, merkle.root(leaves[:first]), cp.root,
                                  [base64.b64decode(h) for h in proof["hashes"]])
    assert client.get("/log/proof/inclusion?seq=14&size=13").status_code == 400
    assert client.get("/log/proof/consistency?first=5&second=99").status_code == 400


def test_log_pages_are_immutable_when_full_and_gzip(served):
    client, _, _ = served
    full = client.get("/log?after=0&limit=5")
    body = full.json()
    assert [e["seq"] for e in body["entries"]] == [1, 2, 3, 4, 5]
    assert body["treeSize"] == 5 and body["next"] == "/log?after=5&limit=5" and body["node"] == NODE_ID
    assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert full.headers["content-encoding"] == "gzip"
    assert client.get("/log?after=0&limit=5", headers={"If-None-Match": full.headers["etag"]}).status_code == 304
    last = client.get("/log?after=10&limit=5")
    assert last.json()["next"] is None and last.json()["treeSize"] == 13
    assert "immutable" not in last.headers["cache-control"]
    assert client.get("/log?after=14").status_code == 404
    assert client.get("/log?limit=1001").status_code == 422
    # the full page stays byte-identical after more writes
    client.post("/records", content=orjson.dumps(actors(1, start=99)[0]), headers=auth(served[1]))
    assert client.get("/log?after=0&limit=5").content == full.content


def test_snapshot_holds_current_records(served):
    client, _, _ = served
    response = client.get("/snapshot.jsonl.gz")
    assert response.headers["biofed-tree-size"] == "13"
    lines = gzip.decompress(response.content).splitlines()
    ids = {orjson.loads(line)["id"] for line in lines}
    assert len(lines) == 11 and f"{NODE_ID}/actor/org-3" not in ids
    assert client.get(f"/records/{NODE_ID}/actor/org-0").content in lines


def test_schemas_and_statements_follow_the_standard(served):
    client, _, directory = served
    from biofed.node.store import Node
    from biofed.schema import validate_document, validate_record

    schema = client.get("/schemas/actor.json")
    assert schema.status_code == 200 and schema.json()["$schema"].startswith("https://json-schema.org/")
    assert client.get("/schemas/nothing.json").status_code == 404
    assert validate_document(client.get("/.well-known/biofed-node.json").json(), "node-descriptor") == []
    with Node.open(directory) as node:
        old = node.signing_key.kid
        new = node.rotate_key()
        node.revoke_key(old, "2020-01-01T00:00:00Z")
    for path in (f"/records/{NODE_ID}/key/{new}", f"/records/{NODE_ID}/key-revocation/{old}",
                 f"/records/{NODE_ID}/actor/org-3", f"/records/{NODE_ID}/actor/org-0"):
        assert validate_record(orjson.loads(client.get(path).content)) == [], path


def test_openapi_and_cors(served):
    client, _, _ = served
    assert "/log" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200
    preflight = client.options("/log", headers={"Origin": "https://x.example", "Access-Control-Request-Method": "GET"})
    assert preflight.headers["access-control-allow-origin"] == "*"



# HEAD wherever GET is served (RFC 9110 §9.3.2): same status and headers, no body.
HEAD_PATHS = ["/.well-known/biofed-node.json", f"/records/{NODE_ID}/actor/org-1", f"/records/{NODE_ID}/actor/org-3",
              f"/records/{NODE_ID}/actor/nothing", "/log?after=0&limit=5", "/log?after=10&limit=5", "/log?after=14",
              "/log?limit=0", "/checkpoint", "/schemas/actor.json", "/schemas/nothing.json", "/snapshot.jsonl.gz",
              "/log/proof/inclusion?seq=1"]


@pytest.mark.parametrize("path", HEAD_PATHS)
def test_head_answers_like_get_without_a_body(served, path):
    client, _, _ = served
    get, head = client.get(path), client.head(path)
    assert head.status_code == get.status_code != 405
    assert head.content == b""
    assert dict(head.headers) == dict(get.headers)  # ETag, Content-Type, Cache-Control, Content-Length, CORS...
    assert head.headers["access-control-allow-origin"] == "*" and int(head.headers["content-length"]) > 0
    if get.status_code == 200 and "etag" in get.headers:
        revalidated = client.head(path, headers={"If-None-Match": get.headers["etag"]})
        assert revalidated.status_code == 304 and revalidated.content == b""
        assert revalidated.headers["etag"] == get.headers["etag"]
        assert client.head(path, headers={"If-None-Match": '"other"'}).status_code == 200


def test_head_statuses_of_the_representative_routes(served):
    client, _, _ = served
    for path, status in [("/.well-known/biofed-node.json", 200), (f"/records/{NODE_ID}/actor/org-1", 200),
                         ("/log", 200), ("/checkpoint", 200), ("/schemas/actor.json", 200),
                         (f"/records/{NODE_ID}/actor/nothing", 404), (f"/records/{NODE_ID}/actor/org-3", 410)]:
        response = client.head(path)
        assert response.status_code == status and response.content == b"", path
    record = client.head(f"/records/{NODE_ID}/actor/org-1", headers={"If-None-Match": '"1"'})
    assert record.status_code == 304 and record.headers["etag"] == '"1"'
    full_page = client.head("/log?after=0&limit=5")
    assert full_page.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert full_page.headers["content-encoding"] == "gzip"  # what GET would send, Accept-Encoding honoured
    assert client.head("/schemas/actor.json").headers["content-type"] == "application/schema+json"


def test_head_never_writes_and_write_routes_are_unchanged(served):
    client, token, _ = served
    before = client.get("/log?limit=1000").content
    record = f"/records/{NODE_ID}/actor/org-1"
    body = orjson.dumps(actors(1, start=80)[0])
    # a HEAD is only ever the GET it stands for, even with a token, a body and If-Match
    refused = client.request("HEAD", "/records", content=body, headers=auth(token))
    assert refused.status_code == 405 and refused.headers["allow"] == "POST"
    assert client.request("HEAD", record, content=body, headers={**auth(token), "If-Match": '"1"'}).status_code == 200
    assert client.get("/log?limit=1000").content == before and client.get(record).json()["version"] == 1
    # methods a GET-only path does not serve: still 405, and the Allow list names HEAD beside GET
    refused = client.post("/log", content=body, headers=auth(token))
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"
    # HEAD stays out of the OpenAPI description (the fuzzed contract is the GET/POST/PUT/DELETE one)
    paths = client.get("/openapi.json").json()["paths"]
    assert not [path for path, item in paths.items() if "head" in item]
    # the writes themselves answer as before
    created = client.post("/records", content=body, headers=auth(token))
    assert created.status_code == 201 and created.content and created.headers["etag"] == '"1"'
    assert client.delete(created.headers["location"], headers=auth(token)).status_code == 200

def test_write_api_create_update_delete(served):
    client, token, _ = served
    content = actors(1, start=50)[0]
    created = client.post("/records", content=orjson.dumps(content), headers=auth(token))
    assert created.status_code == 201 and created.headers["etag"] == '"1"'
    record = orjson.loads(created.content)
    assert record["id"] == f"{NODE_ID}/actor/org-50"
    assert client.get(created.headers["location"]).content == created.content
    assert client.post("/records", content=orjson.dumps(content), headers=auth(token)).status_code == 409
    path = f"/records/{NODE_ID}/actor/org-50"
    changed = orjson.dumps({**content, "foundingYear": 2020})
    assert client.put(path, content=changed, headers=auth(token)).status_code == 428
    assert client.put(path, content=changed, headers={**auth(token), "If-Match": '"7"'}).status_code == 412
    updated = client.put(path, content=changed, headers={**auth(token), "If-Match": '"1"'})
    assert updated.status_code == 200 and updated.json()["version"] == 2
    without_id = orjson.dumps({k: v for k, v in content.items() if k != "id"})
    assert client.put(f"/records/{NODE_ID}/actor/none", content=without_id,
                      headers={**auth(token), "If-Match": '"1"'}).status_code == 404
    mismatch = client.put(f"/records/{NODE_ID}/actor/none", content=changed, headers={**auth(token), "If-Match": '"1"'})
    assert mismatch.status_code == 400 and "differs" in mismatch.json()["message"]
    deleted = client.delete(path, headers=auth(token))
    assert deleted.status_code == 200 and deleted.json()["type"] == "Tombstone"
    assert client.get(path).status_code == 410


def test_write_auth_errors(served, tmp_path):
    client, token, directory = served
    from biofed.node.store import Node

    with Node.open(directory) as node:
        writer = node.create_token("crm-sync", ["write"])
        revoked = node.create_token("old", ["write"])
        node.revoke_token("old")
    body = orjson.dumps(actors(1, start=60)[0])
    assert client.post("/records", content=body).status_code == 401
    assert client.post("/records", content=body, headers=auth("bfn_wrong")).status_code == 401
    assert client.post("/records", content=body, headers=auth(revoked)).status_code == 401
    forbidden = client.delete(f"/records/{NODE_ID}/actor/org-1", headers=auth(writer))
    assert forbidden.status_code == 403 and forbidden.json()["error"] == "forbidden"
    assert client.post("/records", content=body, headers=auth(writer)).status_code == 201


@pytest.mark.parametrize("body, status, words", [
    (b'{"id": "actor/x", "type": "Actor", "id": "actor/y"}', 400, "duplicate key"),
    (b'{"id": "actor/x", "foundingYear": 1.5}', 400, "floating-point"),
    (b'{"id": "actor/x", "names": "\xff"}', 400, "invalid UTF-8"),
    (b'{"id": "actor/x",', 400, "malformed JSON"),
    (b'[1, 2]', 400, "JSON object"),
])
def test_malformed_bodies_are_400(served, body, status, words):
    client, token, _ = served
    response = client.post("/records", content=body, headers=auth(token))
    assert response.status_code == status and words in response.json()["message"]
    assert set(response.json()) == {"error", "message", "errors"}


def test_schema_errors_are_422_with_pointers(served):
    client, token, _ = served
    bad = {**actors(1, start=70)[0], "actorType": "spaceship"}
    response = client.post("/records", content=orjson.dumps(bad), headers=auth(token))
    assert response.status_code == 422
    assert any(e["pointer"] == "/actorType" and e["rule"] and e["message"] for e in response.json()["errors"])
    outside = {**actors(1, start=70)[0], "id": "genopole/actor/x"}
    response = client.post("/records", content=orjson.dumps(outside), headers=auth(token))
    assert response.status_code == 422 and response.json()["errors"][0]["rule"] == "namespace"


def test_bodies_over_64_kib_are_413(served):
    client, token, _ = served
    big = b'{"id": "actor/x", "pad": "' + b"a" * 70_000 + b'"}'
    assert client.post("/records", content=big, headers=auth(token)).status_code == 413
    # no Content-Length (chunked): the bytes actually read are counted
    chunks = iter([big[:40_000], big[40_000:]])
    response = client.post("/records", content=chunks, headers=auth(token))
    assert response.status_code == 413 and response.json()["error"] == "too-large"
    assert client.get("/checkpoint").text.split("\n")[1] == "13"  # nothing written


def test_checkpoint_is_resigned_on_schedule(tmp_path):
    node, _ = make_node(tmp_path)
    node.put_many(actors(3))
    node.close()
    with TestClient(create_app(tmp_path / "node", checkpoint_interval=1)) as client:
        keys = list(descriptor_keys(client.get("/.well-known/biofed-node.json").json()).values())
        first = checkpoint.verify(client.get("/checkpoint").text, keys, origin=f"biofed/node/{NODE_ID}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.3)
            later = checkpoint.verify(client.get("/checkpoint").text, keys, origin=f"biofed/node/{NODE_ID}")
            if later.timestamp != first.timestamp:
                break
        assert later.timestamp > first.timestamp
        assert (later.size, later.root) == (first.size, first.root)
