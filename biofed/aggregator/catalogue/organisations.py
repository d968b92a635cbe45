"""Organisations: the actor records of all nodes that describe one real organisation, grouped.

Two actor records are one organisation when they share a strong identifier
(ROR, PIC, VAT, Wikidata; compared by biofed.schema.identifiers) or when one
names the other in `sameAs`; grouping is transitive (union-find over those
keys). A website domain or a name never groups records here. Each node keeps
signing its own records: an organisation lists them all (organisation_records),
which node signed each, and the fields on which they disagree.

Tables (all in the public catalogue):

* organisation_keys (key, actor_id): `ror:05abc`, `pic:999...`, `vat:DE...`,
  `wikidata:Q...`, `same:<record id>`; written with the actor rows (writes.py).
* organisations: one row per organisation. `id` is the smallest record id in
  the group, and name, type, country, region and city are that record's;
  `sectors` and `value_chain_stages` the union of all its records'; `records`,
  `nodes`, `node_ids`; `disagreements` the fields its records disagree on.
* organisation_records (actor_id, organisation_id, node_id, shared_keys).
* organisation_disagreements (organisation_id, field, actor_id, node_id, value).
* organisation_sectors, organisation_value_chain: junction tables like
  actor_sectors, one row per organisation.
* organisation_counts (region, dimension, value, organisations): like
  profile_counts, organisations instead of records ('' = no region / all).

finalise() regroups after a harvest: in full when the catalogue's finalise is
a full one, else only the groups of the records touched since the last one
(their old groups, and everything reachable from them through shared keys);
the result equals a full recompute (tests/aggregator/test_organisations.py).
"""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Iterable

from biofed.schema.identifiers import STRONG, normalised_identifier

TABLES = """
CREATE TABLE IF NOT EXISTS organisation_keys (
    key TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    PRIMARY KEY (key, actor_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS organisations (
    id TEXT PRIMARY KEY,
    name TEXT,
    actor_type TEXT,
    country TEXT,
    region TEXT,
    region_name TEXT,
    city TEXT,
    sectors TEXT,
    value_chain_stages TEXT,
    ror TEXT,
    pic TEXT,
    vat TEXT,
    wikidata TEXT,
    records INTEGER NOT NULL,
    nodes INTEGER NOT NULL,
    node_ids TEXT,
    disagreements TEXT
);
CREATE TABLE IF NOT EXISTS organisation_records (
    actor_id TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL,
    node_id TEXT,
    shared_keys TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS organisation_disagreements (
    organisation_id TEXT NOT NULL,
    field TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    node_id TEXT,
    value TEXT,
    PRIMARY KEY (organisation_id, field, actor_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS organisation_sectors (
    organisation_id TEXT NOT NULL,
    sector TEXT NOT NULL,
    country TEXT,
    region TEXT,
    actor_type TEXT,
    PRIMARY KEY (organisation_id, sector)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS organisation_value_chain (
    organisation_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    country TEXT,
    region TEXT,
    actor_type TEXT,
    PRIMARY KEY (organisation_id, stage)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS organisation_counts (
    region TEXT NOT NULL,
    dimension TEXT NOT NULL,
    value TEXT NOT NULL,
    organisations INTEGER NOT NULL,
    PRIMARY KEY (region, dimension, value)
) WITHOUT ROWID;
CREATE VIEW IF NOT EXISTS organisations_by_country AS
 SELECT country, actor_type, count(*) AS organisations, sum(records) AS records
 FROM organisations GROUP BY country, actor_type;
"""

# The keys' index by actor: an update finds a record's old keys, a regroup the keys of grouped
# records. A bulk load builds it once at its end (tables.bulk_finish), like the actors' indexes.
KEY_INDEXES = """
CREATE INDEX IF NOT EXISTS idx_organisation_keys_actor ON organisation_keys(actor_id, key);
"""

