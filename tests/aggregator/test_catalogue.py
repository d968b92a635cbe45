"""The public catalogue: real signed records, real SQLite, Datasette in-process."""

from __future__ import annotations

import asyncio
import gzip
import json
import sqlite3

import pytest
from support.catalogue_sample import (
    DELETED,
    HTML_NAME,
    STALE_SINCE,
    build_sample_catalogue,
)

from biofed.aggregator import catalogue
from biofed.aggregator.serve import make_datasette
from biofed.trust import proofs
from biofed.trust.canonical import canonicalize


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    db_path = tmp_path_factory.mktemp("catalogue") / "catalogue.db"
    info = build_sample_catalogue(db_path)
    ds = make_datasette(db_path)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(ds.invoke_startup())

    def get(path, **kwargs):
        return loop.run_until_complete(ds.client.get(path, **kwargs))

    yield {**info, "db_path": db_path, "get": get}
    loop.close()


def rows(sample, path):
    response = sample["get"](path)
    assert response.status_code == 200, response.text
    return response.json()


def test_actors_table_json_has_provenance_and_coordinates(sample):
    actors = {a["id"]: a for a in rows(sample, "/catalogue/actors.json?_shape=array")}
    assert DELETED not in actors
    uni = actors["bioregio-stern/actor/uni-tuebingen"]
    assert uni["name"] == "Eberhard Karls Universität Tübingen"
    assert (uni["latitude"], uni["longitude"], uni["geo_precision"]) == (48.5233, 9.0612, "exact")
    assert uni["description"] == "University in Tübingen."  # English preferred over German
    assert uni["ror"] == "https://ror.org/03a1kwz48"
    assert uni["licence"] == "CC-BY-4.0" and uni["node_id"] == "bioregio-stern"
    assert uni["record_url"] == "https://bioregio-stern.example/records/bioregio-stern/actor/uni-tuebingen"
    assert uni["version"] == 1 and uni["verified_at"] and uni["stale"] == 0


def test_regions_are_named_from_the_nuts_code_list(sample):
    regions = rows(sample, "/catalogue/regions.json?_shape=array&_size=max")
    assert len(regions) == 451
    assert {"code": "DE1", "name": "Baden-Württemberg"}.items() <= next(r for r in regions if r["code"] == "DE1").items()
    uni = rows(sample, "/catalogue/actors.json?_shape=array&id=bioregio-stern/actor/uni-tuebingen")[0]
    assert uni["region_name"]


def test_facets_on_country_and_actor_type(sample):
    data = rows(sample, "/catalogue/actors.json?_facet=country&_facet=actor_type&_size=0")
    countries = {f["value"]: f["count"] for f in data["facet_results"]["country"]["results"]}
    types = {f["value"]: f["count"] for f in data["facet_results"]["actor_type"]["results"]}
    assert countries == {"DE": 3, "FR": 2, "DK": 2}
    assert types["university"] == 3 and types["large-company"] == 2
    filtered = rows(sample, "/catalogue/actors.json?country=DE&_facet=actor_type&_size=0")
    assert {f["value"] for f in filtered["facet_results"]["actor_type"]["results"]} == {"university", "large-company", "sme"}
    assert "suggested_facets" not in filtered or not filtered["suggested_facets"]


def test_junction_tables_facet_sectors_and_stages_by_country(sample):
    data = rows(sample, "/catalogue/actor_sectors.json?country=DK&_facet=sector&_size=0")
    assert {f["value"]: f["count"] for f in data["facet_results"]["sector"]["results"]} == {
        "biomanufacturing": 2, "white-biotech": 1, "pharma": 1}
    stages = rows(sample, "/catalogue/actor_value_chain.json?_facet=stage&_size=0")["facet_results"]["stage"]["results"]
    assert {f["value"]: f["count"] for f in stages}["research-development"] == 4
    # Datasette's many-to-many filter: actors having a sector, through the junction table.
    through = json.dumps({"table": "actor_sectors", "column": "sector", "value": "pharma"})
    pharma = rows(sample, f"/catalogue/actors.json?_shape=array&_through={through}")
    assert {a["id"] for a in pharma} == {"bioregio-stern/actor/curevac", "dlsc/actor/novo"}


