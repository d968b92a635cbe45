"""Flatten verified records into the public catalogue tables.

The aggregator owns the raw tables (`nodes`, `records`, `changes`, ...) and
calls this module inside its per-page transaction:

    ensure_schema(conn)                      # once, idempotent
    upsert_record(conn, record, node=node_row, verified_at=now)
    delete_record(conn, record_id)
    set_node_stale(conn, node_id, stale_since)
    finalise(conn)                           # once after a harvest

The public tables are flat (one row per actor/project/offer) with junction
tables for many-valued fields, because Datasette facets on JSON arrays do not
scale. Nothing here commits: the caller's transaction decides.
"""

from __future__ import annotations

import asyncio
import json
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
);
CREATE TABLE IF NOT EXISTS actor_value_chain (
    actor_id TEXT NOT NULL REFERENCES actors(id),
    stage TEXT NOT NULL,
    country TEXT,
    region TEXT,
    actor_type TEXT,
    PRIMARY KEY (actor_id, stage)
);
CREATE TABLE IF NOT EXISTS actor_technologies (
    actor_id TEXT NOT NULL REFERENCES actors(id),
    technology TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (actor_id, technology)
);
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
CREATE TABLE IF NOT EXISTS offer_technologies (
    offer_id TEXT NOT NULL REFERENCES offers(id),
    technology TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (offer_id, technology)
);
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
CREATE INDEX IF NOT EXISTS idx_participations_region ON participations(partner_region, project_id);
CREATE INDEX IF NOT EXISTS idx_participations_country ON participations(partner_country, project_id);
CREATE INDEX IF NOT EXISTS idx_offers_provider ON offers(provider_id);
CREATE INDEX IF NOT EXISTS idx_offers_country ON offers(country, offer_type);
CREATE INDEX IF NOT EXISTS idx_offers_node ON offers(node_id);
CREATE INDEX IF NOT EXISTS idx_offer_technologies_technology ON offer_technologies(technology, offer_id);
"""


def _fts_sql(table: str, columns: list[str]) -> str:
    cols = ", ".join(f"[{c}]" for c in columns)
    new = ", ".join(f"new.[{c}]" for c in columns)
    old = ", ".join(f"old.[{c}]" for c in columns)
    fts = f"{table}_fts"
    return f"""
CREATE VIRTUAL TABLE IF NOT EXISTS [{fts}] USING FTS5 ({cols}, tokenize='{FTS_TOKENIZE}', content=[{table}]);
CREATE TRIGGER IF NOT EXISTS [{table}_ai] AFTER INSERT ON [{table}] BEGIN
  INSERT INTO [{fts}] (rowid, {cols}) VALUES (new.rowid, {new});
END;
CREATE TRIGGER IF NOT EXISTS [{table}_ad] AFTER DELETE ON [{table}] BEGIN
  INSERT INTO [{fts}] ([{fts}], rowid, {cols}) VALUES('delete', old.rowid, {old});
END;
CREATE TRIGGER IF NOT EXISTS [{table}_au] AFTER UPDATE ON [{table}] BEGIN
  INSERT INTO [{fts}] ([{fts}], rowid, {cols}) VALUES('delete', old.rowid, {old});
  INSERT INTO [{fts}] (rowid, {cols}) VALUES (new.rowid, {new});
END;
"""


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


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the public catalogue tables, indexes, FTS and regions. Idempotent; inside a transaction, never commits."""
    script = TABLES + INDEXES + "".join(_fts_sql(t, c) for t, c in FTS_COLUMNS.items())
    for statement in _statements(script):
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
    return ", ".join(str(v) for v in values)


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


def _clear(conn: sqlite3.Connection, record_id: str) -> str | None:
    """Delete every flattened row of one record; return when it was first seen."""
    first_seen = None
    for table in ("actors", "projects", "offers"):
        row = conn.execute(f"SELECT first_seen FROM {table} WHERE id = ?", (record_id,)).fetchone()
        if row is not None:
            first_seen = row[0]
            break
    else:
        return None
    conn.execute("DELETE FROM actor_sectors WHERE actor_id = ?", (record_id,))
    conn.execute("DELETE FROM actor_value_chain WHERE actor_id = ?", (record_id,))
    conn.execute("DELETE FROM actor_technologies WHERE actor_id = ?", (record_id,))
    conn.execute("DELETE FROM participations WHERE project_id = ?", (record_id,))
    conn.execute("DELETE FROM offer_technologies WHERE offer_id = ?", (record_id,))
    # Explicit deletes, not INSERT OR REPLACE: REPLACE skips the FTS delete trigger.
    conn.execute(f"DELETE FROM {table} WHERE id = ?", (record_id,))
    return first_seen