# The grouped tables' secondary indexes. A full regroup rewrites every row: it drops them and
# builds each once from the finished table (a sort), several times cheaper than maintaining them
# row by row (docs/benchmarks.md#organisations).
INDEXES = """
CREATE INDEX IF NOT EXISTS idx_organisations_country_type ON organisations(country, actor_type);
CREATE INDEX IF NOT EXISTS idx_organisations_region_type ON organisations(region, actor_type);
CREATE INDEX IF NOT EXISTS idx_organisations_records ON organisations(records) WHERE records > 1;
CREATE INDEX IF NOT EXISTS idx_organisation_records_organisation ON organisation_records(organisation_id);
CREATE INDEX IF NOT EXISTS idx_organisation_sectors_country ON organisation_sectors(country, sector, actor_type);
CREATE INDEX IF NOT EXISTS idx_organisation_sectors_region ON organisation_sectors(region, sector);
CREATE INDEX IF NOT EXISTS idx_organisation_value_chain_country ON organisation_value_chain(country, stage, actor_type);
CREATE INDEX IF NOT EXISTS idx_organisation_value_chain_region ON organisation_value_chain(region, stage);
"""
_INDEX_NAMES = tuple(re.findall(r"CREATE INDEX IF NOT EXISTS (\w+)", INDEXES))

# Fields compared between the records of one organisation (column, how it is shown).
COMPARED = ("name", "actor_type", "country", "region", "city", "sectors", "value_chain_stages")
_LISTS = ("sectors", "value_chain_stages")
_CHUNK = 500
# organisation_counts' value for "organisations with a value in this dimension", as in profile_counts.
KNOWN = ""


def organisation_keys(record: dict) -> tuple[str, ...]:
    """The grouping keys of an Actor record: its strong identifiers and the records it names in `sameAs`."""
    identifiers = record.get("identifiers") or {}
    keys = set()
    if isinstance(identifiers, dict):
        for kind in STRONG:
            value = normalised_identifier(kind, identifiers.get(kind))
            if value:
                keys.add(f"{kind}:{value}")
    same = record.get("sameAs")
    if isinstance(same, list):
        keys.update(f"same:{other}" for other in same if isinstance(other, str) and other != record.get("id"))
    return tuple(sorted(keys))


def _chunks(items: list, size: int = _CHUNK):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _in(conn: sqlite3.Connection, sql: str, ids: Iterable) -> list[tuple]:
    """Rows of `sql` (one `{marks}` IN list) over all ids, in chunks."""
    rows: list[tuple] = []
    for chunk in _chunks(list(ids)):
        rows += conn.execute(sql.format(marks=",".join("?" * len(chunk))), chunk).fetchall()
    return rows


# --- writes (called by writes.py in the caller's transaction) ---------------------------------

def write_keys(conn: sqlite3.Connection, actor_flats: list, held: Iterable[str]) -> None:
    """Store the keys of flattened actors (`flat[8]`), replacing those of already held actors that changed."""
    held = set(held)
    old: dict[str, set] = {}
    for actor_id, key in _in(conn, "SELECT actor_id, key FROM organisation_keys WHERE actor_id IN ({marks})",
                             [f[1] for f in actor_flats if f[1] in held]):
        old.setdefault(actor_id, set()).add(key)
    clear, rows = [], []
    for flat in actor_flats:
        keys = set(flat[8])
        was = old.get(flat[1], set())
        if keys == was:
            continue
        if was:
            clear.append(flat[1])
        rows += [(key, flat[1]) for key in keys]
    clear_keys(conn, clear)
    if rows:
        conn.executemany("INSERT OR IGNORE INTO organisation_keys (key, actor_id) VALUES (?, ?)", rows)


def clear_keys(conn: sqlite3.Connection, actor_ids: list[str]) -> None:
    for chunk in _chunks(list(actor_ids)):
        conn.execute(f"DELETE FROM organisation_keys WHERE actor_id IN ({','.join('?' * len(chunk))})", chunk)


# --- grouping -----------------------------------------------------------------------------------

class _UnionFind:
    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            self.parent[rb] = ra  # the smaller id is the root: groups do not depend on the order of unions


