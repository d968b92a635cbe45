"""Security pass: tokens, the write API's doors, SSRF, the read-only catalogue, private keys, dependencies."""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.routing import Route
from support.catalogue_sample import build_sample_catalogue
from support.hostile import key_entry, registry_node, running
from support.network import Network
from support.node import NODE_ID, actors, make_node

from biofed.aggregator.fetch import FetchError, FetchLimits, NodeClient
from biofed.aggregator.serve import make_datasette
from biofed.cli import cli
from biofed.node.app import create_app
from biofed.node.store import Node, hash_token
from biofed.trust.keys import SigningKey

LIMITS = FetchLimits(max_bytes=1_000_000, deadline=5.0)


# --- tokens


def test_tokens_are_stored_hashed_and_compared_in_constant_time(tmp_path):
    node, admin = make_node(tmp_path)
    writer = node.create_token("writer", ["write"])
    rows = node.conn.execute("SELECT * FROM tokens").fetchall()
    node.close()
    dump = b"".join(str(r).encode() for r in rows) + (tmp_path / "node").joinpath("node.db").read_bytes()
    for token in (admin, writer):
        assert token.encode() not in dump  # no plaintext anywhere in the database file
        assert hash_token(token).encode() in dump and hash_token(token) == __import__("hashlib").sha256(
            token.encode()).hexdigest()
    source = inspect.getsource(Node.authenticate)
    assert "hmac.compare_digest" in source and "==" not in source.replace("compare_digest", "")


