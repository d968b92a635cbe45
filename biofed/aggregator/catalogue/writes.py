"""Incremental writes: upserts (only what changed), deletes, stale flags, in the caller's transaction.

Each write also keeps profile_counts and finalise_touched up to date, so that
finalise can be incremental. Nothing here commits.
"""

from __future__ import annotations

import sqlite3
from typing import Iterable

from biofed.aggregator.catalogue import organisations
from biofed.aggregator.catalogue.flatten import ACTOR_COLUMNS, OFFER_COLUMNS, PROJECT_COLUMNS, flatten


# profile_counts' value for "actors with at least one value in this dimension" (the coverage a
# specialisation index is computed over); real sector and stage codes are never empty.
KNOWN = ""


def _placeholders(n: int) -> str:
    return ", ".join("?" * n)


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
    "contribution_eur, ror, pic, stated_region) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
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
                known = set()  # (actor, region): the actor counted among its region's actors with data
                for actor_id, region, value in conn.execute(
                        f"SELECT actor_id, region, {column} FROM {table} WHERE actor_id IN ({amarks})", actors):
                    key = (region if region is not None else "", dimension, value)
                    deltas[key] = deltas.get(key, 0) - 1
                    known.add((actor_id, key[0]))
                for _, region_key in known:
                    key = (region_key, dimension, KNOWN)
                    deltas[key] = deltas.get(key, 0) - 1
                conn.execute(f"DELETE FROM {table} WHERE actor_id IN ({amarks})", actors)
            conn.execute(f"DELETE FROM actor_technologies WHERE actor_id IN ({amarks})", actors)
            organisations.clear_keys(conn, actors)
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
_PARTICIPATION_COLUMNS = ("project_id, position, actor_ref, partner_name, partner_country, role, contribution_eur, ror, pic, "
                          "stated_region")
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
                for dimension, values in (("sector", flat[5]), ("stage", flat[6])):
                    if values:
                        count((region_key, dimension, KNOWN), 1)
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
                    was_region = was[0][3]
                    count((was_region if was_region is not None else "", dimension, KNOWN), -1)
                for value in values:
                    count((region_key, dimension, value), 1)
                if values:
                    count((region_key, dimension, KNOWN), 1)
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
    organisations.write_keys(conn, [f for f in flats if f[0] == "Actor"], held_actors)
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
