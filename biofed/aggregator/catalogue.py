"""Flatten verified records into the public catalogue tables.

The aggregator owns the raw tables (`nodes`, `records`, `changes`, ...) and
calls this module inside its per-page transaction:

    ensure_schema(conn)                      # once, idempotent
    upsert_record(conn, record, node=node_row, verified_at=now)
    delete_record(conn, record_id)
    set_node_stale(conn, node_id, stale_since)
    finalise(conn)                           # once after a harvest

A first harvest into empty tables may run as a bulk load: bulk_begin drops the
secondary indexes and FTS triggers, bulk_finish builds them once at the end.

The public tables are flat (one row per actor/project/offer) with junction
tables for many-valued fields, because Datasette facets on JSON arrays do not
scale. Nothing here commits: the caller's transaction decides.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
from pathlib import Path
from typing import Any, Iterable

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
    status TEXT,{PROVENANCE}
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
    cross_border INTEGER,{PROVENANCE}
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
CREATE TABLE IF NOT EXISTS region_profiles (
    region TEXT NOT NULL REFERENCES regions(code),
    region_name TEXT,
    dimension TEXT NOT NULL,
    value TEXT NOT NULL,
    actors INTEGER NOT NULL,
    actors_in_region INTEGER NOT NULL,
    specialisation REAL,
    PRIMARY KEY (region, dimension, value)
);
-- Actors per (region, sector|stage) and per region ('' = no region; dimension '' = all actors),
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


def ensure_schema(conn: sqlite3.Connection, *, bulk: bool = False) -> None:
    """Create the public catalogue tables, indexes, FTS and regions. Idempotent; inside a transaction, never commits.

    bulk=True (a bulk load is in progress, see bulk_begin): tables and FTS tables
    only; the secondary indexes and FTS triggers are left to bulk_finish.
    """
    script = TABLES
    if not bulk:
        script += INDEXES
    script += "".join(_fts_sql(t, c, triggers=not bulk) for t, c in FTS_COLUMNS.items())
    for statement in _statements(script):
        _replace_changed_trigger(conn, statement)
        conn.execute(statement)
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

_INDEX_NAMES = tuple(re.findall(r"CREATE INDEX IF NOT EXISTS (\w+)", INDEXES))
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
    for statement in _statements(INDEXES):
        conn.execute(statement)
    for table in FTS_COLUMNS:
        # FTS5 writes a segment whenever its in-memory hash reaches 'hashsize' (1 MB by default),
        # and merges them as it goes: with 4 MB the rebuild of 200k actors takes 1.2 s instead of 1.9 s.
        conn.execute(f"INSERT INTO [{table}_fts] ([{table}_fts], rank) VALUES ('hashsize', {FTS_HASH_SIZE})")
        conn.execute(f"INSERT INTO [{table}_fts] ([{table}_fts]) VALUES ('rebuild')")
    for statement in _statements("".join(_fts_sql(t, c, table_part=False) for t, c in FTS_COLUMNS.items())):
        conn.execute(statement)


# --- reference data -------------------------------------------------------

_REGIONS: dict[str, dict] | None = None

# NUTS uses EL and UK where ISO 3166 (and the data standard) says GR and GB.
_NUTS_TO_ISO = {"EL": "GR", "UK": "GB"}


def _regions() -> dict[str, dict]:
    """NUTS 2021 regions keyed by code: {code, name, level, country, lat, lon}."""
    global _REGIONS
    if _REGIONS is None:
        from biofed.schema import nuts_regions  # the code list is the schema package's

        _REGIONS = {
            code: {
                "code": code,
                "name": row["name"],
                "level": _int(row["level"]),
                "country": _NUTS_TO_ISO.get(code[:2], code[:2]),
                "lat": _float(row["lat"]),
                "lon": _float(row["lon"]),
            }
            for code, row in nuts_regions().items()
        }
    return _REGIONS


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# --- flattening -----------------------------------------------------------

def _text(language_map: Any, prefer: str | None = None) -> str | None:
    """One string from a language map: English, else the preferred name's language, else any."""
    if isinstance(language_map, str):
        return language_map
    if not isinstance(language_map, dict) or not language_map:
        return None
    for lang in ("en", prefer, "und"):
        if lang and language_map.get(lang):
            return language_map[lang]
    return next(iter(language_map.values()))


def _joined(values: Any) -> str | None:
    if not values:
        return None
    return ", ".join(map(str, values))


def _eur(cents: Any) -> float | None:
    return cents / 100 if isinstance(cents, int) else None


def _ror(value: Any) -> str | None:
    """ROR ids compare as https://ror.org/<id>, lower case."""
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip().lower().rstrip("/")
    return value if value.startswith("https://ror.org/") else "https://ror.org/" + value.rsplit("/", 1)[-1]