def _groups(members: Iterable[str], key_rows: Iterable[tuple[str, str]], live: set[str]) -> dict[str, list[str]]:
    """organisation id (smallest member) -> sorted member ids, from (key, actor_id) rows of live actors."""
    uf = _UnionFind()
    first: dict[str, str] = {}
    for key, actor_id in key_rows:
        if actor_id not in live:
            continue
        if key in first:
            uf.union(first[key], actor_id)
        else:
            first[key] = actor_id
        if key.startswith("same:") and key[5:] in live:
            uf.union(actor_id, key[5:])
    groups: dict[str, list[str]] = {}
    for actor_id in members:
        groups.setdefault(uf.find(actor_id), []).append(actor_id)
    return {min(ids): sorted(ids) for ids in groups.values()}


def _reachable(conn: sqlite3.Connection, seeds: set[str]) -> set[str]:
    """The live actors connected to `seeds` through shared keys or sameAs (seeds included, when live)."""
    reached = {row[0] for row in _in(conn, "SELECT id FROM actors WHERE id IN ({marks})", seeds)}
    frontier = set(reached)
    while frontier:
        found = set()
        found.update(r[0] for r in _in(conn, "SELECT k2.actor_id FROM organisation_keys k1 JOIN organisation_keys k2"
                                             " ON k2.key = k1.key WHERE k1.actor_id IN ({marks})", frontier))
        found.update(r[0] for r in _in(conn, "SELECT actor_id FROM organisation_keys WHERE key IN ({marks})",
                                       [f"same:{a}" for a in frontier]))
        found.update(r[0] for r in _in(conn, "SELECT a.id FROM organisation_keys k JOIN actors a"
                                             " ON a.id = substr(k.key, 6) WHERE k.actor_id IN ({marks})"
                                             " AND k.key >= 'same:' AND k.key < 'same;'", frontier))
        frontier = found - reached
        reached |= frontier
    return reached


def _add(deltas: dict, key: tuple, n: int) -> None:
    deltas[key] = deltas.get(key, 0) + n


def _delete(conn: sqlite3.Connection, organisation_ids: list[str], actor_ids: list[str], deltas: dict) -> None:
    """Remove organisations (subtracting them from the counts) and the membership of these actors."""
    for region, n in _in(conn, "SELECT coalesce(region, ''), count(*) FROM organisations WHERE id IN ({marks})"
                               " GROUP BY 1", organisation_ids):
        _add(deltas, (region, "", ""), -n)
    for dimension, table, column in (("sector", "organisation_sectors", "sector"),
                                     ("stage", "organisation_value_chain", "stage")):
        for region, value, n in _in(conn, f"SELECT coalesce(region, ''), {column}, count(*) FROM {table}"
                                          " WHERE organisation_id IN ({marks}) GROUP BY 1, 2", organisation_ids):
            _add(deltas, (region, dimension, value), -n)
        # an organisation is in each chunk once: the chunks' distinct counts add up
        for region, n in _in(conn, f"SELECT coalesce(region, ''), count(DISTINCT organisation_id) FROM {table}"
                                   " WHERE organisation_id IN ({marks}) GROUP BY 1", organisation_ids):
            _add(deltas, (region, dimension, KNOWN), -n)
    for table in ("organisations", "organisation_sectors", "organisation_value_chain", "organisation_disagreements"):
        column = "id" if table == "organisations" else "organisation_id"
        for chunk in _chunks(organisation_ids):
            conn.execute(f"DELETE FROM {table} WHERE {column} IN ({','.join('?' * len(chunk))})", chunk)
    for chunk in _chunks(actor_ids):
        conn.execute(f"DELETE FROM organisation_records WHERE actor_id IN ({','.join('?' * len(chunk))})", chunk)


_ACTOR_FIELDS = "id, name, actor_type, country, region, region_name, city, sectors, value_chain_stages, ror, pic, " \
                "wikidata, node_id"


_FIELD_INDEX = {name.strip(): n for n, name in enumerate(_ACTOR_FIELDS.split(","))}


def _split(value: str | None) -> list[str]:
    return value.split(", ") if value else []