def upsert_record(conn: sqlite3.Connection, record: dict, *, node: dict, verified_at: str) -> None:
    """Replace all flattened rows for record["id"]. Actor, Project and Offer; other types are ignored."""
    kind = record.get("type")
    if kind not in ("Actor", "Project", "Offer"):
        return
    if not isinstance(node, dict):  # a sqlite3.Row from the nodes table
        node = dict(node)
    first_seen = _clear(conn, record["id"])
    provenance = _provenance(record, node, verified_at, first_seen)
    if kind == "Actor":
        _insert_actor(conn, record, provenance)
    elif kind == "Project":
        _insert_project(conn, record, provenance)
    else:
        _insert_offer(conn, record, provenance)


ACTOR_COLUMNS = (
    "id, name, other_names, acronym, actor_type, country, region, region_name, city, latitude, longitude, "
    "geo_precision, website, email, description, sectors, value_chain_stages, technologies, services, "
    "ror, pic, wikidata, size_class, founding_year, status, " + PROVENANCE_COLUMNS
)
_INSERT_ACTOR = f"INSERT INTO actors ({ACTOR_COLUMNS}) VALUES ({_placeholders(ACTOR_COLUMNS.count(',') + 1)})"


def _insert_actor(conn: sqlite3.Connection, record: dict, provenance: tuple) -> None:
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
    country, actor_type = record.get("country"), record.get("actorType")
    conn.execute(_INSERT_ACTOR, (
        actor_id,
        preferred.get("value") or actor_id,
        " · ".join(others) or None,
        _joined(record.get("acronyms")),
        actor_type,
        country,
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
        *provenance,
    ))
    if sectors:
        conn.executemany(
            "INSERT OR IGNORE INTO actor_sectors (actor_id, sector, country, region, actor_type) VALUES (?, ?, ?, ?, ?)",
            [(actor_id, s, country, region_code, actor_type) for s in sectors],
        )
    if stages:
        conn.executemany(
            "INSERT OR IGNORE INTO actor_value_chain (actor_id, stage, country, region, actor_type) VALUES (?, ?, ?, ?, ?)",
            [(actor_id, s, country, region_code, actor_type) for s in stages],
        )
    if technologies:
        conn.executemany(
            "INSERT OR IGNORE INTO actor_technologies (actor_id, technology) VALUES (?, ?)",
            [(actor_id, t) for t in technologies],
        )


PROJECT_COLUMNS = (
    "id, title, acronym, description, programme, funding_scheme, call, grant_id, start_date, end_date, status, "
    "total_budget_eur, eu_contribution_eur, topics, coordinator_name, coordinator_country, partners, countries, "
    "regions, cross_border, " + PROVENANCE_COLUMNS
)
_INSERT_PROJECT = f"INSERT INTO projects ({PROJECT_COLUMNS}) VALUES ({_placeholders(PROJECT_COLUMNS.count(',') + 1)})"


def _insert_project(conn: sqlite3.Connection, record: dict, provenance: tuple) -> None:
    project_id = record["id"]
    partners = [p for p in record.get("partners") or [] if isinstance(p, dict)]
    coordinator = next((p for p in partners if p.get("role") == "coordinator"), None)
    countries = {p.get("country") for p in partners if p.get("country")}
    conn.execute(_INSERT_PROJECT, (
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
        *provenance,
    ))
    if partners:
        conn.executemany(
            "INSERT INTO participations (project_id, position, actor_ref, partner_name, partner_country, role, "
            "contribution_eur, ror, pic) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    project_id, position, p.get("actor"), p.get("name"), p.get("country"), p.get("role"),
                    _eur(p.get("contributionCents")),
                    _ror((p.get("identifiers") or {}).get("ror")),
                    _pic((p.get("identifiers") or {}).get("pic")),
                )
                for position, p in enumerate(partners, start=1)
            ],
        )


OFFER_COLUMNS = (
    "id, title, offer_type, provider_id, description, technologies, sectors, value_chain_stages, conditions, "
    "website, email, country, region, valid_until, " + PROVENANCE_COLUMNS
)
_INSERT_OFFER = f"INSERT INTO offers ({OFFER_COLUMNS}) VALUES ({_placeholders(OFFER_COLUMNS.count(',') + 1)})"


def _insert_offer(conn: sqlite3.Connection, record: dict, provenance: tuple) -> None:
    offer_id = record["id"]
    technologies = record.get("technologies") or []
    conn.execute(_INSERT_OFFER, (
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
        *provenance,
    ))
    if technologies:
        conn.executemany(
            "INSERT OR IGNORE INTO offer_technologies (offer_id, technology) VALUES (?, ?)",
            [(offer_id, t) for t in technologies],
        )


