"""The catalogue's tables: definitions, schema creation (and migration of older catalogues), bulk mode.

ensure_schema creates (idempotently) the public tables, their indexes, the full-text
tables and triggers and the regions; a first harvest into empty tables may run as
a bulk load: bulk_begin drops the secondary indexes and FTS triggers, bulk_finish
builds them once at the end.
"""

from __future__ import annotations

import os
import re
import sqlite3
from typing import Iterable

from biofed.aggregator.catalogue import organisations
from biofed.aggregator.catalogue.regions import _regions

# The full-text tables use sqlite-utils' layout (external content + triggers,
# as `enable_fts(create_triggers=True)` makes them) so `sqlite-utils
# rebuild-fts` and Datasette's `_search` work on them. The SQL is written out
# here because sqlite-utils runs it with executescript(), which would commit
# the aggregator's open transaction.
FTS_COLUMNS = {
    "actors": ["name", "other_names", "acronym", "description", "technologies", "services", "city"],
    "projects": ["title", "acronym", "description", "topics"],
    "offers": ["title", "description", "technologies"],
}
FTS_TOKENIZE = "unicode61 remove_diacritics 2"
FTS_HASH_SIZE = 4 * 2**20  # bytes of pending terms FTS5 holds before writing a segment (its default: 1 MB)

PROVENANCE = """
    node_id TEXT REFERENCES nodes(id),
    licence TEXT,
    attribution TEXT,
    version INTEGER,
    date_modified TEXT,
    first_seen TEXT,
    verified_at TEXT,
    stale INTEGER NOT NULL DEFAULT 0,
    stale_since TEXT,
    record_url TEXT"""

