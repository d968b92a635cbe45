"""Hostile inputs to the importers, the node API, the harvester and the catalogue.

Huge files, deep nesting, duplicate keys, invalid UTF-8, NUL bytes, gzip bombs,
formula injection, path traversal, SQL metacharacters and HTML/JS: each is
refused with a clear error or carried through intact and harmless.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import tracemalloc
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import orjson
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from support.hostile import LogServer, actor, serve, sign_record
from support.network import Network
from support.node import NODE_ID, make_node

from biofed.aggregator.datasette.plugins.csv_guard import neutralise
from biofed.aggregator.serve import make_datasette
from biofed.cli import cli
from biofed.node.app import create_app
from biofed.node.importers import MAX_FILE_BYTES, read_rows
from biofed.trust.keys import SigningKey

SQL = "'; DROP TABLE actors; --"
XSS = ['<script>alert(1)</script>', '<img src=x onerror=alert(1)>', '"><svg onload=alert(1)>']
FORMULAS = ['=HYPERLINK("http://evil.example","Click")', "=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1:A2)"]


@pytest.fixture
def api(tmp_path):
    node, token = make_node(tmp_path)
    node.close()
    with TestClient(create_app(tmp_path / "node")) as client:
        yield client, {"Authorization": f"Bearer {token}"}, tmp_path / "node"


# --- huge files


def test_50_mb_csv_is_refused_up_front_with_bounded_memory(tmp_path):
    path = tmp_path / "members.csv"
    line = b"org-%07d,Acme GmbH,DE,sme\n"
    with path.open("wb") as out:
        out.write(b"id,name,country,actor_type\n")
        block = b"".join(line % i for i in range(10_000))
        while out.tell() < 50 * 1024 * 1024:
            out.write(block)
    assert path.stat().st_size > MAX_FILE_BYTES
    tracemalloc.start()
    try:
        with pytest.raises(Exception) as refused:
            list(read_rows(path, node_id=NODE_ID))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "over the limit" in str(refused.value) and "MiB" in str(refused.value)
    assert peak < 5 * 1024 * 1024, f"peak {peak} bytes while refusing a 50 MB file"
    node, _ = make_node(tmp_path)
    node.close()
    result = CliRunner().invoke(cli, ["node", "import", str(tmp_path / "node"), str(path), "--quiet"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [result.output.strip()]  # one line
    assert result.output.startswith("Error: members.csv is 5") and "split it" in result.output


def test_giant_csv_field_is_a_row_error(tmp_path):
    path = tmp_path / "members.csv"
    path.write_bytes(b"id,name\norg-a,\"" + b"x" * 2_000_000 + b"\"\n")
    rows = list(read_rows(path, node_id=NODE_ID))
    assert rows and rows[-1].content is None and "malformed CSV" in rows[-1].errors[0].message


# --- the node API: malformed, nested, oversized bodies


@pytest.mark.parametrize("body,status,words", [
    (b"[" * 30_000 + b"]" * 30_000, 400, "nested deeper"),
    (b'{"a":' * 40 + b"1" + b"}" * 40, 400, "nested deeper"),
    (b'{"id": "actor/a", "type": "Actor", "id": "actor/b"}', 400, "duplicate key"),
    (b'{"id": "actor/a", "type": "Actor", "names": [{"value": "Caf\xe9"}]}', 400, "UTF-8"),
    (b'{"id": "actor/a", "type": "Act\x00or"}', 400, "malformed JSON"),
    (b'\xef\xbb\xbf{"id": "actor/a"}', 400, "byte order mark"),
    (b'{"id": "actor/a", "type": "Actor", "version": NaN}', 400, "NaN"),
    (b'{"id": "actor/a", "type": "Actor", "employees": 1e400}', 400, "floating"),
    (b'{"id": "actor/a", "type": "Actor", "employees": 123456789012345678901234567890}', 400, "outside"),
    (b'{"id": "actor/a", "type": "Actor", "names": [{"value": "Cafe\\u0301"}]}', 400, "NFC"),
    (b"[]", 400, "JSON object"),
    (b'{"id": "actor/a", "pad": "' + b"x" * 70_000 + b'"}', 413, "limit"),
])
def test_hostile_bodies_are_refused_with_the_reason(api, body, status, words):
    client, auth, _ = api
    response = client.post("/records", content=body, headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()
    assert set(error) == {"error", "message", "errors"} and words in error["message"], error
    assert client.get("/checkpoint").text.splitlines()[1] == "0"  # nothing logged


def test_body_without_content_length_is_cut_at_the_limit(api):
    client, auth, _ = api

    def chunks():
        yield b'{"id": "actor/a", "pad": "'
        for _ in range(200):
            yield b"x" * 1024

    response = client.post("/records", content=chunks(), headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 413 and "limit" in response.json()["message"]


def test_nul_and_control_characters_in_strings_round_trip_or_are_refused(api):
    client, auth, _ = api
    content = {"id": "actor/nul", "type": "Actor", "names": [{"value": "Acme\u0000 GmbH\u001b[31m", "preferred": True}],
               "actorType": "sme", "country": "DE"}
    response = client.post("/records", content=orjson.dumps(content), headers=auth)
    assert response.status_code in (201, 422), response.text
    if response.status_code == 201:
        assert client.get(f"/records/{NODE_ID}/actor/nul").json()["names"][0]["value"] == content["names"][0]["value"]


def test_deeply_nested_import_file_is_a_row_error(tmp_path):
    path = tmp_path / "records.json"
    path.write_bytes(b'[{"id": "actor/a", "type": "Actor", "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}]")
    node, _ = make_node(tmp_path)
    node.close()
    result = CliRunner().invoke(cli, ["node", "import", str(tmp_path / "node"), str(path), "--quiet"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "nested deeper" in result.output or "deep" in result.output, result.output


# --- path traversal in ids


TRAVERSALS = ["../../etc/passwd", "..%2f..%2fetc%2fpasswd", "%2e%2e/%2e%2e/etc/passwd", "actor/../../../etc/passwd",
              f"{NODE_ID}/actor/..", f"{NODE_ID}/actor/../../node.json", "actor/..\\..\\key", "/etc/passwd",
              "actor/%00", "actor/a\x00b"]


@pytest.mark.parametrize("evil", TRAVERSALS)
def test_traversal_ids_are_refused_and_never_read_files(api, evil):
    client, auth, directory = api
    before = sorted(p.name for p in directory.rglob("*"))
    content = {"id": evil, "type": "Actor", "names": [{"value": "X", "preferred": True}], "actorType": "sme",
               "country": "DE"}
    created = client.post("/records", content=orjson.dumps(content), headers=auth)
    assert created.status_code == 422, created.text
    assert created.json()["errors"][0]["pointer"] == "/id"
    quoted = quote(evil, safe="/%\\")
    for path in (f"/records/{quoted}", f"/records/{NODE_ID}/{quoted}", "/schemas/../../node.json",
                 "/schemas/..%2f..%2fnode.json"):
        response = client.get(path)
        assert response.status_code in (404, 400, 422), (path, response.status_code)
        assert b"root:" not in response.content and b"PRIVATE" not in response.content
    for method in ("put", "delete"):
        response = client.request(method.upper(), f"/records/{quoted}", headers={**auth, "If-Match": '"1"'},
                                  content=orjson.dumps(content) if method == "put" else None)
        assert response.status_code in (400, 404, 422), (method, response.status_code, response.text)
    assert sorted(p.name for p in directory.rglob("*")) == before or all(
        not name.startswith("..") for name in (p.name for p in directory.rglob("*")))


def test_traversal_node_ids_in_join_requests_are_refused(tmp_path):
    from biofed.registry.store import RegistryStore

    result = CliRunner().invoke(cli, ["node", "init", str(tmp_path / "n"), "--id", "../../etc", "--name", "X",
                                      "--country", "DE"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert not (tmp_path.parent / "etc").exists() or not any((tmp_path.parent / "etc").iterdir())
    assert RegistryStore  # the registry validates join requests with the same node-id pattern (test_registry.py)


# --- SQL metacharacters and HTML/JS: through node -> harvest -> catalogue intact, and escaped in HTML


@pytest.fixture
def hostile_catalogue(tmp_path):
    net = Network(tmp_path)
    node, _ = net.real_node("evil", 0)
    records = [
        {"id": "actor/sql", "type": "Actor", "actorType": "sme", "country": "DE",
         "names": [{"value": SQL, "preferred": True}, {"value": SQL + " 2", "lang": "en"}], "acronyms": [SQL],
         "description": {"en": SQL, "de": SQL}, "address": {"street": SQL, "locality": SQL},
         "technologies": [SQL]},
    ] + [{"id": f"actor/xss-{i}", "type": "Actor", "actorType": "sme", "country": "DE",
          "names": [{"value": text, "preferred": True}], "description": {"en": text}, "technologies": [text]}
         for i, text in enumerate(XSS)] + [
        {"id": f"actor/formula-{i}", "type": "Actor", "actorType": "sme", "country": "DE",
         "names": [{"value": text, "preferred": True}]} for i, text in enumerate(FORMULAS)]
    node.put_many(records)
    report = net.harvest()
    assert report.nodes["evil"].status == "ok", report.nodes["evil"]
    ds = make_datasette(net.db)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(ds.invoke_startup())
    yield net, lambda path: loop.run_until_complete(ds.client.get(path))
    loop.close()
    net.close()


def test_sql_metacharacters_round_trip_intact(hostile_catalogue):
    net, get = hostile_catalogue
    row = net.query("SELECT * FROM actors WHERE id = 'evil/actor/sql'")[0]
    assert row["name"] == SQL and SQL in row["acronym"] and SQL in row["description"] and row["city"] == SQL
    assert net.query("SELECT count(*) AS n FROM actors")[0]["n"] == 1 + len(XSS) + len(FORMULAS)
    found = get("/catalogue/actors.json?_shape=objects&_search=" + "DROP")
    assert found.status_code == 200 and any(r["name"] == SQL for r in found.json()["rows"])
    signed = orjson.loads(net.records("evil")["evil/actor/sql"]["signed_json"])
    assert signed["names"][0]["value"] == SQL and signed["address"]["street"] == SQL


@pytest.mark.parametrize("page", ["/catalogue/actors", "/catalogue/actors?_search=alert", "/catalogue/actors/{id}",
                                  "/-/search?q=alert", "/catalogue/actor_technologies"])
def test_html_and_script_in_names_are_escaped(hostile_catalogue, page):
    _, get = hostile_catalogue
    for i, text in enumerate(XSS):
        response = get(page.replace("{id}", f"evil~2Factor~2Fxss-{i}"))
        # a 404 fails too: a page that is not served (e.g. /-/search without datasette-search-all) is a lost feature
        assert response.status_code == 200, (page, response.status_code)
        assert text not in response.text, (page, text)
        if "{id}" in page or "_search" in page:
            assert text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace(
                '"', "&#34;") in response.text or "&lt;" in response.text


def test_csv_export_neutralises_formulas_but_json_keeps_them(hostile_catalogue):
    _, get = hostile_catalogue
    exported = get("/catalogue/actors.csv?_size=max")
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    names = {r["id"]: r["name"] for r in rows}
    for i, text in enumerate(FORMULAS):
        assert names[f"evil/actor/formula-{i}"] == "'" + text  # shown as text, not run
    assert all(not cell.startswith(("=", "+", "@")) for r in rows for cell in r.values())
    streamed = get("/catalogue/actors.csv?_stream=on")
    assert streamed.status_code == 200 and '"=HYPERLINK' not in streamed.text and "\n=" not in streamed.text
    as_json = get("/catalogue/actors.json?_shape=objects&id__startswith=evil/actor/formula").json()["rows"]
    assert sorted(r["name"] for r in as_json) == sorted(FORMULAS)  # the data itself is unchanged


def test_neutralise_leaves_numbers_alone():
    assert [neutralise(v) for v in ["-3", "+49", "-1.5e3", "48.52", "plain", "-x", "@a", "\t=1"]] == \
        ["-3", "+49", "-1.5e3", "48.52", "plain", "'-x", "'@a", "'\t=1"]


# --- huge numbers from a node: a profile / malformed refusal naming the place, nothing else changes

HUGE = b"9" * 5000  # beyond Python's 4,300-digit int() limit


def _spliced(leaf: bytes, member: bytes) -> bytes:
    """A signed leaf with one more member spliced into its text (a node sending out-of-profile JSON)."""
    return leaf[:-1] + b"," + member + b"}"


def _served_state(net, node_id):
    row = net.node_row(node_id)
    return row["cursor"], row["tree_size"], row["root_hash"], sorted(net.records(node_id))


@pytest.mark.parametrize("member, pointer, words", [
    (b'"address":{"postCode":' + HUGE + b"}", "/entries/0/record/address/postCode", "5000 digits) is outside"),
    (b'"address":{"postCode":-' + HUGE + b"}", "/entries/0/record/address/postCode", "5000 digits) is outside"),
    (b'"x":[1,{"y":[' + HUGE + b"]}]", "/entries/0/record/x/1/y/0", "5000 digits) is outside"),
    (b'"totalBudgetCents":9007199254740992', "/entries/0/record/totalBudgetCents", "9007199254740992 is outside"),
])
def test_huge_integer_in_a_served_record_is_a_malformed_page(tmp_path, member, pointer, words):
    net = Network(tmp_path)
    try:
        net.real_node("alpha", 2)
        key = SigningKey.generate()
        leaves = [sign_record(actor("huge", f"h{i}"), key, "huge") for i in range(2)]
        server, _ = net.log_server("huge", leaves, key)
        assert net.harvest().nodes["huge"].status == "ok"
        before = _served_state(net, "huge")
        server.leaves.append(_spliced(sign_record(actor("huge", "h2"), key, "huge"), member))
        report = net.harvest()
        refused = report.nodes["huge"]
        assert refused.status == "error" and refused.reason == "malformed", refused
        assert f"{pointer}: integer" in refused.error and words in refused.error and "internal" not in refused.error
        assert len(refused.error) < 400  # the number is named by its size, not spelled out
        assert net.node_row("huge")["health"] == "error" and pointer in net.node_row("huge")["error"]
        assert _served_state(net, "huge") == before
        assert report.nodes["alpha"].status in ("ok", "unchanged") and len(net.records("alpha")) == 2
    finally:
        net.close()


def test_largest_safe_integer_in_a_record_goes_through(tmp_path):
    net = Network(tmp_path)
    try:
        node, _ = net.real_node("alpha", 0)
        node.put_many([{"id": "project/p1", "type": "Project", "title": "Safe integers", "programme": "H2020",
                        "totalBudgetCents": 2**53 - 1}])
        assert net.harvest().nodes["alpha"].status == "ok"
        held = orjson.loads(net.records("alpha")["alpha/project/p1"]["signed_json"])
        assert held["totalBudgetCents"] == 9007199254740991
    finally:
        net.close()


def _signed_note(key: SigningKey, origin: str, size_line: str, root: bytes, stamp: str) -> str:
    """A correctly signed note whose size line is whatever a hostile node writes."""
    import base64

    from biofed.trust.checkpoint import note_key_id

    body = f"{origin}\n{size_line}\n{base64.b64encode(root).decode()}\ntimestamp {stamp}\n".encode()
    sig = base64.b64encode(note_key_id(origin, key.public) + key.sign(body)).decode()
    return body.decode() + f"\n\u2014 {origin} {sig}\n"


@pytest.mark.parametrize("size_line, words", [
    ("9" * 5000, "tree size of 5000 digits is larger than 9007199254740991"),
    ("9007199254740992", "tree size 9007199254740992 is larger than 9007199254740991"),
    ("-" + "9" * 5000, "is not a decimal number"),
    ("\u0663", "is not a decimal number"),  # a Unicode digit: str.isdigit(), yet not a size
])
def test_huge_or_non_decimal_checkpoint_size_is_a_malformed_checkpoint(tmp_path, size_line, words):
    from datetime import datetime, timezone

    from support.hostile import utc

    from biofed.trust import merkle

    net = Network(tmp_path)
    try:
        net.real_node("alpha", 1)
        key = SigningKey.generate()
        leaves = [sign_record(actor("huge", f"h{i}"), key, "huge") for i in range(2)]
        server, _ = net.log_server("huge", leaves, key)
        assert net.harvest().nodes["huge"].status == "ok"
        before = _served_state(net, "huge")
        root = merkle.root([merkle.leaf_hash(leaf) for leaf in leaves])
        note = _signed_note(key, "biofed/node/huge", size_line, root, utc(datetime.now(timezone.utc)))
        server.checkpoint_note = lambda: note
        report = net.harvest()
        refused = report.nodes["huge"]
        assert refused.status == "error" and refused.reason == "malformed", refused
        assert words in refused.error and len(refused.error) < 400
        assert _served_state(net, "huge") == before
        assert server.requests[-1] == "/checkpoint"  # no page was asked for
        assert report.nodes["alpha"].status in ("ok", "unchanged")
    finally:
        net.close()


# --- a gzip bomb in a feed


def test_gzip_bomb_log_page_stops_at_the_cap(tmp_path):
    net = Network(tmp_path)
    try:
        net.real_node("alpha", 2)
        key = SigningKey.generate()
        leaves = [sign_record(actor("bomb", f"b{i}"), key, "bomb") for i in range(3)]
        server = LogServer("bomb", key, leaves)
        bomb = gzip.compress(b'{"node": "bomb", "entries": [' + b" " * (200 * 1024 * 1024) + b"]}", compresslevel=9)
        assert len(bomb) < 300 * 1024

        async def checkpoint(request):
            return PlainTextResponse(server.checkpoint_note())

        async def log(request):
            return Response(bomb, media_type="application/json", headers={"Content-Encoding": "gzip"})

        served = serve(Starlette(routes=[Route("/checkpoint", checkpoint), Route("/log", log)]))
        net.servers.append(served)
        from support.hostile import key_entry, registry_node

        net.entries["bomb"] = registry_node("bomb", served.url, [key_entry(key)])
        tracemalloc.start()
        try:
            report = net.harvest()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert report.nodes["bomb"].status == "error" and "limit" in report.nodes["bomb"].error
        assert net.node_row("bomb")["health"] == "error" and "limit" in net.node_row("bomb")["error"]
        assert report.nodes["alpha"].status == "ok" and len(net.records("alpha")) == 2
        assert net.records("bomb") == {}
        assert peak < 60 * 1024 * 1024, f"peak {peak} bytes: the bomb was inflated"
    finally:
        net.close()


# --- a record that claims to be signed in the future


def test_a_record_signed_in_the_future_is_refused_and_the_earlier_version_kept(tmp_path):
    """proof.created 2999-01-01 with a higher version: refused (future-created), version 1 stays.

    The node's checkpoint is signed now; a proof may not claim a time later
    than that plus the allowed clock skew (protocol.md §8).
    """
    net = Network(tmp_path)
    try:
        key = SigningKey.generate()
        v1 = sign_record(actor("future", "a", 1, "Honest name"), key, "future")
        server, _ = net.log_server("future", [v1], key)
        report = net.harvest()
        assert report.nodes["future"].status == "ok" and net.records("future")["future/actor/a"]["version"] == 1
        ahead = sign_record(actor("future", "a", 2, "From the future"), key, "future", created="2999-01-01T00:00:00Z")
        skewed = sign_record(actor("future", "b", 1, "A clock 4 minutes fast"), key, "future",
                             created=(datetime.now(timezone.utc) + timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        server.leaves += [ahead, skewed]
        report = net.harvest()
        assert report.nodes["future"].status == "ok", report.nodes["future"].error
        assert net.rejections("future") == [("future/actor/a", "future-created")]
        rejection = net.query("SELECT message FROM rejections WHERE node_id = 'future'")[0]["message"]
        assert "2999-01-01T00:00:00Z" in rejection and "checkpoint" in rejection
        records = net.records("future")
        assert records["future/actor/a"]["version"] == 1 and "Honest name" in records["future/actor/a"]["signed_json"]
        assert "future/actor/b" in records  # within the allowed skew
    finally:
        net.close()