def auth(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def doors(tmp_path):
    node, admin = make_node(tmp_path)
    node.put_many(actors(2))
    deleter = node.create_token("deleter", ["delete"])
    writer = node.create_token("writer", ["write"])
    revoked = node.create_token("revoked", ["admin"])
    node.revoke_token("revoked")
    node.close()
    with TestClient(create_app(tmp_path / "node")) as client:
        yield client, {"admin": admin, "deleter": deleter, "writer": writer, "revoked": revoked}


WRITES = [("POST", "/records"), ("PUT", f"/records/{NODE_ID}/actor/org-1"), ("DELETE", f"/records/{NODE_ID}/actor/org-1")]


@pytest.mark.parametrize("method,path", WRITES)
def test_every_write_refuses_bad_tokens(doors, method, path):
    client, tokens = doors
    body = json.dumps({"id": "actor/org-1", "type": "Actor", "names": [{"value": "X", "preferred": True}],
                       "actorType": "sme", "country": "DE"})
    cases = {
        "missing": ({}, 401),
        "not bearer": ({"Authorization": f"Basic {base64.b64encode(b'a:b').decode()}"}, 401),
        "empty bearer": ({"Authorization": "Bearer "}, 401),
        "malformed": ({"Authorization": "Bearer \u00e9\u00e9"}, 401),
        "wrong": (auth(tokens["admin"][:-2] + "xx"), 401),
        "revoked": (auth(tokens["revoked"]), 401),
        "wrong scope": (auth(tokens["writer"] if method == "DELETE" else tokens["deleter"]), 403),
    }
    size = client.get("/checkpoint").text.splitlines()[1]
    for name, (headers, status) in cases.items():
        try:
            response = client.request(method, path, content=body if method != "DELETE" else None,
                                      headers={**headers, "If-Match": '"1"', "Content-Type": "application/json"})
        except UnicodeEncodeError:  # the client refuses non-latin-1 header bytes itself: nothing sent
            continue
        assert response.status_code == status, (name, response.status_code, response.text)
        assert response.json()["error"] == ("forbidden" if status == 403 else "unauthorised")
        if status == 401:
            assert response.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/checkpoint").text.splitlines()[1] == size  # nothing written
    ok = client.request(method, path, content=body if method != "DELETE" else None,
                        headers={**auth(tokens["admin"]), "If-Match": '"1"'})
    assert ok.status_code < 400 or ok.status_code in (409, 422), ok.text  # the right token passes the door


# --- SSRF: never fetch outside the registered origin


def test_redirects_off_origin_are_refused_and_never_followed(tmp_path):
    hits = []

    async def target(request):
        hits.append(str(request.url))
        return PlainTextResponse("secret")

    with running(Starlette(routes=[Route("/{p:path}", target)])) as (other,):
        port = other.url.rsplit(":", 1)[1]
        locations = [other.url + "/checkpoint", f"https://127.0.0.1:{port}/checkpoint", "file:///etc/passwd",
                     "http://localhost:" + port + "/checkpoint", "//127.0.0.2/checkpoint",
                     "http://169.254.169.254/latest/meta-data/", "gopher://127.0.0.1:" + port + "/"]

        async def redirect(request):
            return RedirectResponse(locations[int(request.query_params["i"])], status_code=302)

        with running(Starlette(routes=[Route("/checkpoint", redirect)])) as (node,):
            async def fetch_all():
                reasons = []
                async with NodeClient(node.url, retries=0) as client:
                    for i in range(len(locations)):
                        with pytest.raises(FetchError) as refused:
                            await client.get(f"/checkpoint?i={i}", LIMITS)
                        reasons.append(refused.value.reason)
                return reasons

            assert asyncio.run(fetch_all()) == ["redirect-off-origin"] * len(locations)
    assert hits == []


@pytest.mark.parametrize("base_url", ["file:///etc/passwd", "ftp://127.0.0.1/", "gopher://127.0.0.1:70/",
                                      "javascript:alert(1)", "127.0.0.1:8000", "//127.0.0.1:8000"])
def test_registry_base_url_outside_http_is_refused(tmp_path, base_url):
    net = Network(tmp_path)
    try:
        key = SigningKey.generate()
        net.entries["odd"] = registry_node("odd", base_url, [key_entry(key)])
        net.real_node("alpha", 1)
        report = net.harvest()
        assert report.nodes["alpha"].status == "ok"
        odd = report.nodes.get("odd")
        assert odd is None or odd.status == "error", odd
        assert net.records("odd") == {}
    except Exception as exc:  # refused at the registry (schema: baseUrl is an http(s) URI)
        assert "baseUrl" in str(exc) or "uri" in str(exc).lower(), exc
    finally:
        net.close()


# --- the catalogue is read-only and resource-bounded


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    db_path = tmp_path_factory.mktemp("sec") / "catalogue.db"
    build_sample_catalogue(db_path)
    ds = make_datasette(db_path)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(ds.invoke_startup())
    yield db_path, lambda path: loop.run_until_complete(ds.client.get(path))
    loop.close()


@pytest.mark.parametrize("sql", [
    "insert into actors (id) values ('x')", "update actors set name = 'pwned'", "delete from actors",
    "drop table actors", "attach database '/tmp/x.db' as x", "pragma writable_schema = 1",
    "create table t (x)", "select 1; delete from actors", "vacuum into '/tmp/copy.db'",
])
def test_catalogue_sql_is_read_only(catalogue, sql):
    db_path, get = catalogue
    before = sqlite3.connect(db_path).execute("select count(*), max(name) from actors").fetchone()
    response = get("/catalogue.json?sql=" + __import__("urllib.parse").parse.quote(sql))
    assert response.status_code in (400, 403), (sql, response.status_code, response.text[:200])
    assert sqlite3.connect(db_path).execute("select count(*), max(name) from actors").fetchone() == before
    assert not os.path.exists("/tmp/copy.db") or "vacuum" not in sql


def test_catalogue_sql_time_and_length_limits(catalogue):
    _, get = catalogue
    slow = get("/catalogue.json?sql=" + __import__("urllib.parse").parse.quote(
        "with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c"))
    assert slow.status_code == 400 and "interrupted" in slow.json()["error"].lower() or "time" in slow.text.lower()
    big = get("/catalogue.json?sql=select+length(randomblob(400000000))")
    assert big.status_code == 400 and "too big" in big.json()["error"]


# --- private keys are never logged, served or printed; key files are 0600


def secrets_of(key: SigningKey) -> list[bytes]:
    from cryptography.hazmat.primitives import serialization

    raw = key._key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
    pem = key._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    body = b"".join(pem.splitlines()[1:-1])
    return [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw).rstrip(b"="), body, b"PRIVATE KEY",
            raw.hex().encode()]