TABLES = f"""
CREATE TABLE IF NOT EXISTS regions (
    code TEXT PRIMARY KEY,
    name TEXT,
    level INTEGER,
    country TEXT,
    latitude REAL,
    longitude REAL
);
CREATE TABLE IF NOT EXISTS actors (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    other_names TEXT,
    acronym TEXT,
    actor_type TEXT,
    country TEXT,
    region TEXT REFERENCES regions(code),
    region_name TEXT,
    city TEXT,
    latitude REAL,
    longitude REAL,
    geo_precision TEXT,
    website TEXT,
    email TEXT,
    description TEXT,
    sectors TEXT,
    value_chain_stages TEXT,
    technologies TEXT,
    services TEXT,
    ror TEXT,
    pic TEXT,
    wikidata TEXT,
    size_class TEXT,
    founding_year INTEGER,
    status TEXT,
    sectors_basis TEXT,
    stages_basis TEXT,
    derivation TEXT,{PROVENANCE}
);
CREATE TABLE IF NOT EXISTS actor_sectors (
    actor_id TEXT NOT NULL REFERENCES actors(id),
    sector TEXT NOT NULL,
    country TEXT,
    region TEXT,
    actor_type TEXT,
    PRIMARY KEY (actor_id, sector)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS actor_value_chain (
    actor_id TEXT NOT NULL REFERENCES actors(id),
    stage TEXT NOT NULL,
    country TEXT,
    region TEXT,
    actor_type TEXT,
    PRIMARY KEY (actor_id, stage)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS actor_technologies (
    actor_id TEXT NOT NULL REFERENCES actors(id),
    technology TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (actor_id, technology)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS projects (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    acronym TEXT,
    description TEXT,
    programme TEXT,
    funding_scheme TEXT,
    call TEXT,
    grant_id TEXT,
    start_date TEXT,
    end_date TEXT,
    status TEXT,
    total_budget_eur REAL,
    eu_contribution_eur REAL,
    topics TEXT,
    coordinator_name TEXT,
    coordinator_country TEXT,
    partners INTEGER,
    countries INTEGER,
    regions INTEGER,
    cross_border INTEGER,
    title_stated INTEGER NOT NULL DEFAULT 1,{PROVENANCE}
);
CREATE TABLE IF NOT EXISTS participations (
    project_id TEXT NOT NULL REFERENCES projects(id),
    position INTEGER NOT NULL,
    actor_id TEXT REFERENCES actors(id),
    actor_ref TEXT,
    partner_name TEXT,
    partner_country TEXT,
    partner_region TEXT,
    role TEXT,
    contribution_eur REAL,
    ror TEXT,
    pic TEXT,
    resolved_by TEXT,
    stated_region TEXT,
    PRIMARY KEY (project_id, position)
);
CREATE TABLE IF NOT EXISTS offers (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    offer_type TEXT,
    provider_id TEXT REFERENCES actors(id),
    description TEXT,
    technologies TEXT,
    sectors TEXT,
    value_chain_stages TEXT,
    conditions TEXT,
    website TEXT,
    email TEXT,
    country TEXT,
    region TEXT,
    valid_until TEXT,{PROVENANCE}
);
-- The territorial survey (finalise.REGION_PROFILES): every index with the counts it is computed from,
-- counted as organisations (`actors` and its kin count organisations; records_in_region, records).
CREATE TABLE IF NOT EXISTS region_profiles (
    region TEXT NOT NULL REFERENCES regions(code),
    region_name TEXT,
    dimension TEXT NOT NULL,
    value TEXT NOT NULL,
    actors INTEGER NOT NULL,
    actors_in_region INTEGER NOT NULL,
    actors_with_data INTEGER NOT NULL,
    europe_actors INTEGER NOT NULL,
    europe_with_data INTEGER NOT NULL,
    specialisation REAL,
    too_few INTEGER NOT NULL DEFAULT 0,
    records_in_region INTEGER,
    PRIMARY KEY (region, dimension, value)
);
-- Cross-border collaboration (finalise.REGION_LINKS): for a region, the places in other countries
-- (a NUTS region, or a country when the partner's region is not known) it shares projects with.
CREATE TABLE IF NOT EXISTS region_links (
    region TEXT NOT NULL,
    partner_place TEXT NOT NULL,
    partner_region TEXT,
    partner_country TEXT NOT NULL,
    projects INTEGER NOT NULL,
    PRIMARY KEY (region, partner_place)
) WITHOUT ROWID;
-- Actors per (region, sector|stage) and per region ('' = no region; dimension '' = all actors;
-- value '' = actors with at least one value in that dimension),
-- kept up to date by every upsert/delete, so finalise rebuilds region_profiles from a table the
-- size of regions x values instead of scanning every actor.
CREATE TABLE IF NOT EXISTS profile_counts (
    region TEXT NOT NULL,
    dimension TEXT NOT NULL,
    value TEXT NOT NULL,
    actors INTEGER NOT NULL,
    PRIMARY KEY (region, dimension, value)
) WITHOUT ROWID;
-- Record (and project) ids changed since the last finalise: it redoes partner resolution only for
-- the projects they can affect. Written in the caller's transaction, so it survives a crash.
CREATE TABLE IF NOT EXISTS finalise_touched (
    id TEXT PRIMARY KEY
) WITHOUT ROWID;
-- 'incremental' = 1: profile_counts are complete and the last finalise left a fixed point, so the
-- next finalise may be incremental; absent (a new or older catalogue): finalise recomputes everything.
CREATE TABLE IF NOT EXISTS catalogue_state (
    name TEXT PRIMARY KEY,
    value INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS offer_technologies (
    offer_id TEXT NOT NULL REFERENCES offers(id),
    technology TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (offer_id, technology)
) WITHOUT ROWID;
"""

