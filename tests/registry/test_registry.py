"""The registry end to end: real nodes on loopback, the registry directory, its CLI and its server."""

from __future__ import annotations

import json
import socket
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from support.registry import join, run, serving

from biofed.cli import cli
from biofed.node.app import create_app as create_node_app
from biofed.node.store import Node, init_node
from biofed.protocol.join import build_join_request
from biofed.protocol.registry import Registry, verify_registry
from biofed.protocol.times import format_time, parse_time
from biofed.registry.server import create_app as create_registry_app
from biofed.registry.store import RegistryStore
from biofed.trust import proofs
from biofed.trust.keys import SigningKey


@pytest.fixture
def run_node(tmp_path):
    """Start a real node: run_node(node_id) -> (node directory, base URL)."""
    with_stack = []

    def start(node_id="bioregio-stern", name="BioRegio STERN", country="DE", region="DE1"):
        directory = tmp_path / node_id

        def make_app(base_url):
            init_node(directory, node_id=node_id, name=name, country=country, region=region, base_url=base_url)
            return create_node_app(directory)

        context = serving(make_app)
        base_url = context.__enter__()
        with_stack.append(context)
        return directory, base_url

    yield start
    for context in reversed(with_stack):
        context.__exit__(None, None, None)


@pytest.fixture
def registry_dir(tmp_path):
    directory = tmp_path / "registry"
    RegistryStore.init(directory, name="biofed-eu", validity_days=7)
    return directory


def snapshot(directory: Path) -> dict:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def current(registry_dir) -> Registry:
    store = RegistryStore.open(registry_dir)
    return verify_registry(store.document(), store.public_keys())


def test_join_flow_against_a_real_node(run_node, registry_dir, tmp_path):
    node_dir, base_url = run_node()
    request = join(node_dir, tmp_path)
    assert json.loads(request.read_text())["baseUrl"] == base_url

    result = run("registry", "add", registry_dir, request)
    assert "added node bioregio-stern" in result.output and "control verified" in result.output

    with Node.open(node_dir) as node:
        kid = node.signing_key.kid
        valid_from = next(k["validFrom"] for k in node.keys() if k["kid"] == kid)
    reg = current(registry_dir)
    assert reg.version == 2
    entry = reg.node("bioregio-stern")
    assert entry["controlVerified"] is True and entry["status"] == "active"
    assert entry["baseUrl"] == base_url and entry["country"] == "DE" and entry["region"] == "DE1"
    assert [(k["kid"], k["status"], k["validFrom"]) for k in entry["keys"]] == [(kid, "active", valid_from)]
    assert [k.kid for k in reg.keys_for("bioregio-stern", datetime.now(timezone.utc))] == [kid]

    listing = run("registry", "list", registry_dir).output
    assert "bioregio-stern" in listing and kid in listing
    shown = json.loads(run("registry", "show", registry_dir, "bioregio-stern").output)
    assert shown == entry
    assert sorted(p.name for p in (registry_dir / "history").iterdir()) == ["1.json", "2.json"]


def test_refused_requests_leave_the_registry_byte_for_byte_unchanged(run_node, registry_dir, tmp_path):
    node_dir, base_url = run_node()
    good = join(node_dir, tmp_path)
    run("registry", "add", registry_dir, good)
    before = snapshot(registry_dir)

    # the same node id again
    result = run("registry", "add", registry_dir, good, ok=False)
    assert "'bioregio-stern' is already taken" in result.output

    # a request whose signed content was changed
    tampered = json.loads(good.read_text())
    tampered.update(name="Someone Else", baseUrl="https://elsewhere.example")
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(tampered))
    assert "signature does not hold" in run("registry", "add", registry_dir, bad, ok=False).output

    # malformed requests: not JSON, a float, a missing field, the wrong type of document
    for name, text, words in [
        ("broken.json", "{\"type\": ", "malformed JSON"),
        ("float.json", json.dumps({**tampered, "licence": 1.5}), "floating-point"),
        ("missing.json", json.dumps({k: v for k, v in tampered.items() if k != "publicKey"}), "/publicKey"),
        ("registry.json", (registry_dir / "registry.json").read_text(), "is not 'BioFedJoinRequest'"),
    ]:
        path = tmp_path / name
        path.write_text(text)
        result = run("registry", "add", registry_dir, path, ok=False)
        assert words in result.output

    assert snapshot(registry_dir) == before