def _write_groups(conn: sqlite3.Connection, groups: dict[str, list[str]], keys: dict[str, set], deltas: dict) -> None:
    """Insert the organisations of several records each (a few percent of them), their records, disagreements,
    junction rows and counts: the union of their lists, their identifiers, what ties each record to the others."""
    members = [a for ids in groups.values() for a in ids]
    actors = {row[0]: tuple(row) for row in _in(conn, f"SELECT {_ACTOR_FIELDS} FROM actors WHERE id IN ({{marks}})",
                                                members)}
    organisations, records, disagreements, sectors, stages = [], [], [], [], []
    for organisation_id, ids in groups.items():
        rows = [actors[a] for a in ids]
        first = actors[organisation_id]
        country, region, actor_type = first[3], first[4], first[2]
        union = {column: sorted({v for row in rows for v in _split(row[7 + n])}) for n, column in enumerate(_LISTS)}
        ident = dict.fromkeys(STRONG)
        found: dict[str, set] = {}
        for a in ids:
            for k in keys.get(a, ()):
                kind, _, value = k.partition(":")
                if kind in ident:
                    found.setdefault(kind, set()).add(value)
        for kind, values in found.items():
            ident[kind] = ", ".join(sorted(values))
        differing = []
        for column in COMPARED:
            n = _FIELD_INDEX[column]
            shown = [", ".join(sorted(_split(row[n]))) if column in _LISTS else row[n] for row in rows]
            if len(set(shown)) > 1:
                differing.append(column)
                disagreements += [(organisation_id, column, row[0], row[12], value) for row, value in zip(rows, shown)]
        node_ids = sorted({row[12] for row in rows if row[12]})
        organisations.append((organisation_id, first[1], actor_type, country, region, first[5], first[6],
                              ", ".join(union["sectors"]) or None, ", ".join(union["value_chain_stages"]) or None,
                              ident["ror"], ident["pic"], ident["vat"], ident["wikidata"], len(ids), len(node_ids),
                              ", ".join(node_ids) or None, ", ".join(differing) or None))
        region_key = region or ""
        _add(deltas, (region_key, "", ""), 1)
        for dimension, values, into in (("sector", union["sectors"], sectors),
                                         ("stage", union["value_chain_stages"], stages)):
            for value in values:
                into.append((organisation_id, value, country, region, actor_type))
                _add(deltas, (region_key, dimension, value), 1)
            if values:
                _add(deltas, (region_key, dimension, KNOWN), 1)
        group = set(ids)
        for a in ids:
            mine = keys.get(a, set())
            others = {k for b in ids if b != a for k in keys.get(b, ())}
            # what ties this record to the others: a key another has, a sameAs naming one, one naming it
            tied = {k for k in mine if k in others or (k.startswith("same:") and k[5:] in group)}
            tied |= {f"same:{b}" for b in ids if b != a and f"same:{a}" in keys.get(b, ())}
            records.append((a, organisation_id, actors[a][12], ", ".join(sorted(tied)) or None))
    conn.executemany("INSERT INTO organisations (id, name, actor_type, country, region, region_name, city, sectors,"
                     " value_chain_stages, ror, pic, vat, wikidata, records, nodes, node_ids, disagreements)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", organisations)
    conn.executemany("INSERT INTO organisation_records (actor_id, organisation_id, node_id, shared_keys)"
                     " VALUES (?, ?, ?, ?)", records)
    conn.executemany("INSERT INTO organisation_disagreements (organisation_id, field, actor_id, node_id, value)"
                     " VALUES (?, ?, ?, ?, ?)", disagreements)
    conn.executemany("INSERT INTO organisation_sectors (organisation_id, sector, country, region, actor_type)"
                     " VALUES (?, ?, ?, ?, ?)", sectors)
    conn.executemany("INSERT INTO organisation_value_chain (organisation_id, stage, country, region, actor_type)"
                     " VALUES (?, ?, ?, ?, ?)", stages)