INDEXES = """
-- Table pages. Datasette's facet SQL is `select col, count(*) from (select ... from t where <filters>)
-- group by col`: each facet must be answerable from a covering index, and for a country page from
-- that country's range of a (country, col) index. A filtered page also runs
-- `select ... where country = ? order by id limit 51`: (country, id) returns the first page without
-- sorting the whole country (256 ms -> 0.2 ms for DE at 1M actors). See docs/benchmarks.md#catalogue.
CREATE INDEX IF NOT EXISTS idx_actors_country_type ON actors(country, actor_type);
CREATE INDEX IF NOT EXISTS idx_actors_country_id ON actors(country, id);
CREATE INDEX IF NOT EXISTS idx_actors_country_node ON actors(country, node_id);
CREATE INDEX IF NOT EXISTS idx_actors_country_region ON actors(country, region);
CREATE INDEX IF NOT EXISTS idx_actors_region_type ON actors(region, actor_type);
CREATE INDEX IF NOT EXISTS idx_actors_name ON actors(name);
CREATE INDEX IF NOT EXISTS idx_actors_actor_type ON actors(actor_type);
CREATE INDEX IF NOT EXISTS idx_actors_node ON actors(node_id);
CREATE INDEX IF NOT EXISTS idx_actors_ror ON actors(ror) WHERE ror IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_actors_pic ON actors(pic) WHERE pic IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_actors_first_seen ON actors(first_seen);
CREATE INDEX IF NOT EXISTS idx_actors_stale ON actors(stale) WHERE stale = 1;
CREATE INDEX IF NOT EXISTS idx_actor_sectors_sector ON actor_sectors(sector, actor_id);
-- A junction table's country page: (country, <value>, actor_type) answers the value, type and
-- country facets from the index, (country, actor_id, <value>) its first page in primary-key order.
DROP INDEX IF EXISTS idx_actor_sectors_country;
CREATE INDEX IF NOT EXISTS idx_actor_sectors_country_facets ON actor_sectors(country, sector, actor_type);
CREATE INDEX IF NOT EXISTS idx_actor_sectors_country_page ON actor_sectors(country, actor_id, sector);
CREATE INDEX IF NOT EXISTS idx_actor_sectors_region ON actor_sectors(region, sector);
CREATE INDEX IF NOT EXISTS idx_actor_value_chain_stage ON actor_value_chain(stage, actor_id);
DROP INDEX IF EXISTS idx_actor_value_chain_country;
CREATE INDEX IF NOT EXISTS idx_actor_value_chain_country_facets ON actor_value_chain(country, stage, actor_type);
CREATE INDEX IF NOT EXISTS idx_actor_value_chain_country_page ON actor_value_chain(country, actor_id, stage);
CREATE INDEX IF NOT EXISTS idx_actor_value_chain_region ON actor_value_chain(region, stage);
CREATE INDEX IF NOT EXISTS idx_actor_technologies_technology ON actor_technologies(technology, actor_id);
CREATE INDEX IF NOT EXISTS idx_projects_programme ON projects(programme);
CREATE INDEX IF NOT EXISTS idx_projects_cross_border ON projects(cross_border, countries);
CREATE INDEX IF NOT EXISTS idx_projects_node ON projects(node_id);
CREATE INDEX IF NOT EXISTS idx_participations_actor ON participations(actor_id);
-- An incremental finalise finds the participations a changed actor can resolve (not facets).
CREATE INDEX IF NOT EXISTS idx_participations_actor_ref ON participations(actor_ref) WHERE actor_ref IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_participations_ror ON participations(ror) WHERE ror IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_participations_pic ON participations(pic) WHERE pic IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_participations_region ON participations(partner_region, project_id);
CREATE INDEX IF NOT EXISTS idx_participations_country ON participations(partner_country, project_id);
CREATE INDEX IF NOT EXISTS idx_offers_provider ON offers(provider_id);
CREATE INDEX IF NOT EXISTS idx_offers_country ON offers(country, offer_type);
CREATE INDEX IF NOT EXISTS idx_offers_node ON offers(node_id);
CREATE INDEX IF NOT EXISTS idx_offer_technologies_technology ON offer_technologies(technology, offer_id);
"""


def _fts_sql(table: str, columns: list[str], *, table_part: bool = True, triggers: bool = True) -> str:
    cols = ", ".join(f"[{c}]" for c in columns)
    new = ", ".join(f"new.[{c}]" for c in columns)
    old = ", ".join(f"old.[{c}]" for c in columns)
    fts = f"{table}_fts"
    sql = ""
    if table_part:
        sql += f"""
CREATE VIRTUAL TABLE IF NOT EXISTS [{fts}] USING FTS5 ({cols}, tokenize='{FTS_TOKENIZE}', content=[{table}]);
"""
    if triggers:
        sql += f"""
CREATE TRIGGER IF NOT EXISTS [{table}_ai] AFTER INSERT ON [{table}] BEGIN
  INSERT INTO [{fts}] (rowid, {cols}) VALUES (new.rowid, {new});
END;
CREATE TRIGGER IF NOT EXISTS [{table}_ad] AFTER DELETE ON [{table}] BEGIN
  INSERT INTO [{fts}] ([{fts}], rowid, {cols}) VALUES('delete', old.rowid, {old});
END;
CREATE TRIGGER IF NOT EXISTS [{table}_au] AFTER UPDATE OF {cols} ON [{table}] BEGIN
  INSERT INTO [{fts}] ([{fts}], rowid, {cols}) VALUES('delete', old.rowid, {old});
  INSERT INTO [{fts}] (rowid, {cols}) VALUES (new.rowid, {new});
END;
"""
    return sql