def test_full_text_search_ignores_diacritics_and_ranks(sample):
    # _sort=id is what Datasette's own search form sends
    found = rows(sample, "/catalogue/actors.json?_search=Tubingen&_sort=id&_shape=array")
    assert {a["id"] for a in found} == {"bioregio-stern/actor/uni-tuebingen", "bioregio-stern/actor/curevac"}
    ranked = rows(sample, "/catalogue/search.json?q=tubingen&country=&region=&_shape=array")
    assert ranked[0]["id"] == "bioregio-stern/actor/uni-tuebingen"  # name and city match beat city alone
    assert [a["id"] for a in rows(sample, "/catalogue/search.json?q=Genethon&country=&region=&_shape=array")] == [
        "genopole/actor/genethon"]
    # technologies, other names, and filters by country and region prefix
    assert [a["id"] for a in rows(sample, "/catalogue/search.json?q=crispr&country=de&region=DE1&_shape=array")] == [
        "bioregio-stern/actor/uni-tuebingen"]
    assert rows(sample, "/catalogue/search.json?q=crispr&country=FR&region=&_shape=array") == []
    assert [a["id"] for a in rows(sample, "/catalogue/search.json?q=technical+denmark&country=&region=&_shape=array")] == [
        "dlsc/actor/dtu"]
    # punctuation is not FTS syntax (an unbalanced query is no error); empty parameters match all
    assert [a["id"] for a in rows(sample, "/catalogue/search.json?q=mRNA,+(&country=&region=&_shape=array")] == [
        "bioregio-stern/actor/curevac"]
    assert sample["get"]("/catalogue/search.json?q=%22unbalanced+OR+NEAR(&country=&region=").status_code == 200
    everyone = rows(sample, "/catalogue/search.json?q=&country=&region=&_shape=array")
    assert len(everyone) == 7 and [a["name"] for a in everyone] == sorted(a["name"] for a in everyone)
    assert {a["id"] for a in rows(sample, "/catalogue/search.json?q=&country=fr&region=&_shape=array")} == {
        "genopole/actor/genethon", "genopole/actor/univ-evry"}
    # A cluster (node) name finds the cluster's actors, after the text matches.
    found = rows(sample, "/catalogue/search.json?q=Genopole&country=&region=&_shape=array")
    assert {(a["id"], a["matched"]) for a in found} == {
        ("genopole/actor/genethon", "cluster Genopole"), ("genopole/actor/univ-evry", "cluster Genopole")}


def test_projects_and_offers_search(sample):
    assert [p["id"] for p in rows(sample, "/catalogue/projects.json?_search=cobioe&_shape=array")] == [
        "genopole/project/cobioe"]
    assert [o["id"] for o in rows(sample, "/catalogue/offers.json?_search=nanoparticles&_shape=array")] == [
        "bioregio-stern/offer/mrna-process"]


def test_partners_resolved_across_nodes_by_id_ror_pic(sample):
    parts = rows(sample, "/catalogue/participations.json?project_id=genopole/project/cobioe&_shape=array&_sort=position")
    resolved = [(p["partner_name"], p["actor_id"], p["resolved_by"], p["partner_region"]) for p in parts]
    assert resolved == [
        ("Généthon", "genopole/actor/genethon", "id", "FR10"),
        ("CureVac SE", "bioregio-stern/actor/curevac", "id", "DE14"),
        ("Technical University of Denmark", "dlsc/actor/dtu", "ror", "DK01"),
        ("Novo Nordisk", "dlsc/actor/novo", "pic", "DK01"),
        ("Fundación Ejemplo de Biotecnología", None, None, None),
    ]
    assert parts[4]["partner_country"] == "ES"
    project = rows(sample, "/catalogue/projects/genopole~2Fproject~2Fcobioe.json?_shape=array")[0]
    assert (project["countries"], project["regions"], project["cross_border"]) == (4, 3, 1)
    assert project["total_budget_eur"] == 1234567.89 and project["coordinator_country"] == "FR"


