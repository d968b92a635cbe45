"""`biofed demo --no-serve` builds the real network end to end, and a rerun is incremental."""

import json
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

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
    assert len(rows) > 250  # 282: the life-science scope keeps 112 of the 455 ROR organisations
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
        assert canned("collaborations_between_regions", region="DE1", partner_region="FR1"), "partners across two demo regions"
        assert [a["id"] for a in canned("search", q="organoid", country="", region="")][:2] == [
            "biopro-bw/actor/stern-organoid", "biopro-bw/actor/izt"]
    finally:
        loop.close()


def canned_queries(directory):
    """Call a canned query of the real Datasette catalogue: canned(name, **params) -> rows."""
    import asyncio

    from biofed.aggregator.serve import make_datasette

    ds = make_datasette(directory / "catalogue-public.db")
    loop = asyncio.new_event_loop()
    loop.run_until_complete(ds.invoke_startup())

    def canned(name, **params):
        response = loop.run_until_complete(ds.client.get(f"/catalogue/{name}.json", params={**params, "_shape": "array"}))
        assert response.status_code == 200, response.text
        return response.json()

    return canned, loop


def test_sector_and_stage_questions_answer_in_five_of_six_regions(demo):
    """ROR and CORDIS carry no sectors or stages: the importers derive them from CORDIS evidence, so the
    territorial survey and 'who does what where' answer on real data, not only on the sample sheet."""
    directory, _, _ = demo
    canned, loop = canned_queries(directory)
    try:
        answered = {"sector": set(), "stage": set()}
        for node in demo_nodes():
            strengths = canned("region_strengths", region=node["region"])
            for row in strengths:
                answered[row["dimension"]].add(node["id"])
            # a real question per region: who does research and development in its strongest sector?
            sectors = sorted((r for r in strengths if r["dimension"] == "sector"), key=lambda r: -r["actors"])
            if sectors:
                who = canned("actors_by_stage_and_sector_in_region", region=node["region"], stage="research-development",
                             sector=sectors[0]["value"])
                assert who and all(a["id"].startswith(node["id"] + "/") or a["region"] for a in who)
        assert len(answered["sector"]) >= 5 and len(answered["stage"]) >= 5, answered
    finally:
        loop.close()
    db = directory / "catalogue-public.db"
    # the real figures come from real actors, and each derived field says so in the record
    real = query(db, """SELECT count(DISTINCT s.actor_id) FROM actor_sectors s JOIN actors a ON a.id = s.actor_id
                         WHERE a.website IS NULL OR a.website NOT LIKE '%.example%'""")[0][0]
    assert real > 50
    for (signed,) in query(db, """SELECT r.signed_json FROM records r JOIN actor_sectors s ON s.actor_id = r.id
                                  WHERE r.id LIKE '%/actor/pic-%' GROUP BY r.id"""):
        derived = [s["derived"] for s in json.loads(signed)["sources"] if "derived" in s]
        assert derived and "sectors" in derived[0]["fields"] and derived[0]["count"] >= 1


def test_untitled_projects_are_not_titled_by_their_acronym(demo):
    """The shipped H2020 extract has no titles: the records have none (the acronym is kept as the acronym),
    and the catalogue says so (title_stated 0), so its pages show "no title in the source"."""
    directory, _, _ = demo
    db = directory / "catalogue-public.db"
    rows = query(db, "SELECT p.id, p.title, p.acronym, p.title_stated, r.signed_json FROM projects p "
                     "JOIN records r ON r.id = p.id")
    assert len(rows) == 54
    for project_id, title, acronym, title_stated, signed in rows:
        record = json.loads(signed)
        assert "title" not in record and record["acronym"] == acronym
        assert title_stated == 0 and title == acronym, project_id


def test_partners_in_demo_regions_resolve_to_their_nodes_actor(demo):
    directory, _, _ = demo
    db = directory / "catalogue-public.db"
    nodes = {n["region"]: n["id"] for n in demo_nodes()}
    actors = dict(query(db, "SELECT id, pic FROM actors"))
    in_region = elsewhere = 0
    for (signed,) in query(db, "SELECT signed_json FROM records WHERE type = 'Project'"):
        for partner in json.loads(signed)["partners"]:
            node = next((n for region, n in nodes.items() if partner.get("region", "").startswith(region)), None)
            if node is not None:
                in_region += 1
                pic = partner.get("identifiers", {}).get("pic")
                # the node's record of that PIC: `pic-<PIC>`, or the ROR record its CORDIS row was merged into
                assert partner["actor"].startswith(f"{node}/actor/"), partner
                assert partner["actor"] in actors, partner
                assert actors[partner["actor"]] == pic if pic else partner["actor"].startswith(f"{node}/actor/org-")
            else:
                elsewhere += 1
                assert "actor" not in partner and partner["name"] and partner["country"]
    with_region = query(db, "SELECT count(*) FROM records WHERE type = 'Project' AND signed_json LIKE '%\"region\"%'")
    assert in_region > 100 and elsewhere > 100 and with_region[0][0] == 54
    resolved = query(db, "SELECT count(*) FROM participations WHERE actor_id IS NOT NULL")[0][0]
    assert resolved == in_region  # every reference resolves in the catalogue too


def test_no_archive_or_museum_among_the_actors(demo):
    directory, _, _ = demo
    db = directory / "catalogue-public.db"
    names = [name for (name,) in query(db, "SELECT name || ' ' || coalesce(other_names, '') FROM actors")]
    assert len(names) > 150
    assert not [n for n in names if any(word in n.lower() for word in ("museum", "musée", "museo", "archiv",
                                                                        "bibliot", "library"))]
    ror_types = [json.loads(signed) for (signed,) in query(db, "SELECT signed_json FROM records WHERE type = 'Actor'")]
    assert not [a["id"] for a in ror_types if a.get("actorType") == "other" and "ror" in a.get("identifiers", {})
                and any(word in a["names"][0]["value"].lower() for word in ("kunst", "geschichte", "zoo"))]


def test_terminal_output_is_text_only(demo):
    _, _, first = demo
    lines = (first.stdout + first.stderr).splitlines()
    assert lines and not [line for line in lines if line.lstrip().startswith("{")]


def test_make_demo_passes_options_through():
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    result = subprocess.run(["make", "-n", "demo", "ARGS=--port 9001 --base-port 9100"], capture_output=True,
                            text=True, cwd=Path(__file__).parent.parent, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "biofed demo --port 9001 --base-port 9100" in result.stdout


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