def _statements(script: str) -> Iterable[str]:
    # complete_statement() knows a trigger body ends at END;, not at its inner semicolons.
    buffer = ""
    for part in script.split(";"):
        buffer += part + ";"
        if not sqlite3.complete_statement(buffer):
            continue
        if buffer.strip(" \n;"):
            yield buffer.strip()
        buffer = ""


_TRIGGER = re.compile(r"CREATE TRIGGER IF NOT EXISTS \[(\w+)\]")


def _replace_changed_trigger(conn: sqlite3.Connection, statement: str) -> None:
    """Drop a trigger whose stored SQL differs from this CREATE TRIGGER IF NOT EXISTS, so that it is recreated.

    A catalogue written by an older version then gets the current trigger (e.g.
    the full-text update trigger that fires only when an indexed column changes).
    """
    match = _TRIGGER.match(statement)
    if not match:
        return
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", (match[1],)).fetchone()
    if row and row[0] != statement.replace("IF NOT EXISTS ", "", 1).rstrip(";"):
        conn.execute(f"DROP TRIGGER [{match[1]}]")


def _drop_outdated_derived_tables(conn: sqlite3.Connection) -> None:
    """Drop region_profiles when it lacks a column of this version, and forget the incremental mark.

    It is derived (finalise rebuilds it in full), and so is profile_counts: a catalogue
    from before the coverage counts gets both recomputed at its next finalise.
    """
    columns = {row[1] for row in conn.execute("PRAGMA table_info(region_profiles)")}
    if columns and "actors_with_data" not in columns:
        conn.execute("DROP TABLE region_profiles")
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'catalogue_state'").fetchone():
            conn.execute("DELETE FROM catalogue_state WHERE name = 'incremental'")


# Columns added since catalogues were first written: (table, column, declaration). A catalogue
# written before gets them empty (their default); its next harvest of a record fills them.
NEW_COLUMNS = (
    ("projects", "title_stated", "INTEGER NOT NULL DEFAULT 1"),
    ("participations", "stated_region", "TEXT"),
    ("actors", "sectors_basis", "TEXT"),
    ("actors", "stages_basis", "TEXT"),
    ("actors", "derivation", "TEXT"),
    ("region_profiles", "records_in_region", "INTEGER"),
)


def _add_new_columns(conn: sqlite3.Connection) -> None:
    for table, column, declaration in NEW_COLUMNS:
        if column not in {row[1] for row in conn.execute(f"PRAGMA table_info([{table}])")}:
            conn.execute(f"ALTER TABLE [{table}] ADD COLUMN [{column}] {declaration}")


def _migrate_organisations(conn: sqlite3.Connection, keys_missing: bool, *, regroup: bool) -> None:
    """An older catalogue gets its actors' organisation keys (once) and its organisations now, not at the next
    change; organisation counts without the 'with data' rows are counted again."""
    if not keys_missing and not organisations.counts_outdated(conn):
        return
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    if keys_missing:
        organisations.add_missing_keys(conn)
        if regroup:  # during a bulk load, the full finalise that ends it groups
            organisations.rebuild(conn)
    else:
        organisations.recount(conn)
    if own:
        conn.execute("COMMIT")