def test_descriptor_with_a_different_key_is_refused(run_node, registry_dir, tmp_path):
    node_dir, base_url = run_node("genopole", "Genopole", "FR", "FR1")
    with Node.open(node_dir) as node:
        config = node.config.to_dict()
    impostor = SigningKey.generate()  # someone who knows the node's URL but not its key
    request = tmp_path / "impostor.json"
    request.write_text(json.dumps(build_join_request(config, impostor)))
    before = snapshot(registry_dir)
    result = run("registry", "add", registry_dir, request, ok=False)
    assert "serves key" in result.output and impostor.kid in result.output
    assert snapshot(registry_dir) == before


def test_unreachable_node_suggests_offline_and_offline_is_recorded(registry_dir, tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()  # nothing listens there now
    init_node(tmp_path / "node", node_id="bioalps", name="BioAlps", country="CH", region="CH0", base_url=base_url)
    request = join(tmp_path / "node", tmp_path)
    before = snapshot(registry_dir)
    result = run("registry", "add", registry_dir, request, "--timeout", "2", ok=False)
    assert "cannot check that node 'bioalps' controls" in result.output and "--offline" in result.output
    assert snapshot(registry_dir) == before

    result = run("registry", "add", registry_dir, request, "--offline")
    assert "control NOT verified" in result.output
    entry = current(registry_dir).node("bioalps")
    assert entry["controlVerified"] is False and entry["status"] == "active"


def test_rotation_and_revocation_of_a_node_key(run_node, registry_dir, tmp_path):
    node_dir, base_url = run_node()
    run("registry", "add", registry_dir, join(node_dir, tmp_path))
    with Node.open(node_dir) as node:
        old_kid = node.signing_key.kid
        born = parse_time(next(k["validFrom"] for k in node.keys() if k["kid"] == old_kid))
        # Times have whole seconds: the rotation is 3 s after the key was made, so that a time lies between.
        new_kid = node.rotate_key(now=format_time(born + timedelta(seconds=3)))  # a KeyRotation signed by the old key
        retired_until = next(k["validUntil"] for k in node.keys() if k["kid"] == old_kid)
        rotated_at = next(k["validFrom"] for k in node.keys() if k["kid"] == new_kid)

    result = run("registry", "rotate-node-key", registry_dir, "bioregio-stern")
    assert new_kid in result.output
    reg = current(registry_dir)
    keys = {k["kid"]: k for k in reg.node("bioregio-stern")["keys"]}
    # The registry takes the node's rotation as it is: the old key valid through the rotation second.
    assert keys[old_kid]["status"] == "retired" and keys[old_kid]["validUntil"] == retired_until
    assert keys[new_kid]["status"] == "active" and keys[new_kid]["validFrom"] == rotated_at
    switch = parse_time(rotated_at)
    assert parse_time(retired_until) == switch + timedelta(seconds=1)
    assert [k.kid for k in reg.keys_for("bioregio-stern", switch - timedelta(seconds=1))] == [old_kid]
    assert {k.kid for k in reg.keys_for("bioregio-stern", switch)} == {old_kid, new_kid}  # the rotation second
    assert [k.kid for k in reg.keys_for("bioregio-stern", switch + timedelta(seconds=1))] == [new_kid]
    # nothing more to rotate: refused, unchanged
    before = snapshot(registry_dir)
    assert "already pinned" in run("registry", "rotate-node-key", registry_dir, "bioregio-stern", ok=False).output
    assert snapshot(registry_dir) == before

    # The old key leaked a second after it was made: refuse what it signed from then on.
    since = born + timedelta(seconds=1)
    assert since < switch
    run("registry", "revoke-node-key", registry_dir, "bioregio-stern", old_kid,
        "--compromised-since", since.isoformat().replace("+00:00", "Z"))
    reg = current(registry_dir)
    assert reg.key_status("bioregio-stern", old_kid) == "revoked"
    assert [k.kid for k in reg.keys_for("bioregio-stern", born)] == [old_kid]
    assert reg.keys_for("bioregio-stern", since) == []
    before = snapshot(registry_dir)
    assert "already revoked" in run("registry", "revoke-node-key", registry_dir, "bioregio-stern", old_kid,
                                    "--compromised-since", "2026-01-01T00:00:00Z", ok=False).output
    assert "is not an RFC 3339 time" in run("registry", "revoke-node-key", registry_dir, "bioregio-stern", new_kid,
                                 "--compromised-since", "yesterday", ok=False).output
    assert snapshot(registry_dir) == before


def test_offline_rotation_with_a_new_key(registry_dir, tmp_path):
    init_node(tmp_path / "node", node_id="biorn", name="BioRN", country="DE", region="DE1",
              base_url="http://127.0.0.1:9")
    run("registry", "add", registry_dir, join(tmp_path / "node", tmp_path), "--offline")
    new = SigningKey.generate()
    run("registry", "rotate-node-key", registry_dir, "biorn", "--offline", "--new-key", new.public.multibase,
        "--at", "2026-03-01T00:00:00Z")
    keys = current(registry_dir).node("biorn")["keys"]
    assert [(k["status"], k["validFrom"] if k["status"] == "active" else k["validUntil"]) for k in keys] == \
        [("retired", "2026-03-01T00:00:01Z"), ("active", "2026-03-01T00:00:00Z")]  # both valid in that second
    assert keys[1]["kid"] == new.kid


def test_a_key_id_that_starts_with_a_dash_is_an_argument_not_an_option(registry_dir, tmp_path):
    # base64url thumbprints start with '-' for one key in 64
    dash = next(key for key in iter(SigningKey.generate, None) if key.kid.startswith("-"))
    init_node(tmp_path / "node", node_id="biorn", name="BioRN", country="DE", region="DE1",
              base_url="http://127.0.0.1:9")
    run("registry", "add", registry_dir, join(tmp_path / "node", tmp_path), "--offline")
    run("registry", "rotate-node-key", registry_dir, "biorn", "--offline", "--new-key", dash.public.multibase)
    run("registry", "revoke-node-key", registry_dir, "biorn", dash.kid, "--compromised-since", "2026-01-01T00:00:00Z")
    assert current(registry_dir).key_status("biorn", dash.kid) == "revoked"
    # an unknown option is still refused, not taken for a key id
    result = CliRunner().invoke(cli, ["registry", "revoke-node-key", str(registry_dir), "biorn", dash.kid,
                                      "--compromised-sinc", "2026-01-01T00:00:00Z"])
    assert result.exit_code == 2


def test_suspend_activate_remove_and_history(registry_dir, tmp_path):
    init_node(tmp_path / "node", node_id="biopro", name="BIOPRO", country="DE", region="DE1",
              base_url="http://127.0.0.1:9")
    run("registry", "add", registry_dir, join(tmp_path / "node", tmp_path), "--offline")
    run("registry", "suspend", registry_dir, "biopro")
    assert current(registry_dir).active_nodes() == []
    assert "already suspended" in run("registry", "suspend", registry_dir, "biopro", ok=False).output
    run("registry", "activate", registry_dir, "biopro")
    run("registry", "sign", registry_dir)
    first_four = snapshot(registry_dir / "history")
    run("registry", "remove", registry_dir, "biopro")
    assert current(registry_dir).node("biopro")["status"] == "removed"
    assert "'nope' is not in registry biofed-eu" in run("registry", "suspend", registry_dir, "nope", ok=False).output
    assert "was removed" in run("registry", "activate", registry_dir, "biopro", ok=False).output
    assert "ids are never reused" in run("registry", "add", registry_dir, join(tmp_path / "node", tmp_path),
                                         "--offline", ok=False).output

    # every version is kept, verifies on its own, and was never rewritten
    store = RegistryStore.open(registry_dir)
    assert store.versions() == [1, 2, 3, 4, 5, 6]
    for version in store.versions():
        doc = store.version_document(version)
        assert doc["version"] == version
        proofs.verify(doc, store.public_keys())
    assert {k: v for k, v in snapshot(registry_dir / "history").items() if k in first_four} == first_four
    assert (registry_dir / "registry.json").read_bytes() == (registry_dir / "history" / "6.json").read_bytes()
    assert oct((registry_dir / "keys" / f"{store.config['keyId']}.pem").stat().st_mode & 0o777) == "0o600"


def test_registry_verify_command_detects_rollback_and_tampering(registry_dir, tmp_path):
    key = RegistryStore.open(registry_dir).signing_key.public.multibase
    old = tmp_path / "v1.json"
    old.write_bytes((registry_dir / "registry.json").read_bytes())
    run("registry", "sign", registry_dir)
    assert "version 2 verified" in run("registry", "verify", registry_dir / "registry.json", "--key", key).output
    result = run("registry", "verify", old, "--key", key, "--last-version", "2", ok=False)
    assert "rollback" in result.output
    tampered = json.loads(old.read_text())
    tampered["nodes"] = []
    tampered["name"] = "other"
    old.write_text(json.dumps(tampered))
    assert "does not start with" in run("registry", "verify", old, "--key", key, ok=False).output
    stranger = SigningKey.generate().public.multibase
    assert "not a trusted registry key" in run("registry", "verify", registry_dir / "registry.json", "--key",
                                                stranger, ok=False).output


def test_server_serves_current_history_and_etags(registry_dir):
    run("registry", "sign", registry_dir)
    with serving(lambda base_url: create_registry_app(registry_dir)) as base_url, httpx.Client(base_url=base_url) as http:
        response = http.get("/registry.json")
        assert response.status_code == 200 and response.headers["etag"] == '"2"'
        assert response.content == (registry_dir / "registry.json").read_bytes()
        assert http.get("/registry.json", headers={"If-None-Match": '"2"'}).status_code == 304

        run("registry", "sign", registry_dir)  # a new version is served at once
        response = http.get("/registry.json", headers={"If-None-Match": '"2"'})
        assert response.status_code == 200 and response.json()["version"] == 3

        first = http.get("/registry/1.json")
        assert first.status_code == 200 and first.json()["version"] == 1
        assert "immutable" in first.headers["cache-control"]
        assert http.get("/registry/1.json", headers={"If-None-Match": first.headers["etag"]}).status_code == 304
        assert http.get("/registry/9.json").status_code == 404
        assert http.get("/registry/versions").json()["versions"] == [1, 2, 3]
        well_known = http.get("/.well-known/biofed-registry.json").json()
        assert well_known["keys"]["keys"] == response.json()["registryKeys"]

        # the aggregator's way in: a URL, verified against the pinned key
        key = RegistryStore.open(registry_dir).signing_key.public.multibase
        assert "version 3 verified" in run("registry", "verify", f"{base_url}/registry.json", "--key", key).output



def test_server_answers_head_like_get_without_a_body(registry_dir):
    """HEAD wherever GET is served (RFC 9110 §9.3.2), through a real uvicorn server."""
    run("registry", "sign", registry_dir)
    with serving(lambda base_url: create_registry_app(registry_dir)) as base_url, httpx.Client(base_url=base_url) as http:
        for path, status in [("/registry.json", 200), ("/registry/1.json", 200), ("/registry/versions", 200),
                             ("/.well-known/biofed-registry.json", 200), ("/registry/9.json", 404),
                             ("/registry/x.json", 404)]:
            get, head = http.get(path), http.head(path)
            assert head.status_code == get.status_code == status, path
            assert head.content == b"", path
            assert {**head.headers, "date": ""} == {**get.headers, "date": ""}, path
            assert int(head.headers["content-length"]) == len(get.content) > 0, path
        head = http.head("/registry.json")
        assert head.headers["etag"] == '"2"' and head.headers["cache-control"] == "no-cache"
        assert head.headers["content-type"] == "application/json"
        assert head.headers["access-control-allow-origin"] == "*"
        revalidated = http.head("/registry.json", headers={"If-None-Match": '"2"'})
        assert revalidated.status_code == 304 and revalidated.headers["etag"] == '"2"'
        first = http.head("/registry/1.json")
        assert "immutable" in first.headers["cache-control"]
        assert http.head("/registry/1.json", headers={"If-None-Match": first.headers["etag"]}).status_code == 304
        refused = http.post("/registry.json", content=b"{}")
        assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"
    assert RegistryStore.open(registry_dir).versions() == [1, 2]  # nothing was signed or written

def test_biofed_verify_with_registry(run_node, registry_dir, tmp_path):
    node_dir, base_url = run_node()
    run("registry", "add", registry_dir, join(node_dir, tmp_path))
    with Node.open(node_dir) as node:
        old_kid = node.signing_key.kid
        node.rotate_key()
        # The KeyRotation statement in the node's log: a real record signed by the node's (old) key.
        statement = node.get(f"bioregio-stern/key/{node.signing_key.kid}")
    run("registry", "rotate-node-key", registry_dir, "bioregio-stern")
    record = tmp_path / "statement.json"
    record.write_bytes(statement)
    registry_key = RegistryStore.open(registry_dir).signing_key.public.multibase
    registry_file = registry_dir / "registry.json"

    result = run("verify", record, "--registry", registry_file, "--registry-key", registry_key)
    assert "verified" in result.output

    stranger = SigningKey.generate()
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(proofs.sign(json.loads(statement), stranger,
                                             f"urn:biofed:bioregio-stern#{stranger.kid}")))
    result = CliRunner().invoke(cli, ["verify", str(forged), "--registry", str(registry_file),
                                      "--registry-key", registry_key])
    assert result.exit_code == 1 and "unknown-key" in result.output

    # after revocation of the old key, what it signed no longer resolves offline
    run("registry", "revoke-node-key", registry_dir, "bioregio-stern", old_kid, "--compromised-since",
        "2020-01-01T00:00:00Z")
    result = CliRunner().invoke(cli, ["verify", str(record), "--registry", str(registry_file),
                                      "--registry-key", registry_key])
    assert result.exit_code == 1
    # a registry signed by someone else is refused before any record is looked at
    result = CliRunner().invoke(cli, ["verify", str(record), "--registry", str(registry_file),
                                      "--registry-key", stranger.public.multibase])
    assert result.exit_code == 1 and "not a trusted registry key" in result.output