def _pic(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None


def _provenance(record: dict, node: dict, verified_at: str, first_seen: str | None) -> tuple:
    node_id = node.get("id")
    base_url = (node.get("base_url") or node.get("baseUrl") or "").rstrip("/")
    attribution = node.get("attribution") or (f"© {node['name']}" if node.get("name") else None)
    return (
        node_id,
        node.get("licence"),
        attribution,
        record.get("version"),
        record.get("dateModified"),
        first_seen or verified_at,
        verified_at,
        0,
        None,
        f"{base_url}/records/{record['id']}" if base_url else None,
    )


PROVENANCE_COLUMNS = (
    "node_id, licence, attribution, version, date_modified, first_seen, verified_at, stale, stale_since, record_url"
)


def _placeholders(n: int) -> str:
    return ", ".join("?" * n)


def _unique(values: list) -> list:
    """The values once each, in order (the junction tables' primary keys ignore repeats)."""
    try:
        return list(dict.fromkeys(values))
    except TypeError:  # unhashable values: the insert will store or ignore them as before
        return values


def flatten(record: dict):
    """The catalogue rows of one record, without provenance: a small picklable tuple, or None.

    (kind, id, version, dateModified, row, extra...): worker processes build it
    next to verification, so the harvesting process only inserts.
    """
    kind = record.get("type")
    if kind == "Actor":
        return _flatten_actor(record)
    if kind == "Project":
        return _flatten_project(record)
    if kind == "Offer":
        return _flatten_offer(record)
    return None


def _flatten_actor(record: dict) -> tuple:
    actor_id = record["id"]
    names = record.get("names") or []
    preferred = next((n for n in names if n.get("preferred")), names[0] if names else {})
    others = [n.get("value") for n in names if n is not preferred and n.get("value")]
    region_code = record.get("region")
    region = _regions().get(region_code) if region_code else None
    geo = record.get("geo") or {}
    latitude, longitude, precision = _float(geo.get("lat")), _float(geo.get("lon")), "exact"
    if latitude is None or longitude is None:
        # Every actor on the map: fall back to its region's centre, and say so.
        latitude, longitude = (region["lat"], region["lon"]) if region else (None, None)
        precision = "region" if latitude is not None else None
    identifiers = record.get("identifiers") or {}
    sectors = record.get("sectors") or []
    stages = record.get("valueChainStages") or []
    technologies = record.get("technologies") or []
    row = (
        actor_id,
        preferred.get("value") or actor_id,
        " · ".join(others) or None,
        _joined(record.get("acronyms")),
        record.get("actorType"),
        record.get("country"),
        region_code,
        region["name"] if region else None,
        (record.get("address") or {}).get("locality"),
        latitude,
        longitude,
        precision,
        record.get("website"),
        (record.get("contact") or {}).get("email"),
        _text(record.get("description"), preferred.get("lang")),
        _joined(sectors),
        _joined(stages),
        _joined(technologies),
        _joined(record.get("services")),
        _ror(identifiers.get("ror")),
        _pic(identifiers.get("pic")),
        identifiers.get("wikidata"),
        record.get("sizeClass"),
        record.get("foundingYear"),
        record.get("status") or "active",
    )
    return ("Actor", actor_id, record.get("version"), record.get("dateModified"), row,
            _unique(sectors), _unique(stages), technologies)


def _flatten_project(record: dict) -> tuple:
    project_id = record["id"]
    partners = [p for p in record.get("partners") or [] if isinstance(p, dict)]
    coordinator = next((p for p in partners if p.get("role") == "coordinator"), None)
    countries = {p.get("country") for p in partners if p.get("country")}
    row = (
        project_id,
        record.get("title") or project_id,
        record.get("acronym"),
        _text(record.get("description")),
        record.get("programme"),
        record.get("fundingScheme"),
        record.get("call"),
        record.get("grantId"),
        record.get("startDate"),
        record.get("endDate"),
        record.get("status"),
        _eur(record.get("totalBudgetCents")),
        _eur(record.get("euContributionCents")),
        _joined(record.get("topics")),
        coordinator.get("name") if coordinator else None,
        coordinator.get("country") if coordinator else None,
        len(partners),
        len(countries),
        None,  # regions: known once partners are resolved (finalise)
        1 if len(countries) > 1 else 0,
    )
    participations = [
        (
            project_id, position, p.get("actor"), p.get("name"), p.get("country"), p.get("role"),
            _eur(p.get("contributionCents")),
            _ror((p.get("identifiers") or {}).get("ror")),
            _pic((p.get("identifiers") or {}).get("pic")),
        )
        for position, p in enumerate(partners, start=1)
    ]
    return ("Project", project_id, record.get("version"), record.get("dateModified"), row, participations)


def _flatten_offer(record: dict) -> tuple:
    offer_id = record["id"]
    technologies = record.get("technologies") or []
    row = (
        offer_id,
        record.get("title") or offer_id,
        record.get("offerType"),
        record.get("provider"),
        _text(record.get("description")),
        _joined(technologies),
        _joined(record.get("sectors")),
        _joined(record.get("valueChainStages")),
        record.get("conditions"),
        record.get("website"),
        (record.get("contact") or {}).get("email"),
        record.get("country"),
        record.get("region"),
        record.get("validUntil"),
    )
    return ("Offer", offer_id, record.get("version"), record.get("dateModified"), row, technologies)


ACTOR_COLUMNS = (
    "id, name, other_names, acronym, actor_type, country, region, region_name, city, latitude, longitude, "
    "geo_precision, website, email, description, sectors, value_chain_stages, technologies, services, "
    "ror, pic, wikidata, size_class, founding_year, status, " + PROVENANCE_COLUMNS
)
PROJECT_COLUMNS = (
    "id, title, acronym, description, programme, funding_scheme, call, grant_id, start_date, end_date, status, "
    "total_budget_eur, eu_contribution_eur, topics, coordinator_name, coordinator_country, partners, countries, "
    "regions, cross_border, " + PROVENANCE_COLUMNS
)
OFFER_COLUMNS = (
    "id, title, offer_type, provider_id, description, technologies, sectors, value_chain_stages, conditions, "
    "website, email, country, region, valid_until, " + PROVENANCE_COLUMNS
)
_INSERT = {
    "Actor": f"INSERT INTO actors ({ACTOR_COLUMNS}) VALUES ({_placeholders(ACTOR_COLUMNS.count(',') + 1)})",
    "Project": f"INSERT INTO projects ({PROJECT_COLUMNS}) VALUES ({_placeholders(PROJECT_COLUMNS.count(',') + 1)})",
    "Offer": f"INSERT INTO offers ({OFFER_COLUMNS}) VALUES ({_placeholders(OFFER_COLUMNS.count(',') + 1)})",
}
_INSERT_SECTORS = "INSERT OR IGNORE INTO actor_sectors (actor_id, sector, country, region, actor_type) VALUES (?, ?, ?, ?, ?)"
_INSERT_STAGES = "INSERT OR IGNORE INTO actor_value_chain (actor_id, stage, country, region, actor_type) VALUES (?, ?, ?, ?, ?)"
_INSERT_ACTOR_TECH = "INSERT OR IGNORE INTO actor_technologies (actor_id, technology) VALUES (?, ?)"
_INSERT_PARTICIPATIONS = (
    "INSERT INTO participations (project_id, position, actor_ref, partner_name, partner_country, role, "
    "contribution_eur, ror, pic) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
_INSERT_OFFER_TECH = "INSERT OR IGNORE INTO offer_technologies (offer_id, technology) VALUES (?, ?)"
_CHUNK = 500  # ids per IN (...) list, well below SQLite's variable limit


def _chunks(items: list, size: int = _CHUNK):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _clear_many(conn: sqlite3.Connection, ids: list[str], deltas: dict) -> dict[str, str]:
    """Delete every flattened row of these records; return {id: first_seen} of those that had rows.

    The actors' removed facts are subtracted from `deltas` (profile_counts).
    """
    first_seen: dict[str, str] = {}
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        found = {}
        for table in ("actors", "projects", "offers"):
            rows = conn.execute(f"SELECT id, first_seen FROM {table} WHERE id IN ({marks})", chunk).fetchall()
            if rows:
                found[table] = [r[0] for r in rows]
                first_seen.update((r[0], r[1]) for r in rows)
        if not found:
            continue
        actors = found.get("actors")
        if actors:
            amarks = ",".join("?" * len(actors))
            for (region,) in conn.execute(f"SELECT region FROM actors WHERE id IN ({amarks})", actors):
                key = (region if region is not None else "", "", "")
                deltas[key] = deltas.get(key, 0) - 1
            for dimension, table, column in (("sector", "actor_sectors", "sector"), ("stage", "actor_value_chain", "stage")):
                for region, value in conn.execute(
                        f"SELECT region, {column} FROM {table} WHERE actor_id IN ({amarks})", actors):
                    key = (region if region is not None else "", dimension, value)
                    deltas[key] = deltas.get(key, 0) - 1
                conn.execute(f"DELETE FROM {table} WHERE actor_id IN ({amarks})", actors)
            conn.execute(f"DELETE FROM actor_technologies WHERE actor_id IN ({amarks})", actors)
        if "projects" in found:
            pmarks = ",".join("?" * len(found["projects"]))
            conn.execute(f"DELETE FROM participations WHERE project_id IN ({pmarks})", found["projects"])
        if "offers" in found:
            omarks = ",".join("?" * len(found["offers"]))
            conn.execute(f"DELETE FROM offer_technologies WHERE offer_id IN ({omarks})", found["offers"])
        # Explicit deletes, not INSERT OR REPLACE: REPLACE skips the FTS delete trigger.
        for table, table_ids in found.items():
            conn.execute(f"DELETE FROM {table} WHERE id IN ({','.join('?' * len(table_ids))})", table_ids)
    return first_seen


def _apply_deltas(conn: sqlite3.Connection, deltas: dict) -> None:
    rows = [(*key, n) for key, n in deltas.items() if n]
    if rows:
        conn.executemany(
            "INSERT INTO profile_counts (region, dimension, value, actors) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (region, dimension, value) DO UPDATE SET actors = actors + excluded.actors", rows)


def _touch(conn: sqlite3.Connection, ids) -> None:
    conn.executemany("INSERT OR IGNORE INTO finalise_touched (id) VALUES (?)", [(i,) for i in ids])


_TABLES = {"Actor": "actors", "Project": "projects", "Offer": "offers"}
_COLUMN_NAMES = {kind: tuple(c.strip() for c in columns.split(","))
                 for kind, columns in (("Actor", ACTOR_COLUMNS), ("Project", PROJECT_COLUMNS), ("Offer", OFFER_COLUMNS))}
# Columns finalise derives from other rows: an update leaves them to it (the record is touched).
_DERIVED = {"Project": {"regions"}}
_FIRST_SEEN = {kind: names.index("first_seen") for kind, names in _COLUMN_NAMES.items()}
_COMPARED = {kind: tuple(i for i, c in enumerate(names) if c not in _DERIVED.get(kind, ()))
             for kind, names in _COLUMN_NAMES.items()}
_PARTICIPATION_COLUMNS = "project_id, position, actor_ref, partner_name, partner_country, role, contribution_eur, ror, pic"
_ASCII_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _nocase_unique(values: list) -> frozenset:
    """What a COLLATE NOCASE primary key keeps of these values: the first of each ASCII-case-folded spelling."""
    kept: dict = {}
    for value in values:
        kept.setdefault(value.translate(_ASCII_FOLD) if isinstance(value, str) else value, value)
    return frozenset(kept.values())


def _held(conn: sqlite3.Connection, ids: list[str]) -> dict[str, tuple[str, int, tuple]]:
    """{id: (kind, rowid, full row)} of the ids that already have a row in actors, projects or offers."""
    held: dict[str, tuple[str, int, tuple]] = {}
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        for kind, table in _TABLES.items():
            sql = f"SELECT rowid, {', '.join(_COLUMN_NAMES[kind])} FROM {table} WHERE id IN ({marks})"
            for row in conn.execute(sql, chunk):
                held[row[1]] = (kind, row[0], tuple(row[1:]))
    return held


def _has_fts_triggers(conn: sqlite3.Connection) -> bool:
    """False during a bulk load (bulk_begin dropped the triggers)."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'actors_ai'").fetchone() is not None


# FTS5 flushes its pending terms to a new segment at every statement savepoint, and
# executemany runs one statement per row: a page of 500 updates through the triggers
# wrote ~500 one-document segments and the merges that follow (9 FTS pages per
# record). Rows are therefore staged in a temporary table and written with ONE
# INSERT ... SELECT or UPDATE ... FROM per table, in ascending rowid order (FTS5 also
# flushes when rowids go backwards): one segment per table per page.
_STAGE_WIDTH = max(len(names) for names in _COLUMN_NAMES.values())
_STAGE = (f"CREATE TEMP TABLE IF NOT EXISTS biofed_stage (rid INTEGER, "
          f"{', '.join(f'c{i}' for i in range(_STAGE_WIDTH))})")


def _staged_write(conn: sqlite3.Connection, sql: str, rows: list[tuple]) -> None:
    """Run `sql` (reading temp.biofed_stage as s, in rowid order) once over `rows` = [(rid, c0, c1, ...)]."""
    conn.execute(_STAGE)
    width = len(rows[0]) - 1
    conn.executemany(f"INSERT INTO temp.biofed_stage (rid, {', '.join(f'c{i}' for i in range(width))})"
                     f" VALUES (?{', ?' * width})", rows)
    conn.execute(sql)
    conn.execute("DELETE FROM temp.biofed_stage")


def _insert_rows(conn: sqlite3.Connection, kind: str, rows: list[tuple], staged: bool) -> None:
    if not staged:
        conn.executemany(_INSERT[kind], rows)
        return
    names = _COLUMN_NAMES[kind]
    _staged_write(conn, f"INSERT INTO {_TABLES[kind]} ({', '.join(names)})"
                        f" SELECT {', '.join(f's.c{i}' for i in range(len(names)))} FROM temp.biofed_stage s ORDER BY s.rowid",
                  [(None, *row) for row in rows])


def _update_rows(conn: sqlite3.Connection, kind: str, changed: tuple, rows: list[tuple], staged: bool) -> None:
    """rows = [(rowid, new values of the changed columns...)]"""
    names = _COLUMN_NAMES[kind]
    rows.sort()
    if not staged:
        conn.executemany(f"UPDATE {_TABLES[kind]} SET {', '.join(f'{names[i]} = ?' for i in changed)} WHERE rowid = ?",
                         [(*row[1:], row[0]) for row in rows])
        return
    # s is scanned in its insertion (ascending rowid) order; each target row is found by rowid.
    _staged_write(conn, f"UPDATE {_TABLES[kind]} SET {', '.join(f'{names[i]} = s.c{n}' for n, i in enumerate(changed))}"
                        f" FROM temp.biofed_stage s WHERE {_TABLES[kind]}.rowid = s.rid", rows)


def _grouped(conn: sqlite3.Connection, sql: str, ids: list[str]) -> dict[str, list[tuple]]:
    """Rows of `sql` (its first column an id, one IN list) grouped by that id."""
    grouped: dict[str, list[tuple]] = {}
    for chunk in _chunks(ids):
        for row in conn.execute(sql.format(marks=",".join("?" * len(chunk))), chunk):
            grouped.setdefault(row[0], []).append(tuple(row))
    return grouped


def upsert_flat(conn: sqlite3.Connection, flats: list, *, node: dict, verified_at: str) -> None:
    """Insert or update all flattened rows of many records at once (`flatten` output; distinct ids; None skipped).

    A record already in the catalogue is updated in place, and only where it
    changed: an UPDATE sets just the columns whose values differ (SQLite then
    leaves every index on the other columns, and the full-text index unless a
    text column changed, untouched), and a junction table's rows for that
    record are replaced only when they differ. An incremental harvest thus
    writes a few pages per changed record instead of rewriting every index.
    New records are inserted with one executemany per table.
    """
    flats = [f for f in flats if f is not None]
    if not flats:
        return
    if not isinstance(node, dict):  # a sqlite3.Row from the nodes table
        node = dict(node)
    deltas: dict = {}
    ids = [f[1] for f in flats]
    held = _held(conn, ids)
    # A record whose type changed (its row is in another table) is cleared and inserted afresh.
    moved = [f[1] for f in flats if f[1] in held and held[f[1]][0] != f[0]]
    if moved:
        _clear_many(conn, moved, deltas)
        for record_id in moved:
            del held[record_id]
    held_actors = [i for i, (kind, _, _) in held.items() if kind == "Actor"]
    old_sectors = _grouped(conn, "SELECT actor_id, sector, country, region, actor_type FROM actor_sectors"
                                 " WHERE actor_id IN ({marks})", held_actors)
    old_stages = _grouped(conn, "SELECT actor_id, stage, country, region, actor_type FROM actor_value_chain"
                                " WHERE actor_id IN ({marks})", held_actors)
    old_actor_tech = _grouped(conn, "SELECT actor_id, technology FROM actor_technologies WHERE actor_id IN ({marks})",
                              held_actors)
    old_participations = _grouped(conn, f"SELECT {_PARTICIPATION_COLUMNS} FROM participations"
                                        " WHERE project_id IN ({marks}) ORDER BY project_id, position",
                                  [i for i, (kind, _, _) in held.items() if kind == "Project"])
    old_offer_tech = _grouped(conn, "SELECT offer_id, technology FROM offer_technologies WHERE offer_id IN ({marks})",
                              [i for i, (kind, _, _) in held.items() if kind == "Offer"])
    node_id = node.get("id")
    base_url = (node.get("base_url") or node.get("baseUrl") or "").rstrip("/")
    attribution = node.get("attribution") or (f"© {node['name']}" if node.get("name") else None)
    licence = node.get("licence")
    inserts: dict[str, list] = {"Actor": [], "Project": [], "Offer": []}
    updates: dict[tuple, list] = {}  # (kind, changed column positions) -> [(rowid, new values...)]
    junction_clear: dict[str, list] = {}  # table -> ids whose rows are replaced
    sectors, stages, actor_tech, participations, offer_tech = [], [], [], [], []

    # During a bulk load (no FTS triggers) the region counts are rebuilt by the full finalise that ends it.
    staged = _has_fts_triggers(conn)

    def count(key, n):
        if staged:
            deltas[key] = deltas.get(key, 0) + n

    for flat in flats:
        kind, record_id, version, date_modified, row = flat[:5]
        old = held.get(record_id)
        full = (*row, node_id, licence, attribution, version, date_modified,
                old[2][_FIRST_SEEN[kind]] if old else verified_at, verified_at, 0, None,
                f"{base_url}/records/{record_id}" if base_url else None)
        if old is None:
            inserts[kind].append(full)
        else:
            changed = tuple(i for i in _COMPARED[kind] if full[i] != old[2][i])
            if changed:
                updates.setdefault((kind, changed), []).append((old[1], *(full[i] for i in changed)))
        if kind == "Actor":
            actor_type, country, region = row[4], row[5], row[6]
            region_key = region if region is not None else ""
            if old is None:  # a new actor (every row of a first harvest): no diff to make
                count((region_key, "", ""), 1)
                for value in flat[5]:
                    sectors.append((record_id, value, country, region, actor_type))
                    count((region_key, "sector", value), 1)
                for value in flat[6]:
                    stages.append((record_id, value, country, region, actor_type))
                    count((region_key, "stage", value), 1)
                actor_tech.extend((record_id, t) for t in flat[7])
                continue
            old_region = old[2][6]
            if old_region != region:
                count((old_region if old_region is not None else "", "", ""), -1)
                count((region_key, "", ""), 1)
            for table, dimension, values, was, into in (
                    ("actor_sectors", "sector", flat[5], old_sectors.get(record_id, []), sectors),
                    ("actor_value_chain", "stage", flat[6], old_stages.get(record_id, []), stages)):
                new = [(record_id, value, country, region, actor_type) for value in values]
                if set(new) == set(was):
                    continue
                if was:
                    junction_clear.setdefault(table, []).append(record_id)
                    for _, value, _, was_region, _ in was:
                        count((was_region if was_region is not None else "", dimension, value), -1)
                for value in values:
                    count((region_key, dimension, value), 1)
                into.extend(new)
            was = old_actor_tech.get(record_id)
            if was is None or _nocase_unique(flat[7]) != frozenset(t for _, t in was):
                if was:
                    junction_clear.setdefault("actor_technologies", []).append(record_id)
                actor_tech.extend((record_id, t) for t in flat[7])
        elif kind == "Project":
            was = old_participations.get(record_id)
            if flat[5] != (was or []):
                if was:
                    junction_clear.setdefault("participations", []).append(record_id)
                participations.extend(flat[5])
        else:
            was = old_offer_tech.get(record_id)
            if was is None or _nocase_unique(flat[5]) != frozenset(t for _, t in was):
                if was:
                    junction_clear.setdefault("offer_technologies", []).append(record_id)
                offer_tech.extend((record_id, t) for t in flat[5])
    for table, table_ids in junction_clear.items():
        key = "project_id" if table == "participations" else "offer_id" if table == "offer_technologies" else "actor_id"
        for chunk in _chunks(table_ids):
            conn.execute(f"DELETE FROM {table} WHERE {key} IN ({','.join('?' * len(chunk))})", chunk)
    for (kind, changed), values in updates.items():
        _update_rows(conn, kind, changed, values, staged)
    for kind, kind_rows in inserts.items():
        if kind_rows:
            _insert_rows(conn, kind, kind_rows, staged)
    for sql, values in ((_INSERT_SECTORS, sectors), (_INSERT_STAGES, stages), (_INSERT_ACTOR_TECH, actor_tech),
                        (_INSERT_PARTICIPATIONS, participations), (_INSERT_OFFER_TECH, offer_tech)):
        if values:
            conn.executemany(sql, values)
    _apply_deltas(conn, deltas)
    if staged:  # a bulk load ends with a full finalise (bulk_begin forgot 'incremental'): nothing to track
        _touch(conn, ids)


def upsert_record(conn: sqlite3.Connection, record: dict, *, node: dict, verified_at: str) -> None:
    """Replace all flattened rows for record["id"]. Actor, Project and Offer; other types are ignored."""
    flat = flatten(record)
    if flat is not None:
        upsert_flat(conn, [flat], node=node, verified_at=verified_at)


def delete_records(conn: sqlite3.Connection, record_ids: list[str]) -> None:
    """Remove records' flattened rows (after verified tombstones)."""
    record_ids = list(record_ids)
    if not record_ids:
        return
    deltas: dict = {}
    gone = list(_clear_many(conn, record_ids, deltas))
    _apply_deltas(conn, deltas)
    _touch(conn, record_ids)
    for chunk in _chunks(gone):
        marks = ",".join("?" * len(chunk))
        # The projects that named a deleted actor are resolved again at the next finalise.
        conn.execute(f"INSERT OR IGNORE INTO finalise_touched (id) SELECT project_id FROM participations"
                     f" WHERE actor_id IN ({marks})", chunk)
        conn.execute(
            f"UPDATE participations SET actor_id = NULL, resolved_by = NULL, partner_region = NULL WHERE actor_id IN ({marks})",
            chunk)


def delete_record(conn: sqlite3.Connection, record_id: str) -> None:
    """Remove a record's flattened rows (after a verified tombstone)."""
    delete_records(conn, [record_id])


def set_node_stale(conn: sqlite3.Connection, node_id: str, stale_since: str | None) -> None:
    """Mark (stale_since given) or clear (None) the stale flag on every row a node published."""
    stale = 1 if stale_since else 0
    # Fresh actors win partner resolution: actors whose flag flips are resolved again at finalise.
    conn.execute("INSERT OR IGNORE INTO finalise_touched (id) SELECT id FROM actors WHERE node_id = ? AND stale != ?"
                 " AND (ror IS NOT NULL OR pic IS NOT NULL)", (node_id, stale))
    for table in ("actors", "projects", "offers"):
        conn.execute(
            f"UPDATE {table} SET stale = ?, stale_since = ? WHERE node_id = ?",
            (stale, stale_since, node_id),
        )


def set_records_stale(conn: sqlite3.Connection, record_ids: Iterable[str], stale_since: str | None) -> None:
    """Mark single records stale (e.g. deletions held back by a mass-delete quarantine)."""
    ids = [(1 if stale_since else 0, stale_since, i) for i in record_ids]
    _touch(conn, [i[2] for i in ids])
    for table in ("actors", "projects", "offers"):
        conn.executemany(f"UPDATE {table} SET stale = ?, stale_since = ? WHERE id = ?", ids)


# Partner resolution. {scope} restricts every statement to the projects an
# incremental finalise must look at (empty: all). Each statement decides a
# participation from that row and the actors table only, so running them on
# every project that can have changed gives the same result as running them on all.
RESOLVE = """
-- forget resolutions whose actor has gone
UPDATE participations SET actor_id = NULL, resolved_by = NULL, partner_region = NULL
 WHERE actor_id IS NOT NULL AND actor_id NOT IN (SELECT id FROM actors){scope};
-- 1. the partner names an actor record (on any node)
UPDATE participations SET actor_id = actor_ref, resolved_by = 'id'
 WHERE actor_ref IS NOT NULL AND actor_ref IN (SELECT id FROM actors)
   AND actor_id IS NOT actor_ref{scope};
-- 2. else the same ROR id; 3. else the same PIC. Fresh records win, then the smallest id.
UPDATE participations SET resolved_by = 'ror', actor_id = (
    SELECT a.id FROM actors a WHERE a.ror = participations.ror ORDER BY a.stale, a.id LIMIT 1)
 WHERE (resolved_by IS NULL OR resolved_by = 'ror') AND ror IS NOT NULL
   AND EXISTS (SELECT 1 FROM actors a WHERE a.ror = participations.ror){scope};
UPDATE participations SET resolved_by = 'pic', actor_id = (
    SELECT a.id FROM actors a WHERE a.pic = participations.pic ORDER BY a.stale, a.id LIMIT 1)
 WHERE (resolved_by IS NULL OR resolved_by = 'pic') AND pic IS NOT NULL
   AND EXISTS (SELECT 1 FROM actors a WHERE a.pic = participations.pic){scope};
UPDATE participations SET partner_region = (SELECT a.region FROM actors a WHERE a.id = participations.actor_id)
 WHERE actor_id IS NOT NULL{scope};
UPDATE projects SET regions = (
    SELECT count(DISTINCT partner_region) FROM participations WHERE project_id = projects.id){project_scope};
"""

# The projects whose participations can resolve differently after the touched records changed:
# the touched projects themselves and those whose partners name, resolved to, or share a ROR/PIC
# with a touched actor (a deleted actor's projects were added by delete_records).
SCOPE = """
CREATE TEMP TABLE IF NOT EXISTS finalise_scope (project_id TEXT PRIMARY KEY) WITHOUT ROWID;
DELETE FROM temp.finalise_scope;
INSERT OR IGNORE INTO temp.finalise_scope SELECT id FROM projects WHERE id IN (SELECT id FROM finalise_touched);
INSERT OR IGNORE INTO temp.finalise_scope SELECT project_id FROM participations
 WHERE actor_id IN (SELECT id FROM finalise_touched);
INSERT OR IGNORE INTO temp.finalise_scope SELECT project_id FROM participations
 WHERE actor_ref IS NOT NULL AND actor_ref IN (SELECT id FROM finalise_touched);
INSERT OR IGNORE INTO temp.finalise_scope SELECT project_id FROM participations
 WHERE ror IS NOT NULL AND ror IN (SELECT ror FROM actors WHERE id IN (SELECT id FROM finalise_touched) AND ror IS NOT NULL);
INSERT OR IGNORE INTO temp.finalise_scope SELECT project_id FROM participations
 WHERE pic IS NOT NULL AND pic IN (SELECT pic FROM actors WHERE id IN (SELECT id FROM finalise_touched) AND pic IS NOT NULL);
"""

REBUILD_COUNTS = """
DELETE FROM profile_counts;
INSERT INTO profile_counts (region, dimension, value, actors)
 SELECT coalesce(region, ''), 'sector', sector, count(*) FROM actor_sectors GROUP BY coalesce(region, ''), sector;
INSERT INTO profile_counts (region, dimension, value, actors)
 SELECT coalesce(region, ''), 'stage', stage, count(*) FROM actor_value_chain GROUP BY coalesce(region, ''), stage;
INSERT INTO profile_counts (region, dimension, value, actors)
 SELECT coalesce(region, ''), '', '', count(*) FROM actors GROUP BY coalesce(region, '');
"""

# The territorial survey, computed once per harvest rather than per request:
# actors per sector and per stage in each region, and the specialisation
# index (region's share of its actors in it / Europe's share; > 1 = stronger).
# From profile_counts (regions x values rows), not from the actors: the same
# integers as counting the actor tables (tests/test_catalogue_incremental.py).
REGION_PROFILES = """
DELETE FROM profile_counts WHERE actors = 0;
DELETE FROM region_profiles;
INSERT INTO region_profiles (region, region_name, dimension, value, actors, actors_in_region, specialisation)
WITH per_region AS (
    SELECT region, dimension, value, actors FROM profile_counts WHERE region != '' AND dimension != ''
),
region_totals AS (SELECT region, actors AS total FROM profile_counts WHERE region != '' AND dimension = ''),
europe AS (SELECT dimension, value, sum(actors) AS actors FROM profile_counts WHERE dimension != '' GROUP BY dimension, value),
europe_total AS (SELECT sum(actors) AS total FROM profile_counts WHERE dimension = '')
SELECT p.region, r.name, p.dimension, p.value, p.actors, t.total,
       round((1.0 * p.actors / t.total) / (1.0 * e.actors / (SELECT total FROM europe_total)), 2)
FROM per_region p
JOIN region_totals t ON t.region = p.region
JOIN europe e ON e.dimension = p.dimension AND e.value = p.value
LEFT JOIN regions r ON r.code = p.region;
"""


def finalise(conn: sqlite3.Connection) -> None:
    """After a harvest: resolve partners across nodes, count regions, merge FTS, ANALYZE.

    Incremental when the last finalise completed: partner resolution only for the
    projects the changed records can affect, region profiles from the maintained
    counts. A new or older catalogue (no 'incremental' mark) is recomputed in full.
    """
    row = conn.execute("SELECT value FROM catalogue_state WHERE name = 'incremental'").fetchone()
    incremental = bool(row and row[0])
    touched = conn.execute("SELECT count(*) FROM finalise_touched").fetchone()[0]
    if incremental:
        for statement in _statements(SCOPE):
            conn.execute(statement)
        scope = " AND project_id IN (SELECT project_id FROM temp.finalise_scope)"
        project_scope = " WHERE id IN (SELECT project_id FROM temp.finalise_scope)"
    else:
        for statement in _statements(REBUILD_COUNTS):
            conn.execute(statement)
        scope = project_scope = ""
    for statement in _statements(RESOLVE.format(scope=scope, project_scope=project_scope)):
        conn.execute(statement)
    for statement in _statements(REGION_PROFILES):
        conn.execute(statement)
    if incremental:
        conn.execute("DROP TABLE temp.finalise_scope")
    conn.execute("DELETE FROM finalise_touched")
    # Records changed since the planner statistics were gathered.
    row = conn.execute("SELECT value FROM catalogue_state WHERE name = 'unanalysed'").fetchone()
    unanalysed = (row[0] if row and row[0] else 0) + touched
    for table in FTS_COLUMNS:
        # A bounded incremental merge, not 'optimize' (which rewrites the whole index every harvest);
        # the budget (leaf pages) follows the number of changed records, so a small run stays small.
        pages = 500 if not incremental else min(500, max(16, touched // 4))
        conn.execute(f"INSERT INTO [{table}_fts] ([{table}_fts], rank) VALUES ('merge', ?)", (pages,))
    # ANALYZE (bounded by analysis_limit in the harvest) when the statistics are missing or more
    # than a tenth of the actors changed since they were gathered; a 1 % run keeps them.
    try:
        stat = conn.execute("SELECT stat FROM sqlite_stat1 WHERE tbl = 'actors' LIMIT 1").fetchone()
    except sqlite3.OperationalError:  # no sqlite_stat1 yet
        stat = None
    analysed_rows = int(stat[0].split()[0]) if stat and stat[0] else 0
    if not incremental or stat is None or unanalysed * 10 > analysed_rows:
        conn.execute("ANALYZE")
        unanalysed = 0
    conn.execute("INSERT INTO catalogue_state (name, value) VALUES ('unanalysed', ?)"
                 " ON CONFLICT (name) DO UPDATE SET value = excluded.value", (unanalysed,))
    conn.execute("INSERT INTO catalogue_state (name, value) VALUES ('incremental', 1)"
                 " ON CONFLICT (name) DO UPDATE SET value = 1")


# --- serving --------------------------------------------------------------

def build_inspect_file(db_path: str | Path, inspect_path: str | Path | None = None) -> Path:
    """Write Datasette's inspect data (hash, size, table counts) next to the database.

    Served immutable with this file, Datasette never runs count(*) per request.
    """
    from datasette.cli import inspect_

    db_path = Path(db_path)
    inspect_path = Path(inspect_path) if inspect_path else db_path.with_name(db_path.stem + "-inspect.json")
    # Immutable readers ignore the WAL: move committed pages into the main file first.
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()

    def run():
        return asyncio.run(inspect_([str(db_path)], sqlite_extensions=None))

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        data = run()
    else:  # called from async code: run in a fresh loop on a worker thread
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            data = pool.submit(run).result()
    inspect_path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return inspect_path
