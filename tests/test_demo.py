"""`biofed demo --no-serve` builds the real network end to end, and a rerun is incremental."""

import json
import socket
import sqlite3
import subprocess
import sys

import pytest

from biofed.data import demo_nodes, demo_rows
from biofed.errors import BiofedError
from biofed.schema import validate_record
from biofed.serving import free_port_run


def free_base_port(span: int = 7) -> int:
    """A run of `span` free loopback ports (registry + six nodes)."""
    try:
        return free_port_run(span)
    except BiofedError:
        pytest.skip("no run of free loopback ports")


def run_demo(directory, base_port):
    result = subprocess.run(
        [sys.executable, "-m", "biofed", "demo", "--dir", str(directory), "--no-serve", "--base-port", str(base_port)],
        capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def shipped_records():
    """What the shipped data holds for each node: valid record ids, and the invalid ones."""
    valid, invalid = {}, {}
    for node in demo_nodes():
        valid[node["id"]], invalid[node["id"]] = set(), set()
        for row in demo_rows(node["id"]):
            if row.content is not None and not row.errors and not validate_record(row.content, signed=False):
                valid[node["id"]].add(row.content["id"])
            else:
                invalid[node["id"]].add(row.source)
    return valid, invalid


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    directory = tmp_path_factory.mktemp("demo")
    base_port = free_base_port()
    first = run_demo(directory, base_port)
    return directory, base_port, first


def query(db, sql, *args):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def test_every_valid_shipped_record_is_in_the_catalogue(demo):
    directory, _, _ = demo
    db = directory / "catalogue-public.db"
    valid, invalid = shipped_records()
    catalogue = {}
    for table in ("actors", "projects", "offers"):
        for node_id, record_id in query(db, f"SELECT node_id, id FROM {table}"):
            catalogue.setdefault(node_id, set()).add(record_id)
    assert set(catalogue) == {n["id"] for n in demo_nodes()}, "actors from every node"
    for node_id, ids in valid.items():
        assert catalogue[node_id] == ids
    # the ones the nodes refused are listed in the catalogue's rejections, with reasons
    refused = query(db, "SELECT node_id, message FROM rejections WHERE reason = 'refused-at-import'")
    assert len(refused) == sum(len(v) for v in invalid.values())
    assert all(message and ": " in message for _, message in refused)


def test_every_record_verifies_with_a_key_the_registry_pins(demo):
    from biofed.trust import proofs
    from biofed.trust.keys import PublicKey

    directory, _, _ = demo
    registry = json.loads((directory / "registry" / "registry.json").read_text())
    keys = {key["kid"]: PublicKey.from_jwk({k: key[k] for k in ("kty", "crv", "x", "kid")})
            for node in registry["nodes"] for key in node["keys"]}
    rows = query(directory / "catalogue-public.db", "SELECT signed_json FROM records")
    assert len(rows) > 500
    for (signed,) in rows:
        record = json.loads(signed)
        proofs.verify(record, lambda method: keys.get(method.rsplit("#", 1)[-1]))


def test_actors_are_on_the_map_and_projects_cross_borders(demo):
    directory, _, _ = demo
    db = directory / "catalogue-public.db"
    located = dict(query(db, "SELECT node_id, count(*) FROM actors WHERE latitude IS NOT NULL GROUP BY node_id"))
    assert set(located) == {n["id"] for n in demo_nodes()}
    cross_node = query(db, """SELECT count(*) FROM participations x JOIN projects p ON p.id = x.project_id
                              JOIN actors a ON a.id = x.actor_id WHERE a.node_id != p.node_id""")[0][0]
    assert cross_node > 10, "partners on other nodes are resolved to their actor records"
    assert query(db, "SELECT count(*) FROM projects WHERE cross_border = 1")[0][0] > 10


def test_the_seeds_questions_have_answers_on_the_demo(demo):
    """The canned queries answer on the demo itself, through the real Datasette: the sample
    member spreadsheet and offers (biopro-bw) carry the sectors, stages, technologies and
    offers that ROR and CORDIS do not."""
    import asyncio

    from biofed.aggregator.serve import make_datasette

    directory, _, _ = demo
    ds = make_datasette(directory / "catalogue-public.db")
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(ds.invoke_startup())

        def canned(name, **params):
            response = loop.run_until_complete(ds.client.get(f"/catalogue/{name}.json", params={**params, "_shape": "array"}))
            assert response.status_code == 200, response.text
            return response.json()

        producers = canned("actors_by_stage_and_sector_in_region", region="DE1", stage="production", sector="medtech")
        assert [a["id"] for a in producers] == ["biopro-bw/actor/ermstal-medtech"]
        strengths = canned("region_strengths", region="DE14")
        assert {(s["dimension"], s["value"]) for s in strengths} >= {("sector", "red-biotech"), ("stage", "training")}
        offers = canned("offers_for_technology", technology="organoids")
        assert {(o["id"], o["provider"]) for o in offers} == {
            ("biopro-bw/offer/izt-organoid-licence", "Institut für Zellsysteme Tübingen"),
            ("biopro-bw/offer/stern-organoid-screening", "Stern Organoid Labs GmbH")}
        assert len(canned("cross_border_projects", country="")) > 10
        assert canned("collaborations_between_regions", a="DE1", b="FR1"), "partners across two demo regions"
        assert [a["id"] for a in canned("search", q="organoid", country="", region="")][:2] == [
            "biopro-bw/actor/stern-organoid", "biopro-bw/actor/izt"]
    finally:
        loop.close()


def test_rerun_reuses_the_directory_and_harvests_incrementally(demo):
    directory, base_port, _ = demo
    before = query(directory / "catalogue.db", "SELECT max(seq) FROM changes")[0][0]
    sizes = {n: query(directory / "nodes" / n / "node.db", "SELECT count(*) FROM log")[0][0]
             for n in (n["id"] for n in demo_nodes())}
    second = run_demo(directory, base_port)
    assert "0 created,   0 updated" in second.stderr
    assert query(directory / "catalogue.db", "SELECT max(seq) FROM changes")[0][0] == before
    for node_id, size in sizes.items():
        assert query(directory / "nodes" / node_id / "node.db", "SELECT count(*) FROM log")[0][0] == size
    summary = json.loads((directory / "summary.json").read_text())
    assert summary["harvest"]["nodes"] == {"unchanged": 6}


def test_busy_port_is_a_clear_error(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "biofed", "demo", "--dir", str(tmp_path / "d"), "--no-serve",
                                 "--base-port", str(port)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"port(s) {port}" in result.stderr and "Traceback" not in result.stderr