def test_canned_queries_answer_the_users_questions(sample):
    def query(name, **params):
        qs = "&".join(f"{k}={v}" for k, v in params.items())
        return rows(sample, f"/catalogue/{name}.json?{qs}&_shape=array")

    producers = query("actors_by_stage_and_sector_in_region", region="DE", stage="production", sector="")
    assert [a["id"] for a in producers] == ["bioregio-stern/actor/curevac"]
    biomanufacturing_dk = query("actors_by_stage_and_sector_in_region", region="DK01", stage="", sector="biomanufacturing")
    assert {a["id"] for a in biomanufacturing_dk} == {"dlsc/actor/dtu", "dlsc/actor/novo"}

    strengths = query("region_strengths", region="DE14")
    sectors = {s["value"]: s["actors"] for s in strengths if s["dimension"] == "sector"}
    assert sectors == {"red-biotech": 2, "medtech": 1, "pharma": 1, "biomanufacturing": 1}
    red = next(s for s in strengths if s["value"] == "red-biotech")
    # 2 of 2 here vs 4 of 7 in Europe, but 2 actors with sector data are too few to rank a region
    assert (red["actors_with_data"], red["europe_actors"], red["europe_with_data"]) == (2, 4, 7)
    assert red["too_few"] == 1 and red["specialisation"] is None

    cross = query("cross_border_projects", country="")
    assert [(p["id"], p["partner_countries"], p["partner_regions"]) for p in cross] == [
        ("genopole/project/cobioe", "DE, DK, ES, FR", "DE14, DK01, FR10")]
    assert query("cross_border_projects", country="ES")[0]["id"] == "genopole/project/cobioe"
    assert query("cross_border_projects", country="SE") == []

    pairs = query("collaborations_between_regions", region="DE14", partner_region="DK")
    assert {(p["partner"], p["other_partner"]) for p in pairs} == {
        ("CureVac SE", "Technical University of Denmark"), ("CureVac SE", "Novo Nordisk")}
    assert {p["project_id"] for p in query("collaborations_between_regions", region="DE14", partner_region="DE14")} == {
        "bioregio-stern/project/local"}
    # empty matches anywhere: every ordered pair of partners of every project (5 * 4 + 2 * 1)
    assert len(query("collaborations_between_regions", region="", partner_region="")) == 22
    assert len(query("collaborations_between_regions", region="ES", partner_region="")) == 4

    offers = query("offers_for_technology", technology="mrna")
    assert [(o["id"], o["provider"]) for o in offers] == [("bioregio-stern/offer/mrna-process", "CureVac SE")]
    assert [o["id"] for o in query("offers_for_technology", technology="")] == [
        "genopole/offer/aav", "bioregio-stern/offer/mrna-process"]  # by title

    new = query("new_actors")
    assert new[0]["atom_id"] == "genopole/actor/univ-evry"  # Danish actors are stale, so left out
    assert {"atom_id", "atom_title", "atom_updated"} <= set(new[0])
    atom = sample["get"]("/catalogue/new_actors.atom")
    assert atom.status_code == 200 and "<title>Généthon</title>" in atom.text

    stale = query("stale_records")
    assert {(s["id"], s["health"], s["stale_since"]) for s in stale} == {
        ("dlsc/actor/dtu", "stale", STALE_SINCE), ("dlsc/actor/novo", "stale", STALE_SINCE)}

    health = {n["id"]: n for n in query("node_health")}
    assert health["dlsc"]["health"] == "stale" and health["dlsc"]["actors"] == 2
    assert health["bioregio-stern"]["actors"] == 3 and health["genopole"]["projects"] == 1


def test_row_page_shows_provenance_and_link_to_signed_record(sample):
    page = sample["get"]("/catalogue/actors/bioregio-stern~2Factor~2Fcurevac")
    assert page.status_code == 200
    assert 'href="https://bioregio-stern.example/records/bioregio-stern/actor/curevac"' in page.text
    assert "CC-BY-4.0" in page.text and "verified_at" in page.text
    assert "BioRegio STERN" in page.text  # node_id shown with the node's name