def _ident(kind: str) -> str:
    """The value of an actor's `kind` key (an actor has at most one of each kind)."""
    return (f"(SELECT substr(k.key, {len(kind) + 2}) FROM organisation_keys k WHERE k.actor_id = a.id"
            f" AND k.key >= '{kind}:' AND k.key < '{kind};')")


def _write_singles(conn: sqlite3.Connection, actors: str, junction: str, deltas: dict | None) -> None:
    """Organisations of one record (most of them), set-based: the record's own values, no row through Python.

    `actors` is a FROM clause naming them `a`; `junction` one naming their actor_sectors or actor_value_chain
    rows `s` (its `{source}`), which repeat the actor's country, region and type. deltas None: no counts (a
    full regroup counts afterwards).
    """
    conn.execute("INSERT INTO organisations (id, name, actor_type, country, region, region_name, city, sectors,"
                 " value_chain_stages, ror, pic, vat, wikidata, records, nodes, node_ids, disagreements)"
                 " SELECT a.id, a.name, a.actor_type, a.country, a.region, a.region_name, a.city, a.sectors,"
                 f" a.value_chain_stages, {_ident('ror')}, {_ident('pic')}, {_ident('vat')}, {_ident('wikidata')},"
                 f" 1, a.node_id IS NOT NULL, a.node_id, NULL FROM {actors}")
    conn.execute("INSERT INTO organisation_records (actor_id, organisation_id, node_id, shared_keys)"
                 f" SELECT a.id, a.id, a.node_id, NULL FROM {actors}")
    for table, column, dimension, source in (("organisation_sectors", "sector", "sector", "actor_sectors"),
                                             ("organisation_value_chain", "stage", "stage", "actor_value_chain")):
        rows = junction.format(source=source)
        conn.execute(f"INSERT INTO {table} (organisation_id, {column}, country, region, actor_type)"
                     f" SELECT s.actor_id, s.{column}, s.country, s.region, s.actor_type FROM {rows}")
        if deltas is None:
            continue
        for region, value, n in conn.execute(f"SELECT coalesce(s.region, ''), s.{column}, count(*) FROM {rows}"
                                             " GROUP BY 1, 2"):
            _add(deltas, (region, dimension, value), n)
        for region, n in conn.execute(f"SELECT coalesce(s.region, ''), count(DISTINCT s.actor_id) FROM {rows}"
                                      " GROUP BY 1"):
            _add(deltas, (region, dimension, KNOWN), n)
    if deltas is not None:
        for region, n in conn.execute(f"SELECT coalesce(a.region, ''), count(*) FROM {actors} GROUP BY 1"):
            _add(deltas, (region, "", ""), n)


def _apply(conn: sqlite3.Connection, deltas: dict) -> None:
    rows = [(*key, n) for key, n in deltas.items() if n]
    if rows:
        conn.executemany(
            "INSERT INTO organisation_counts (region, dimension, value, organisations) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (region, dimension, value) DO UPDATE SET organisations = organisations + excluded.organisations",
            rows)
    conn.execute("DELETE FROM organisation_counts WHERE organisations = 0")


def _keys_of(conn: sqlite3.Connection, actor_ids) -> tuple[list[tuple[str, str]], dict[str, set]]:
    rows = [tuple(row) for row in _in(conn, "SELECT key, actor_id FROM organisation_keys WHERE actor_id IN ({marks})",
                                      actor_ids)]
    keys: dict[str, set] = {}
    for key, actor_id in rows:
        keys.setdefault(actor_id, set()).add(key)
    return rows, keys


# The keys that can group records: those held by more than one actor, and sameAs keys naming a
# held actor (target). Every key of organisation_keys belongs to a held actor (writes.py clears an
# actor's keys with its rows), and most keys are one actor's: they never reach Python.
_GROUPING_KEYS = """
SELECT key, actor_id, NULL FROM organisation_keys
 WHERE key IN (SELECT key FROM organisation_keys GROUP BY key HAVING count(*) > 1)
UNION ALL
SELECT k.key, k.actor_id, a.id FROM organisation_keys k JOIN actors a ON a.id = substr(k.key, 6)
 WHERE k.key >= 'same:' AND k.key < 'same;'
"""

