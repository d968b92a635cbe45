"""The territorial survey's figures, computed by hand on a tiny catalogue built the harvest's way.

The specialisation index is a location quotient over the organisations whose
dimension is known: (region's organisations in a sector / region's
organisations with any sector) / (Europe's organisations in it / Europe's
organisations with any sector). Organisations without sectors count in
neither share. In the fixture no two records describe one organisation
(organisations = records), except in the test where a second node publishes
one of them.
"""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from biofed.aggregator import catalogue, state
from biofed.aggregator.catalogue.finalise import MIN_ACTORS_WITH_DATA
from biofed.aggregator.serve import make_datasette

NODE = {"id": "n", "name": "Test cluster", "licence": "CC-BY-4.0", "base_url": "https://n.example"}
WHEN = "2026-11-20T09:00:00Z"

# region -> [(local id, sectors, stages)]
ACTORS = {
    "FR10": [("a1", ["red-biotech"], ["training"]), ("a2", ["red-biotech"], []),
             ("a3", ["red-biotech", "medtech"], []), ("a4", ["green-biotech"], []),
             ("a5", ["medtech"], []), ("a6", [], []), ("a7", [], [])],
    "DE14": [("b1", ["red-biotech"], ["training"]), ("b2", ["green-biotech"], []), ("b3", [], [])],
    "DK01": [("c1", [], [])],
}


OTHER_NODE = {"id": "m", "name": "Other cluster", "licence": "CC-BY-4.0", "base_url": "https://m.example"}
PIC = "999000001"  # a1's; the other node's record of the same organisation shares it