def test_html_in_names_is_escaped(sample):
    page = sample["get"]("/catalogue/actors?actor_type=sme")
    assert page.status_code == 200
    assert HTML_NAME not in page.text
    assert "&lt;script&gt;alert(" in page.text


def test_stale_flags_follow_the_node(sample, tmp_path):
    conn = sqlite3.connect(sample["db_path"])
    flags = dict(conn.execute("select id, stale from actors"))
    assert flags["dlsc/actor/dtu"] == 1 and flags["genopole/actor/genethon"] == 0
    # clearing works too (on a copy: the served file is immutable)
    copy = tmp_path / "copy.db"
    conn.execute("VACUUM INTO ?", (str(copy),))
    conn.close()
    with sqlite3.connect(copy) as c:
        catalogue.set_node_stale(c, "dlsc", None)
        assert c.execute("select count(*) from actors where stale = 1").fetchone()[0] == 0


def test_giant_values_are_refused(sample):
    response = sample["get"]("/catalogue.json?sql=select+length(randomblob(400000000))")
    assert response.status_code == 400
    assert "too big" in response.json()["error"]


def test_upsert_replaces_rows_and_delete_unresolves(sample, tmp_path):
    db = tmp_path / "c.db"
    conn = sqlite3.connect(db)
    conn.execute("VACUUM INTO ?", (str(tmp_path / "unused.db"),))
    src = sqlite3.connect(sample["db_path"])
    src.backup(conn)
    src.close()
    node = dict(zip(["id", "name", "base_url", "licence"], conn.execute(
        "select id, name, base_url, licence from nodes where id = 'bioregio-stern'").fetchone()))
    curevac = json.loads(sample["signed"]["bioregio-stern/actor/curevac"])
    updated = {**curevac, "version": 2, "sectors": ["medtech"], "names": [{"value": "CureVac N.V.", "preferred": True}]}
    catalogue.upsert_record(conn, updated, node=node, verified_at="2026-12-01T00:00:00Z")
    row = conn.execute("select name, version, first_seen from actors where id = ?", (curevac["id"],)).fetchone()
    assert row[0:2] == ("CureVac N.V.", 2) and row[2] < "2026-12-01"  # first_seen kept across versions
    assert [r[0] for r in conn.execute("select sector from actor_sectors where actor_id = ?", (curevac["id"],))] == ["medtech"]
    assert conn.execute("select count(*) from actors_fts where actors_fts match 'curevac'").fetchone()[0] == 1
    catalogue.delete_record(conn, curevac["id"])
    catalogue.finalise(conn)
    assert conn.execute("select count(*) from actors_fts where actors_fts match 'curevac'").fetchone()[0] == 0
    assert conn.execute(
        "select count(*) from participations where actor_id = ? or actor_ref = ? and resolved_by is not null",
        (curevac["id"], curevac["id"])).fetchone()[0] == 0
    catalogue.ensure_schema(conn)  # idempotent
    conn.close()