def delete_record(conn: sqlite3.Connection, record_id: str) -> None:
    """Remove a record's flattened rows (after a verified tombstone)."""
    if _clear(conn, record_id) is not None:
        conn.execute(
            "UPDATE participations SET actor_id = NULL, resolved_by = NULL, partner_region = NULL WHERE actor_id = ?",
            (record_id,),
        )


def set_node_stale(conn: sqlite3.Connection, node_id: str, stale_since: str | None) -> None:
    """Mark (stale_since given) or clear (None) the stale flag on every row a node published."""
    for table in ("actors", "projects", "offers"):
        conn.execute(
            f"UPDATE {table} SET stale = ?, stale_since = ? WHERE node_id = ?",
            (1 if stale_since else 0, stale_since, node_id),
        )


def set_records_stale(conn: sqlite3.Connection, record_ids: Iterable[str], stale_since: str | None) -> None:
    """Mark single records stale (e.g. deletions held back by a mass-delete quarantine)."""
    ids = [(1 if stale_since else 0, stale_since, i) for i in record_ids]
    for table in ("actors", "projects", "offers"):
        conn.executemany(f"UPDATE {table} SET stale = ?, stale_since = ? WHERE id = ?", ids)


FINALISE = """
-- forget resolutions whose actor has gone
UPDATE participations SET actor_id = NULL, resolved_by = NULL, partner_region = NULL
 WHERE actor_id IS NOT NULL AND actor_id NOT IN (SELECT id FROM actors);
-- 1. the partner names an actor record (on any node)
UPDATE participations SET actor_id = actor_ref, resolved_by = 'id'
 WHERE actor_ref IS NOT NULL AND actor_ref IN (SELECT id FROM actors)
   AND actor_id IS NOT actor_ref;
-- 2. else the same ROR id; 3. else the same PIC. Fresh records win, then the smallest id.
UPDATE participations SET resolved_by = 'ror', actor_id = (
    SELECT a.id FROM actors a WHERE a.ror = participations.ror ORDER BY a.stale, a.id LIMIT 1)
 WHERE (resolved_by IS NULL OR resolved_by = 'ror') AND ror IS NOT NULL
   AND EXISTS (SELECT 1 FROM actors a WHERE a.ror = participations.ror);
UPDATE participations SET resolved_by = 'pic', actor_id = (
    SELECT a.id FROM actors a WHERE a.pic = participations.pic ORDER BY a.stale, a.id LIMIT 1)
 WHERE (resolved_by IS NULL OR resolved_by = 'pic') AND pic IS NOT NULL
   AND EXISTS (SELECT 1 FROM actors a WHERE a.pic = participations.pic);
UPDATE participations SET partner_region = (SELECT a.region FROM actors a WHERE a.id = participations.actor_id)
 WHERE actor_id IS NOT NULL;
UPDATE projects SET regions = (
    SELECT count(DISTINCT partner_region) FROM participations WHERE project_id = projects.id);
-- The territorial survey, computed once per harvest rather than per request:
-- actors per sector and per stage in each region, and the specialisation
-- index (region's share of its actors in it / Europe's share; > 1 = stronger).
DELETE FROM region_profiles;
INSERT INTO region_profiles (region, region_name, dimension, value, actors, actors_in_region, specialisation)
WITH facts AS (
    SELECT region, 'sector' AS dimension, sector AS value, actor_id FROM actor_sectors
    UNION ALL
    SELECT region, 'stage', stage, actor_id FROM actor_value_chain
),
per_region AS (
    SELECT region, dimension, value, count(*) AS actors FROM facts
    WHERE region IS NOT NULL GROUP BY region, dimension, value
),
region_totals AS (SELECT region, count(*) AS total FROM actors WHERE region IS NOT NULL GROUP BY region),
europe AS (SELECT dimension, value, count(*) AS actors FROM facts GROUP BY dimension, value),
europe_total AS (SELECT count(*) AS total FROM actors)
SELECT p.region, r.name, p.dimension, p.value, p.actors, t.total,
       round((1.0 * p.actors / t.total) / (1.0 * e.actors / (SELECT total FROM europe_total)), 2)
FROM per_region p
JOIN region_totals t ON t.region = p.region
JOIN europe e ON e.dimension = p.dimension AND e.value = p.value
LEFT JOIN regions r ON r.code = p.region;
"""


def finalise(conn: sqlite3.Connection) -> None:
    """After a harvest: resolve partners across nodes, count regions, optimise FTS, ANALYZE."""
    for statement in _statements(FINALISE):
        conn.execute(statement)
    for table in FTS_COLUMNS:
        # A bounded incremental merge, not 'optimize' (which rewrites the whole index every harvest).
        conn.execute(f"INSERT INTO [{table}_fts] ([{table}_fts], rank) VALUES ('merge', 500)")
    conn.execute("ANALYZE")


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