# organisation_counts from the grouped tables (a full regroup), the conventions of profile_counts:
# region '' = none; dimension '' = all organisations; value '' = those with a value in the dimension.
_COUNTS = """
DELETE FROM organisation_counts;
INSERT INTO organisation_counts (region, dimension, value, organisations)
 SELECT coalesce(region, ''), '', '', count(*) FROM organisations GROUP BY 1;
INSERT INTO organisation_counts (region, dimension, value, organisations)
 SELECT coalesce(region, ''), 'sector', sector, count(*) FROM organisation_sectors
 GROUP BY coalesce(region, ''), sector;
INSERT INTO organisation_counts (region, dimension, value, organisations)
 SELECT coalesce(region, ''), 'stage', stage, count(*) FROM organisation_value_chain
 GROUP BY coalesce(region, ''), stage;
INSERT INTO organisation_counts (region, dimension, value, organisations)
 SELECT coalesce(region, ''), 'sector', '', count(DISTINCT organisation_id) FROM organisation_sectors GROUP BY 1;
INSERT INTO organisation_counts (region, dimension, value, organisations)
 SELECT coalesce(region, ''), 'stage', '', count(DISTINCT organisation_id) FROM organisation_value_chain GROUP BY 1;
"""


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def rebuild(conn: sqlite3.Connection) -> None:
    """Group every actor afresh: the grouped tables' indexes are dropped, the organisations of one record
    copied with INSERT ... SELECT, those of several written from Python, the indexes built once, then counted."""
    for name in _INDEX_NAMES:
        conn.execute(f"DROP INDEX IF EXISTS [{name}]")
    for table in ("organisations", "organisation_records", "organisation_disagreements", "organisation_sectors",
                  "organisation_value_chain", "organisation_counts"):
        conn.execute(f"DELETE FROM {table}")
    uf = _UnionFind()
    first: dict[str, str] = {}
    members: set[str] = set()
    for key, actor_id, target in conn.execute(_GROUPING_KEYS):
        members.add(actor_id)
        if target is not None:
            members.add(target)
            uf.union(actor_id, target)
        elif key in first:
            uf.union(first[key], actor_id)
        else:
            first[key] = actor_id
    groups: dict[str, list[str]] = {}
    for actor_id in sorted(members):
        groups.setdefault(uf.find(actor_id), []).append(actor_id)
    _, keys = _keys_of(conn, members)
    _write_groups(conn, {ids[0]: ids for ids in groups.values()}, keys, {})
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS organisation_member (actor_id TEXT PRIMARY KEY) WITHOUT ROWID")
    conn.execute("DELETE FROM temp.organisation_member")
    conn.executemany("INSERT INTO temp.organisation_member (actor_id) VALUES (?)", [(a,) for a in sorted(members)])
    not_member = "NOT IN (SELECT actor_id FROM temp.organisation_member)"
    _write_singles(conn, f"actors a WHERE a.id {not_member}", f"{{source}} s WHERE s.actor_id {not_member}", None)
    conn.execute("DELETE FROM temp.organisation_member")
    for statement in _statements(INDEXES):
        conn.execute(statement)
    recount(conn)


def _write_touched(conn: sqlite3.Connection, groups: dict[str, list[str]], keys: dict[str, set], deltas: dict) -> None:
    """Insert the regrouped organisations of an update: its single-record ones by id, the others from Python."""
    single = [ids[0] for ids in groups.values() if len(ids) == 1]
    if single:
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS organisation_single (id TEXT PRIMARY KEY) WITHOUT ROWID")
        conn.execute("DELETE FROM temp.organisation_single")
        conn.executemany("INSERT INTO temp.organisation_single (id) VALUES (?)", [(i,) for i in single])
        # CROSS JOIN: SQLite keeps the listed order, so the few ids drive the lookups (never a scan of all actors)
        _write_singles(conn, "temp.organisation_single o CROSS JOIN actors a ON a.id = o.id",
                       "temp.organisation_single o CROSS JOIN {source} s ON s.actor_id = o.id", deltas)
        conn.execute("DELETE FROM temp.organisation_single")
    _write_groups(conn, {o: ids for o, ids in groups.items() if len(ids) > 1}, keys, deltas)