def test_private_keys_never_leave_the_key_file(tmp_path):
    from biofed.registry.server import create_app as registry_app
    from biofed.registry.store import RegistryStore

    runner = CliRunner()
    node_dir, reg_dir = tmp_path / "node", tmp_path / "registry"
    outputs = [runner.invoke(cli, ["node", "init", str(node_dir), "--id", NODE_ID, "--name", "S", "--country", "DE",
                                   "--region", "DE1", "--base-url", "https://node.example"])]
    node = Node.open(node_dir)
    node.put_many(actors(3))
    node_keys = [node.signing_key]
    node.rotate_key()
    node._key = None
    node_keys.append(node.signing_key)
    node.close()
    for args in (["node", "show", str(node_dir)], ["node", "export", str(node_dir)],
                 ["node", "join-request", str(node_dir)], ["node", "token", str(node_dir), "list"]):
        outputs.append(runner.invoke(cli, args))
    outputs.append(runner.invoke(cli, ["registry", "init", str(reg_dir), "--name", "test"]))
    registry = RegistryStore.open(reg_dir)
    registry_keys = [SigningKey.load(p) for p in (reg_dir / "keys").glob("*.pem")]
    registry.close() if hasattr(registry, "close") else None
    assert [r.exit_code for r in outputs] == [0] * len(outputs), [r.output[-300:] for r in outputs]
    assert len({k.kid for k in node_keys}) == 2  # the retired key too
    seen = b"".join((r.output or "").encode() for r in outputs)
    with TestClient(create_app(node_dir)) as client:
        paths = ["/.well-known/biofed-node.json", "/checkpoint", "/log?limit=1000", "/snapshot.jsonl.gz",
                 "/openapi.json", "/docs", f"/records/{NODE_ID}/actor/org-1", "/schemas/actor.json"]
        seen += b"".join(client.get(p).content for p in paths)
    with TestClient(registry_app(reg_dir)) as client:
        for p in ("/registry.json", "/registry/versions", "/.well-known/biofed-registry.json", "/openapi.json"):
            seen += client.get(p).content
    logs = [p for d in (node_dir, reg_dir) for p in d.rglob("*") if p.is_file() and p.suffix in (".log", ".jsonl")]
    seen += b"".join(p.read_bytes() for p in logs)
    for key in node_keys + registry_keys:
        for secret in secrets_of(key):
            assert secret not in seen, f"a private key form {secret[:12]!r} leaked"
    for pem in list((node_dir / "keys").glob("*.pem")) + list((reg_dir / "keys").glob("*.pem")):
        assert stat.S_IMODE(pem.stat().st_mode) == 0o600, pem


# --- the locked dependencies (their known vulnerabilities: `make audit`, a CI step of its own)


LOCK = Path(__file__).resolve().parent.parent / "requirements.lock"


def locked_requirements():
    """The pins of requirements.lock that apply here (their environment markers hold)."""
    from packaging.requirements import Requirement

    lines = [line.strip() for line in LOCK.read_text().splitlines()]
    requirements = [Requirement(line) for line in lines if line and not line.startswith("#")]
    return [r for r in requirements if r.marker is None or r.marker.evaluate()]


def test_the_environment_is_the_locked_one():
    """What the tests run with is what requirements.lock pins (and `make audit` checks with pip-audit)."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.utils import canonicalize_name

    pins = locked_requirements()
    assert len(pins) > 50 and all(len(r.specifier) == 1 and next(iter(r.specifier)).operator == "==" for r in pins)
    differing = []
    for requirement in pins:
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            installed = None
        if installed is None or installed not in requirement.specifier:
            differing.append((canonicalize_name(requirement.name), str(requirement.specifier), installed))
    assert differing == [], f"installed versions differ from requirements.lock (run `make test`, or `make lock` after changing pyproject.toml): {differing}"
