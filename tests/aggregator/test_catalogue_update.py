"""Updating a record in place gives the same catalogue as inserting its new version, and writes only what changed."""

from __future__ import annotations

import sqlite3

import pytest

from biofed.aggregator import catalogue

NODE = {"id": "n", "name": "N", "licence": "CC-BY-4.0", "base_url": "https://n.example"}
PUBLIC = {
    "actors": "id", "projects": "id", "offers": "id", "participations": "project_id, position",
    "actor_sectors": "actor_id, sector", "actor_value_chain": "actor_id, stage",
    "actor_technologies": "actor_id, technology", "offer_technologies": "offer_id, technology",
    "profile_counts": "region, dimension, value",
}


def _actor(i: int, version: int, **changes) -> dict:
    record = {"id": f"n/actor/{i}", "type": "Actor", "version": version,
              "names": [{"value": f"Hefe Labor {i}", "preferred": True, "lang": "de"}],
              "actorType": "sme", "country": "DE", "region": "DE1",
              "sectors": ["medtech", "pharma"], "valueChainStages": ["production"],
              "technologies": ["CRISPR", "mRNA"], "description": {"de": f"Zellkultur {i}"},
              "identifiers": {"ror": f"https://ror.org/0abcde{i:03d}"}}
    record.update(changes)
    return record


def _project(i: int, version: int, partners: list[dict]) -> dict:
    return {"id": f"n/project/{i}", "type": "Project", "version": version, "title": f"Projekt {i}",
            "partners": partners}


def _offer(i: int, version: int, technologies: list[str]) -> dict:
    return {"id": f"n/offer/{i}", "type": "Offer", "version": version, "title": f"Angebot {i}",
            "offerType": "service", "provider": "n/actor/0", "technologies": technologies}


PARTNERS = [{"name": "A", "country": "DE", "role": "coordinator", "actor": "n/actor/0"},
            {"name": "B", "country": "FR", "role": "partner", "identifiers": {"ror": "https://ror.org/0abcde001"}}]
FIRST = [_actor(i, 1) for i in range(6)] + [_project(0, 1, PARTNERS), _project(1, 1, PARTNERS), _offer(0, 1, ["CRISPR"])]
# Every kind of change an update can bring, and records that do not change at all.
SECOND = [
    _actor(0, 2, names=[{"value": "Hefe Labor Null", "preferred": True, "lang": "de"}]),  # a searchable column
    _actor(1, 2, sectors=["medtech", "diagnostics"]),  # a facet
    _actor(2, 2, region="DE2"),  # denormalised into the junction tables and the region counts
    _actor(3, 2, technologies=["crispr", "CRISPR", "organ-on-chip"]),  # case variants under COLLATE NOCASE
    _actor(4, 2),  # only the version
    _project(0, 2, [*PARTNERS, {"name": "C", "country": "DK", "role": "partner"}]),
    _project(1, 2, PARTNERS),
    _offer(0, 2, ["CRISPR", "microfluidics"]),
    _actor(9, 1),  # new
]


def _connect() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    catalogue.ensure_schema(conn)
    return conn


def _upsert(conn, records, when):
    conn.execute("BEGIN")
    catalogue.upsert_flat(conn, [catalogue.flatten(r) for r in records], node=NODE, verified_at=when)
    conn.execute("COMMIT")


def _content(conn) -> dict:
    out = {}
    for table, order in PUBLIC.items():
        rows = conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
        columns = [c[0] for c in conn.execute(f"SELECT * FROM {table} LIMIT 0").description]
        out[table] = [{k: v for k, v in zip(columns, row) if k != "first_seen"} for row in rows]
    return out


def _search(conn, table: str, term: str) -> list[str]:
    return [r[0] for r in conn.execute(
        f"SELECT t.id FROM {table} t JOIN {table}_fts f ON f.rowid = t.rowid WHERE {table}_fts MATCH ? ORDER BY t.id", (term,))]


@pytest.fixture
def updated():
    conn = _connect()
    _upsert(conn, FIRST, "2026-01-01T00:00:00Z")
    _upsert(conn, SECOND, "2026-02-01T00:00:00Z")
    return conn


@pytest.mark.parametrize("bulk", [False, True], ids=["staged", "bulk-load"])
def test_an_update_in_place_equals_inserting_the_new_version(bulk):
    updated = _connect()
    if bulk:  # no indexes or full-text triggers: rows are written row by row, the index is built at the end
        catalogue.bulk_begin(updated)
    _upsert(updated, FIRST, "2026-01-01T00:00:00Z")
    _upsert(updated, SECOND, "2026-02-01T00:00:00Z")
    if bulk:
        catalogue.bulk_finish(updated)
    fresh = _connect()
    latest = {r["id"]: r for r in FIRST + SECOND}
    _upsert(fresh, list(latest.values()), "2026-02-01T00:00:00Z")
    # verified_at differs for the records the second harvest did not carry; everything else is equal
    # once finalised (a bulk load leaves the region counts to its full finalise).
    for conn in (updated, fresh):
        catalogue.finalise(conn)
        conn.execute("UPDATE actors SET verified_at = NULL WHERE version = 1 AND id != 'n/actor/9'")
        conn.execute("UPDATE projects SET verified_at = NULL WHERE version = 1")
    assert _content(updated) == _content(fresh)
    for table in ("actors", "projects", "offers"):
        updated.execute(f"INSERT INTO {table}_fts ({table}_fts) VALUES ('integrity-check')")  # index = content