def update(conn: sqlite3.Connection, touched: Iterable[str]) -> None:
    """Regroup only what the touched record ids can change: their old organisations' members and every actor
    reachable from those through shared keys."""
    touched = list(touched)
    old_organisations = {r[0] for r in _in(conn, "SELECT organisation_id FROM organisation_records"
                                                 " WHERE actor_id IN ({marks})", touched)}
    seeds = set(touched) | {r[0] for r in _in(conn, "SELECT actor_id FROM organisation_records"
                                                    " WHERE organisation_id IN ({marks})", old_organisations)}
    reached = _reachable(conn, seeds)
    old_organisations |= {r[0] for r in _in(conn, "SELECT organisation_id FROM organisation_records"
                                                  " WHERE actor_id IN ({marks})", reached)}
    gone = [r[0] for r in _in(conn, "SELECT actor_id FROM organisation_records WHERE organisation_id IN ({marks})",
                              old_organisations)]
    deltas: dict = {}
    _delete(conn, sorted(old_organisations), sorted(set(gone) | reached), deltas)
    rows, keys = _keys_of(conn, reached)
    _write_touched(conn, _groups(sorted(reached), rows, reached), keys, deltas)
    _apply(conn, deltas)


# --- older catalogues ----------------------------------------------------------------------------

def keys_missing(conn: sqlite3.Connection) -> bool:
    """True for a catalogue written before the organisations: actors, but no organisation_keys table yet.
    (Asked before ensure_schema creates the table.)"""
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                            " AND name IN ('actors', 'organisation_keys')")}
    return names == {"actors"}


def add_missing_keys(conn: sqlite3.Connection) -> int:
    """Write the keys of every actor, once, for a catalogue that has none; returns the number of keys.

    From the record the aggregator holds (records.signed_json: VAT and sameAs are in no actor column),
    else from the actor row's identifier columns (ROR, PIC, Wikidata). In the caller's transaction.
    """
    has_records = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'records'").fetchone()
    signed = "(SELECT r.signed_json FROM records r WHERE r.id = a.id)" if has_records else "NULL"
    rows = conn.execute(f"SELECT a.id, a.ror, a.pic, a.wikidata, {signed} FROM actors a").fetchall()
    written = 0
    for chunk in _chunks(rows, 2000):
        keys = []
        for actor_id, ror, pic, wikidata, signed_json in chunk:
            try:
                record = json.loads(signed_json) if signed_json else None
            except ValueError:
                record = None
            if not isinstance(record, dict) or record.get("id") != actor_id:
                record = {"id": actor_id, "identifiers": {"ror": ror, "pic": pic, "wikidata": wikidata}}
            keys += [(key, actor_id) for key in organisation_keys(record)]
        conn.executemany("INSERT OR IGNORE INTO organisation_keys (key, actor_id) VALUES (?, ?)", keys)
        written += len(keys)
    return written


def counts_outdated(conn: sqlite3.Connection) -> bool:
    """organisation_counts written before it had the 'with data' rows (value ''): counted again."""
    return bool(conn.execute(
        "SELECT EXISTS (SELECT 1 FROM organisation_counts c WHERE c.dimension != '' AND c.value != ''"
        " AND NOT EXISTS (SELECT 1 FROM organisation_counts k WHERE k.region = c.region"
        " AND k.dimension = c.dimension AND k.value = ''))").fetchone()[0])


def recount(conn: sqlite3.Connection) -> None:
    for statement in _statements(_COUNTS):
        conn.execute(statement)


def finalise(conn: sqlite3.Connection, *, incremental: bool) -> None:
    """After a harvest (catalogue.finalise): incremental from finalise_touched, else a full rebuild."""
    if incremental:
        update(conn, [row[0] for row in conn.execute("SELECT id FROM finalise_touched")])
    else:
        rebuild(conn)
