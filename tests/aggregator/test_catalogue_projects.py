"""What the catalogue keeps and shows of what a source leaves out or a rule derived: projects with no title,
partners on no node, sectors and stages derived from evidence."""

from __future__ import annotations

import asyncio
import sqlite3

from biofed.aggregator import catalogue, state
from biofed.aggregator.serve import make_datasette

NODE = {"id": "genopole", "name": "Genopole", "country": "FR", "region": "FR10",
        "base_url": "https://genopole.example", "licence": "CC0-1.0"}
WHEN = "2026-11-20T09:00:00Z"
ACTOR = {"id": "genopole/actor/genethon", "type": "Actor", "version": 1, "dateModified": WHEN,
         "names": [{"value": "Généthon", "preferred": True}], "actorType": "research-institute",
         "country": "FR", "region": "FR10"}
UNTITLED = {"id": "genopole/project/h2020-633780", "type": "Project", "version": 1, "dateModified": WHEN,
            "acronym": "GENTHER", "programme": "H2020",
            "partners": [{"actor": "genopole/actor/genethon", "name": "Généthon", "country": "FR", "role": "coordinator"},
                         {"name": "Politechnika Łódzka", "country": "PL", "region": "PL71", "role": "participant"},
                         {"name": "Somewhere Labs", "country": "ES", "role": "participant"}]}
TITLED = {**UNTITLED, "id": "genopole/project/titled", "title": "Gene therapy for rare diseases", "partners": []}


def build(db_path, records):
    conn = sqlite3.connect(db_path, isolation_level=None)
    state.ensure_schema(conn)
    catalogue.ensure_schema(conn)
    conn.execute("BEGIN")
    conn.execute("INSERT INTO nodes (id, name, country, region, base_url, licence, status, health) "
                 "VALUES (?, ?, ?, ?, ?, ?, 'active', 'ok')", tuple(NODE[k] for k in
                                                                    ("id", "name", "country", "region", "base_url", "licence")))
    for record in records:
        catalogue.upsert_record(conn, record, node=NODE, verified_at=WHEN)
    catalogue.finalise(conn)
    conn.execute("COMMIT")
    return conn


def test_an_untitled_project_is_named_by_its_acronym_and_says_so(tmp_path):
    conn = build(tmp_path / "c.db", [ACTOR, UNTITLED, TITLED])
    rows = dict((row[0], row[1:]) for row in conn.execute("SELECT id, title, acronym, title_stated FROM projects"))
    assert rows == {UNTITLED["id"]: ("GENTHER", "GENTHER", 0),
                    TITLED["id"]: ("Gene therapy for rare diseases", "GENTHER", 1)}
    conn.close()
    ds = make_datasette(tmp_path / "c.db")
    page = asyncio.run(ds.client.get("/" + UNTITLED["id"])).text
    assert "<h1>GENTHER (no title in the source)</h1>" in page
    assert "<h1>GENTHER: Gene therapy for rare diseases</h1>" in asyncio.run(ds.client.get("/" + TITLED["id"])).text


def test_a_partner_on_no_node_keeps_the_region_its_project_states(tmp_path):
    conn = build(tmp_path / "c.db", [ACTOR, UNTITLED])
    partners = conn.execute("SELECT partner_name, actor_id, stated_region, partner_region FROM participations "
                            "ORDER BY position").fetchall()
    assert partners == [("Généthon", "genopole/actor/genethon", None, "FR10"),  # the actor's region
                        ("Politechnika Łódzka", None, "PL71", "PL71"),       # stated, no actor
                        ("Somewhere Labs", None, None, None)]
    assert conn.execute("SELECT regions FROM projects WHERE id = ?", (UNTITLED["id"],)).fetchone() == (2,)
    # The actor goes: its partner falls back to what the project states (here nothing), incrementally.
    conn.execute("BEGIN")
    catalogue.delete_record(conn, ACTOR["id"])
    catalogue.finalise(conn)
    conn.execute("COMMIT")
    assert conn.execute("SELECT actor_id, partner_region FROM participations WHERE position = 1").fetchone() == (None, None)
    conn.close()