def test_a_tampered_registry_directory_is_refused_and_not_re_signed(registry_dir):
    run("registry", "sign", registry_dir)
    path = registry_dir / "registry.json"
    doc = json.loads(path.read_text())
    doc["expires"] = "2099-01-01T00:00:00Z"
    path.write_text(json.dumps(doc))
    before = snapshot(registry_dir)
    result = run("registry", "sign", registry_dir, ok=False)
    assert "registry.json" in result.output and "signature does not hold" in result.output
    path.write_text("{\"type\": \"BioFedRegistry\", \"type\": 1}")
    assert "duplicate key" in run("registry", "list", registry_dir, ok=False).output
    assert sorted(p.name for p in (registry_dir / "history").iterdir()) == ["1.json", "2.json"]
    assert "not a registry directory" in run("registry", "sign", registry_dir / "history", ok=False).output
    assert "not an empty directory" in run("registry", "init", registry_dir, "--name", "x", ok=False).output
    assert snapshot(registry_dir) == {**before, "registry.json": path.read_bytes()}


def test_node_fetch_is_bounded_redirects_size_and_origin(registry_dir, tmp_path):
    from fastapi import FastAPI
    from fastapi.responses import RedirectResponse, Response

    from biofed.protocol.fetch import FetchError, fetch_descriptor

    def make_app(base_url):
        app = FastAPI()

        @app.get("/off/.well-known/biofed-node.json")
        def off():
            return RedirectResponse("http://localhost:9/.well-known/biofed-node.json")

        @app.get("/same/.well-known/biofed-node.json")
        def same():
            return RedirectResponse(f"{base_url}/big/.well-known/biofed-node.json")

        @app.get("/big/.well-known/biofed-node.json")
        def big():
            return Response(b'{"id": "' + b"x" * 2_000_000 + b'"}', media_type="application/json")

        @app.get("/dup/.well-known/biofed-node.json")
        def dup():
            return Response(b'{"id": "a", "id": "b"}', media_type="application/json")

        @app.get("/trickle/.well-known/biofed-node.json")
        async def trickle():
            import asyncio

            from fastapi.responses import StreamingResponse

            async def body():
                for _ in range(100):
                    yield b" "
                    await asyncio.sleep(0.2)  # each read is quick; the whole answer never ends in time
            return StreamingResponse(body(), media_type="application/json")

        return app

    with serving(make_app) as base_url:
        with pytest.raises(FetchError, match="off the origin"):
            fetch_descriptor(f"{base_url}/off")
        with pytest.raises(FetchError, match="more than 1048576 bytes"):
            fetch_descriptor(f"{base_url}/same")  # a same-origin redirect is followed, then capped
        with pytest.raises(FetchError, match="duplicate key"):
            fetch_descriptor(f"{base_url}/dup")
        started = time.monotonic()
        with pytest.raises(FetchError, match="did not answer within 1 s") as refused:
            fetch_descriptor(f"{base_url}/trickle", timeout=1.0)
        assert refused.value.reason == "timeout" and time.monotonic() - started < 3