def build(db_path, *, twin=False):
    """The fixture; twin=True: the other node also publishes a1 (same PIC, its own name, same region)."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    state.ensure_schema(conn)
    catalogue.ensure_schema(conn)
    conn.execute("BEGIN")
    for node in (NODE, OTHER_NODE):
        conn.execute("INSERT INTO nodes (id, name, base_url, licence, status, health) VALUES (?, ?, ?, ?, 'active', 'ok')",
                     (node["id"], node["name"], node["base_url"], node["licence"]))
    for region, actors in ACTORS.items():
        for local, sectors, stages in actors:
            record = {"id": f"n/actor/{local}", "type": "Actor", "version": 1, "actorType": "sme",
                      "names": [{"value": f"Actor {local}", "preferred": True}], "country": region[:2],
                      "region": region, "sectors": sectors, "valueChainStages": stages}
            if local == "a1":
                record["identifiers"] = {"pic": PIC}
            catalogue.upsert_record(conn, record, node=NODE, verified_at=WHEN)
    if twin:
        catalogue.upsert_record(conn, {"id": "m/actor/actor-a1", "type": "Actor", "version": 1, "actorType": "sme",
                                       "names": [{"value": "ACTOR A1 SAS", "preferred": True}], "country": "FR",
                                       "region": "FR10", "sectors": ["red-biotech"], "valueChainStages": ["training"],
                                       "identifiers": {"pic": PIC}}, node=OTHER_NODE, verified_at=WHEN)
    catalogue.finalise(conn)
    conn.execute("COMMIT")
    return conn


def profile(conn, region, dimension, value):
    conn.row_factory = sqlite3.Row
    row = conn.execute("SELECT * FROM region_profiles WHERE region = ? AND dimension = ? AND value = ?",
                       (region, dimension, value)).fetchone()
    return dict(row) if row else None


def test_specialisation_is_a_location_quotient_over_actors_with_data(tmp_path):
    assert MIN_ACTORS_WITH_DATA == 5  # the figures below assume the documented default
    conn = build(tmp_path / "c.db")
    # Europe: 11 actors, 7 of them with sectors (a1-a5, b1, b2); red-biotech 4 (a1, a2, a3, b1),
    # medtech 2 (a3, a5), green-biotech 2 (a4, b2). FR10: 7 actors, 5 with sectors.
    red = profile(conn, "FR10", "sector", "red-biotech")
    assert (red["actors"], red["actors_with_data"], red["actors_in_region"]) == (3, 5, 7)
    assert (red["europe_actors"], red["europe_with_data"]) == (4, 7)
    assert red["specialisation"] == round((3 / 5) / (4 / 7), 2) == 1.05
    assert red["too_few"] == 0
    assert profile(conn, "FR10", "sector", "medtech")["specialisation"] == round((2 / 5) / (2 / 7), 2) == 1.4
    assert profile(conn, "FR10", "sector", "green-biotech")["specialisation"] == round((1 / 5) / (2 / 7), 2) == 0.7
    # DE14 has 2 actors with sectors: too few to rank, the counts are still there.
    de = profile(conn, "DE14", "sector", "red-biotech")
    assert (de["actors"], de["actors_with_data"], de["actors_in_region"], de["too_few"]) == (1, 2, 3, 1)
    assert de["specialisation"] is None
    # Stages: only a1 and b1 have one; every region is too few.
    stage = profile(conn, "FR10", "stage", "training")
    assert (stage["actors"], stage["actors_with_data"], stage["europe_actors"], stage["europe_with_data"],
            stage["too_few"], stage["specialisation"]) == (1, 1, 2, 2, 1, None)
    # A region whose actors have no sectors has no profile rows at all.
    assert conn.execute("SELECT count(*) FROM region_profiles WHERE region = 'DK01'").fetchone()[0] == 0
    # The minimum is a setting: at 2, DE14 is ranked -- (1/2) / (4/7).
    catalogue.finalise(conn, min_actors=2)
    assert profile(conn, "DE14", "sector", "red-biotech")["specialisation"] == round((1 / 2) / (4 / 7), 2) == 0.88


def test_an_organisation_two_nodes_publish_counts_once(tmp_path):
    # a1 is published by both nodes (same PIC): 12 records, 11 organisations, the same figures as above.
    conn = build(tmp_path / "c.db", twin=True)
    assert conn.execute("SELECT count(*) FROM actors").fetchone()[0] == 12
    assert conn.execute("SELECT count(*) FROM organisations").fetchone()[0] == 11
    red = profile(conn, "FR10", "sector", "red-biotech")
    assert (red["actors"], red["actors_with_data"], red["actors_in_region"], red["records_in_region"]) == (3, 5, 7, 8)
    assert (red["europe_actors"], red["europe_with_data"]) == (4, 7)
    assert red["specialisation"] == round((3 / 5) / (4 / 7), 2) == 1.05  # counting records: (4/6) / (5/8) = 1.07
    stage = profile(conn, "FR10", "stage", "training")
    assert (stage["actors"], stage["actors_with_data"], stage["europe_actors"]) == (1, 1, 2)
    # When the other node's record is withdrawn, the region has as many records as organisations again.
    conn.execute("BEGIN")
    catalogue.delete_records(conn, ["m/actor/actor-a1"])
    catalogue.finalise(conn)
    conn.execute("COMMIT")
    red = profile(conn, "FR10", "sector", "red-biotech")
    assert (red["actors"], red["actors_in_region"], red["records_in_region"], red["specialisation"]) == (3, 7, 7, 1.05)


def test_region_strengths_carries_counts_and_coverage(tmp_path):
    db_path = tmp_path / "c.db"
    build(db_path).close()
    ds = make_datasette(db_path)
    loop = asyncio.new_event_loop()
    try:
        response = loop.run_until_complete(ds.client.get("/catalogue/region_strengths.json?region=&_shape=array"))
    finally:
        loop.close()
    assert response.status_code == 200, response.text
    rows = response.json()
    red = next(r for r in rows if (r["region"], r["value"]) == ("FR10", "red-biotech"))
    assert red["basis"] == "based on 5 of 7 organisations with sector data"
    assert red["specialisation"] == 1.05
    de = next(r for r in rows if (r["region"], r["value"]) == ("DE14", "red-biotech"))
    assert de["specialisation"] is None and de["too_few"] == 1
    assert de["basis"] == "based on 2 of 3 organisations with sector data (too few to compare)"
    # Within a region and dimension, ranked regions come first by index; too-few rows are not ranked.
    fr_sectors = [r["value"] for r in rows if r["region"] == "FR10" and r["dimension"] == "sector"]
    assert fr_sectors == ["medtech", "red-biotech", "green-biotech"]


def test_an_older_region_profiles_table_is_rebuilt(tmp_path):
    db_path = tmp_path / "old.db"
    conn = build(db_path)
    # A catalogue written before the coverage columns: old table, incremental mark set, no coverage counts.
    conn.execute("DROP TABLE region_profiles")
    conn.execute("CREATE TABLE region_profiles (region TEXT NOT NULL, region_name TEXT, dimension TEXT NOT NULL, "
                 "value TEXT NOT NULL, actors INTEGER NOT NULL, actors_in_region INTEGER NOT NULL, specialisation REAL, "
                 "PRIMARY KEY (region, dimension, value))")
    conn.execute("DELETE FROM profile_counts WHERE dimension != '' AND value = ''")
    catalogue.ensure_schema(conn)
    catalogue.finalise(conn)
    assert profile(conn, "FR10", "sector", "red-biotech")["specialisation"] == 1.05