def ensure_schema(conn: sqlite3.Connection, *, bulk: bool = False) -> None:
    """Create the public catalogue tables, indexes, FTS and regions. Idempotent; inside a transaction, never commits.

    bulk=True (a bulk load is in progress, see bulk_begin): tables and FTS tables
    only; the secondary indexes and FTS triggers are left to bulk_finish.
    """
    _drop_outdated_derived_tables(conn)
    keys_missing = organisations.keys_missing(conn)
    script = TABLES + organisations.TABLES
    if not bulk:
        script += INDEXES + organisations.KEY_INDEXES + organisations.INDEXES
    script += "".join(_fts_sql(t, c, triggers=not bulk) for t, c in FTS_COLUMNS.items())
    for statement in _statements(script):
        _replace_changed_trigger(conn, statement)
        conn.execute(statement)
    _add_new_columns(conn)
    _migrate_organisations(conn, keys_missing, regroup=not bulk)
    if conn.execute("SELECT count(*) FROM regions").fetchone()[0] == 0:
        # One transaction, not one autocommit (and fsync) per region; inside a caller's transaction, join it.
        own = not conn.in_transaction
        if own:
            conn.execute("BEGIN")
        conn.executemany(
            "INSERT OR IGNORE INTO regions (code, name, level, country, latitude, longitude) VALUES (?, ?, ?, ?, ?, ?)",
            [(r["code"], r["name"], r["level"], r["country"], r["lat"], r["lon"]) for r in _regions().values()],
        )
        if own:
            conn.execute("COMMIT")


# --- bulk load ------------------------------------------------------------
#
# A first harvest (or a rebuild into empty public tables) inserts every row once.
# Maintaining ~35 secondary indexes and three FTS triggers per row is then most of
# the harvest's time; building each index once from the finished table (a sort)
# and the FTS index with FTS5's 'rebuild' is several times cheaper. The harvester
# records "bulk" in harvest_flags in the transaction that calls bulk_begin, and
# clears it only after bulk_finish, so a crash at any point is finished by the
# next run. Everything here is idempotent.

_INDEX_NAMES = tuple(re.findall(r"CREATE INDEX IF NOT EXISTS (\w+)",
                                INDEXES + organisations.KEY_INDEXES + organisations.INDEXES))
_BULK_TABLES = ("actors", "projects", "offers", "participations", "actor_sectors", "actor_value_chain",
                "actor_technologies", "offer_technologies")


def public_tables_empty(conn: sqlite3.Connection) -> bool:
    """True when no catalogue row exists yet (a first harvest, or a rebuild): a bulk load may start."""
    return not any(conn.execute(f"SELECT 1 FROM [{t}] LIMIT 1").fetchone() for t in _BULK_TABLES)


def bulk_begin(conn: sqlite3.Connection) -> None:
    """Drop the secondary indexes and the FTS triggers (in the caller's transaction).

    The finalise after a bulk load is a full one: every row is new, so tracking
    touched records (finalise_touched) would only cost a write per record.
    """
    conn.execute("DELETE FROM catalogue_state WHERE name = 'incremental'")
    for name in _INDEX_NAMES:
        conn.execute(f"DROP INDEX IF EXISTS [{name}]")
    for table in FTS_COLUMNS:
        for suffix in ("ai", "ad", "au"):
            conn.execute(f"DROP TRIGGER IF EXISTS [{table}_{suffix}]")


def bulk_finish(conn: sqlite3.Connection) -> None:
    """Recreate the indexes (ensure_schema's statements), refill FTS from the tables, recreate the triggers.

    Outside a transaction each statement commits on its own (the WAL holds one
    index at a time); the caller clears its bulk flag only after this returns.
    """
    # Index builds may sort in helper threads (the other core is idle by now): -5 % here.
    conn.execute(f"PRAGMA threads = {min(4, os.cpu_count() or 1)}")
    for statement in _statements(INDEXES + organisations.KEY_INDEXES + organisations.INDEXES):
        conn.execute(statement)
    for table in FTS_COLUMNS:
        # FTS5 writes a segment whenever its in-memory hash reaches 'hashsize' (1 MB by default),
        # and merges them as it goes: with 4 MB the rebuild of 200k actors takes 1.2 s instead of 1.9 s.
        conn.execute(f"INSERT INTO [{table}_fts] ([{table}_fts], rank) VALUES ('hashsize', {FTS_HASH_SIZE})")
        conn.execute(f"INSERT INTO [{table}_fts] ([{table}_fts]) VALUES ('rebuild')")
    for statement in _statements("".join(_fts_sql(t, c, table_part=False) for t, c in FTS_COLUMNS.items())):
        conn.execute(statement)