def test_records_feed_is_exact_signed_bytes_with_provenance(sample):
    response = sample["get"]("/-/biofed/records.jsonl.gz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/gzip"
    lines = gzip.decompress(response.content).decode("utf-8").splitlines()
    assert len(lines) == len(sample["signed"])
    for line in lines:
        entry = json.loads(line)
        record = entry["record"]
        signed = sample["signed"][record["id"]]
        assert line.startswith('{"record":' + signed + ",")  # verbatim, not re-serialised
        assert canonicalize(record).decode() == signed
        proofs.verify(record, sample["keys"][entry["node"]])
        assert entry["source"].endswith("/records/" + record["id"])
        assert entry["licence"] in ("CC-BY-4.0", "CC0-1.0") and entry["verifiedAt"]
    etag = response.headers["etag"]
    assert sample["get"]("/-/biofed/records.jsonl.gz", headers={"if-none-match": etag}).status_code == 304


def test_change_feed_pages_with_a_cursor(sample):
    entries, url, pages = [], "/-/biofed/changes?limit=4", 0
    while url:
        page = rows(sample, url)
        entries += page["entries"]
        url, pages = page["next"], pages + 1
    assert pages == 4 and [e["seq"] for e in entries] == list(range(1, 14))
    assert entries[-1]["op"] == "delete" and entries[-1]["id"] == DELETED and entries[-1]["record"] is None
    deleted_put = next(e for e in entries if e["id"] == DELETED and e["op"] == "put")
    # The put keeps the bytes of its version after the delete (the delete follows later in the feed).
    assert (deleted_put["record"]["id"], deleted_put["record"]["version"]) == (DELETED, 1)  # verified below
    raw = sample["get"]("/-/biofed/changes?after=0&limit=1").text
    first = entries[0]
    assert sample["signed"][first["id"]] in raw
    for entry in entries:
        if entry["record"]:
            proofs.verify(entry["record"], sample["keys"][entry["node"]])
    assert "latest" not in rows(sample, "/-/biofed/changes?limit=1")  # a full page: nothing in it grows
    assert rows(sample, "/-/biofed/changes?after=12")["latest"] == 13
    assert rows(sample, "/-/biofed/changes?after=13")["entries"] == []
    assert sample["get"]("/-/biofed/changes?limit=5000").status_code == 400
    assert sample["get"]("/-/biofed/changes?after=x").status_code == 400


def test_cors_gzip_and_robots(sample):
    response = sample["get"]("/catalogue/actors.json", headers={"accept-encoding": "gzip"})
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers.get("content-encoding") == "gzip"
    assert "Disallow" in sample["get"]("/robots.txt").text
    assert sample["get"]("/-/search?q=genethon").status_code == 200



def test_internal_tables_are_not_public(sample):
    """The harvester's bookkeeping is neither in the JSON table list nor browsable; SQL still reads it."""
    from biofed.aggregator import state

    conn = sqlite3.connect(sample["db_path"])
    every = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    internal = set(state.INTERNAL_TABLES) | {"record_versions", "registry_state", "sqlite_stat1"} | {
        t for t in every if t.endswith(("_fts_config", "_fts_data", "_fts_docsize", "_fts_idx"))}
    assert internal <= every
    listed = {t["name"] for t in rows(sample, "/catalogue.json")["tables"]}
    assert listed & internal == set()
    assert {"actors", "projects", "offers", "participations", "region_profiles", "nodes"} <= listed
    page = sample["get"]("/catalogue")
    for table in internal:
        assert f'/catalogue/{table}"' not in page.text, table
        assert sample["get"](f"/catalogue/{table}").status_code == 403, table
        assert sample["get"](f"/catalogue/{table}.json").status_code == 403, table
    assert rows(sample, "/catalogue.json?sql=select+count(*)+as+n+from+profile_counts&_shape=array")[0]["n"] > 0
    # full-text search still works through the tables
    assert rows(sample, "/catalogue/actors.json?_search=Tubingen&_shape=array")


def test_a_facet_that_is_already_a_default_is_computed_once(sample):
    """?_facet=country on the actors table (country is a default facet) gives one country facet, not two."""
    data = rows(sample, "/catalogue/actors.json?_facet=country&_facet=actor_type&_facet=node_id")
    names = set(data["facet_results"])
    assert {"country", "actor_type", "node_id"} <= names
    assert not any(name.endswith("_2") for name in names)
    countries = {item["value"]: item["count"] for item in data["facet_results"]["country"]["results"]}
    plain = rows(sample, "/catalogue/actors.json")
    assert countries == {item["value"]: item["count"] for item in plain["facet_results"]["country"]["results"]}
    # every other parameter survives the rewrite
    filtered = rows(sample, "/catalogue/actors.json?_facet=country&country=DE&_shape=objects")
    assert filtered["rows"] and all(row["country"] == "DE" for row in filtered["rows"])