def test_an_older_catalogue_gets_the_new_columns(tmp_path):
    conn = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    conn.execute("CREATE TABLE projects (id TEXT PRIMARY KEY, title TEXT NOT NULL)")
    conn.execute("CREATE TABLE participations (project_id TEXT NOT NULL, position INTEGER NOT NULL, "
                 "PRIMARY KEY (project_id, position))")
    tables = {table for table, _, _ in catalogue.tables.NEW_COLUMNS}
    for table in tables - {"projects", "participations"}:
        conn.execute(f"CREATE TABLE {table} (id TEXT)")
    conn.execute("INSERT INTO projects VALUES ('n/project/p', 'A title')")
    catalogue.tables._add_new_columns(conn)
    for table, column, _ in catalogue.tables.NEW_COLUMNS:
        assert column in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}, (table, column)
    # a project written before says nothing about its title: it keeps being shown as titled
    assert conn.execute("SELECT title_stated FROM projects").fetchone() == (1,)
    catalogue.tables._add_new_columns(conn)  # idempotent


DERIVED = {**ACTOR, "id": "genopole/actor/derived", "sectors": ["diagnostics", "digital-health"],
           "valueChainStages": ["research-development"],
           "sources": [{"name": "CORDIS", "derived": {"fields": ["sectors", "valueChainStages"],
                                                     "evidence": "CORDIS projects", "count": 4}}]}
DECLARED = {**ACTOR, "id": "genopole/actor/declared", "sectors": ["diagnostics"],
            "sources": [{"name": "Member sheet"}]}


def test_sectors_and_stages_say_whether_they_were_declared_or_derived(tmp_path):
    conn = build(tmp_path / "c.db", [ACTOR, DERIVED, DECLARED])
    rows = {row[0]: row[1:] for row in conn.execute("SELECT id, sectors_basis, stages_basis, derivation FROM actors")}
    assert rows == {ACTOR["id"]: (None, None, None),
                    DERIVED["id"]: ("derived", "derived", "sectors and value-chain stages derived from 4 CORDIS projects"),
                    DECLARED["id"]: ("declared", None, None)}
    conn.close()
    ds = make_datasette(tmp_path / "c.db")
    page = asyncio.run(ds.client.get("/" + DERIVED["id"])).text
    assert "sectors and value-chain stages derived from 4 CORDIS projects" in page and "(derived)" in page
    assert "(derived)" not in asyncio.run(ds.client.get("/" + DECLARED["id"])).text
    declared = asyncio.run(ds.client.get("/catalogue/actors.json?sectors_basis=declared&_shape=array")).json()
    assert [row["id"] for row in declared] == [DECLARED["id"]]


def test_the_front_door_counts_organisations_not_records(tmp_path):
    """Two records with one PIC (e.g. a CORDIS copy and a member-sheet entry) are one organisation."""
    first = {**ACTOR, "identifiers": {"pic": "999000042"}}
    copy = {**ACTOR, "id": "genopole/actor/genethon-copy", "identifiers": {"pic": "999000042"}}
    other = {**ACTOR, "id": "genopole/actor/other", "country": "BE", "region": "BE10",
             "names": [{"value": "Other Lab", "preferred": True}]}
    build(tmp_path / "c.db", [first, copy, other]).close()
    from biofed.aggregator.catalogue import build_inspect_file
    build_inspect_file(tmp_path / "c.db")
    ds = make_datasette(tmp_path / "c.db")
    import re
    counts = dict(re.findall(r'data-count="(\w+)">([^<]*)<', asyncio.run(ds.client.get("/")).text))
    assert (counts["organisations"], counts["actors"], counts["countries"]) == ("2", "3", "2")