def test_rotation_statement_must_be_signed_by_the_pinned_key(registry_dir, tmp_path):
    from biofed.errors import BiofedError

    init_node(tmp_path / "node", node_id="biovalley", name="BioValley", country="FR", region="FR1",
              base_url="http://127.0.0.1:9")
    run("registry", "add", registry_dir, join(tmp_path / "node", tmp_path), "--offline")
    with Node.open(tmp_path / "node") as node:
        old_kid = node.signing_key.kid
        new_kid = node.rotate_key()
        statement = json.loads(node.get(f"biovalley/key/{new_kid}"))
    store = RegistryStore.open(registry_dir)
    before = snapshot(registry_dir)
    thief = SigningKey.generate()
    forged = proofs.sign({**statement, "newKey": thief.public.jwk()}, thief, f"urn:biofed:biovalley#{old_kid}")
    with pytest.raises(BiofedError, match="signature does not hold"):
        store.rotate_node_key("biovalley", statement=forged)
    with pytest.raises(BiofedError, match="must be signed by the old key"):
        store.rotate_node_key("biovalley", statement=proofs.sign(statement, thief, f"urn:biofed:biovalley#{thief.kid}"))
    with pytest.raises(BiofedError, match="is for node 'genopole', not 'biovalley'"):
        store.rotate_node_key("biovalley", statement={**statement, "node": "genopole"})
    assert snapshot(registry_dir) == before
    statement_file = tmp_path / "rotation.json"
    statement_file.write_text(json.dumps(statement))
    run("registry", "rotate-node-key", registry_dir, "biovalley", "--statement", statement_file)
    assert current(registry_dir).key_status("biovalley", new_kid) == "active"