def test_first_seen_is_kept_and_search_follows_the_new_text(updated):
    first_seen = dict(updated.execute("SELECT id, first_seen FROM actors"))
    assert first_seen["n/actor/0"] == "2026-01-01T00:00:00Z" and first_seen["n/actor/9"] == "2026-02-01T00:00:00Z"
    assert _search(updated, "actors", "null") == ["n/actor/0"]
    assert "n/actor/0" not in _search(updated, "actors", '"labor 0"')
    assert _search(updated, "actors", "organ") == ["n/actor/3"]
    assert updated.execute("SELECT technology FROM actor_technologies WHERE actor_id = 'n/actor/3' ORDER BY 1"
                           ).fetchall() == [("crispr",), ("organ-on-chip",)]


WATCHED = {"actors": "{row}.id", "actor_sectors": "{row}.actor_id || ' ' || {row}.sector",
           "actor_technologies": "{row}.actor_id || ' ' || {row}.technology",
           "participations": "{row}.project_id || ' ' || {row}.position"}


def _watch(conn) -> None:
    """Log every row written to the watched tables (temporary triggers, this connection only)."""
    conn.execute("CREATE TEMP TABLE writes (tbl, op, key)")
    for table, key in WATCHED.items():
        for op, row in (("INSERT", "new"), ("DELETE", "old"), ("UPDATE", "new")):
            conn.execute(f"CREATE TEMP TRIGGER watch_{table}_{op} AFTER {op} ON main.{table} BEGIN"
                         f" INSERT INTO writes VALUES ('{table}', '{op}', {key.format(row=row)}); END")


def _writes(conn) -> set[tuple]:
    return set(conn.execute("SELECT tbl, op, key FROM temp.writes"))


def test_only_changed_rows_are_rewritten():
    conn = _connect()
    _upsert(conn, FIRST, "2026-01-01T00:00:00Z")
    _watch(conn)
    _upsert(conn, SECOND, "2026-02-01T00:00:00Z")
    writes = _writes(conn)
    # Held records are updated in place, never deleted and inserted again; the new one is inserted.
    assert {key for tbl, op, key in writes if tbl == "actors"} == {f"n/actor/{i}" for i in (0, 1, 2, 3, 4, 9)}
    assert ("actors", "INSERT", "n/actor/9") in writes
    assert not any(tbl == "actors" and op == "DELETE" for tbl, op, _ in writes)
    # Junction rows are rewritten only for the records whose facets changed.
    assert {key.split()[0] for tbl, _, key in writes if tbl == "actor_sectors"} == {"n/actor/1", "n/actor/2", "n/actor/9"}
    assert ("actor_sectors", "DELETE", "n/actor/1 pharma") in writes
    assert ("actor_sectors", "INSERT", "n/actor/1 diagnostics") in writes
    assert {key.split()[0] for tbl, _, key in writes if tbl == "actor_technologies"} == {"n/actor/3", "n/actor/9"}
    assert ("actor_technologies", "INSERT", "n/actor/3 crispr") in writes  # the first spelling wins
    assert {key.split()[0] for tbl, _, key in writes if tbl == "participations"} == {"n/project/0"}
    # A record that did not change at all writes nothing but its finalise mark.
    catalogue.finalise(conn)
    conn.execute("DELETE FROM temp.writes")
    changes = conn.total_changes
    _upsert(conn, [_actor(5, 1)], "2026-01-01T00:00:00Z")
    assert _writes(conn) == set()
    assert conn.total_changes - changes == 1  # its finalise_touched row


def test_a_record_that_changes_type_moves_table(updated):
    _upsert(updated, [{**_offer(7, 3, ["CRISPR"]), "id": "n/actor/4"}], "2026-03-01T00:00:00Z")
    assert updated.execute("SELECT count(*) FROM actors WHERE id = 'n/actor/4'").fetchone() == (0,)
    assert updated.execute("SELECT count(*) FROM actor_sectors WHERE actor_id = 'n/actor/4'").fetchone() == (0,)
    assert updated.execute("SELECT title FROM offers WHERE id = 'n/actor/4'").fetchone() == ("Angebot 7",)
    updated.execute("INSERT INTO actors_fts (actors_fts) VALUES ('integrity-check')")


def test_an_older_catalogue_gets_the_current_full_text_triggers():
    conn = _connect()
    conn.execute("DROP TRIGGER actors_au")
    conn.execute("CREATE TRIGGER actors_au AFTER UPDATE ON actors BEGIN SELECT 1; END")
    catalogue.ensure_schema(conn)
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'actors_au'").fetchone()[0]
    assert "AFTER UPDATE OF [name]" in sql
    version = conn.execute("PRAGMA schema_version").fetchone()
    catalogue.ensure_schema(conn)  # nothing to change: the schema is not touched
    assert conn.execute("PRAGMA schema_version").fetchone() == version
