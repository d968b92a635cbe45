"""The harvester's tables in the catalogue database.

Public (Datasette shows them): `nodes`, `records`, `changes`, `rejections`,
`harvest_runs`, `registry_state`. Internal: `harvest_flags` (a finalise is pending; a bulk load is in progress), `node_state` (the Merkle frontier
per node) and `tombstones` (the last deleted version of each id, so an old
signed version cannot be replayed to resurrect a deleted record).

Every write the harvester makes to these tables happens inside one SQLite
transaction per log page, so a crash leaves them consistent.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from biofed.trust.times import utc_now  # noqa: F401  (state.utc_now: the time every row is stamped with)

SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    id TEXT PRIMARY KEY,
    name TEXT,
    country TEXT,
    region TEXT,
    base_url TEXT,
    licence TEXT,
    attribution TEXT,
    status TEXT,
    health TEXT,
    last_attempt TEXT,
    last_success TEXT,
    records INTEGER NOT NULL DEFAULT 0,
    cursor INTEGER NOT NULL DEFAULT 0,
    tree_size INTEGER NOT NULL DEFAULT 0,
    root_hash TEXT,
    checkpoint_timestamp TEXT,
    error TEXT,
    stale_since TEXT,
    mass_delete_pending INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS node_state (
    node_id TEXT PRIMARY KEY,
    frontier BLOB NOT NULL DEFAULT x'',
    frontier_size INTEGER NOT NULL DEFAULT 0,
    registry_version INTEGER,
    checkpoint_etag TEXT,
    checkpoint_note TEXT
);
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    type TEXT,
    version INTEGER NOT NULL,
    date_modified TEXT,
    verified_at TEXT,
    signed_json TEXT NOT NULL,
    record_url TEXT,
    stale INTEGER NOT NULL DEFAULT 0,
    stale_since TEXT
);
CREATE INDEX IF NOT EXISTS records_node_id ON records(node_id);
CREATE INDEX IF NOT EXISTS records_stale ON records(node_id) WHERE stale = 1;
CREATE TABLE IF NOT EXISTS tombstones (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted_at TEXT
);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    op TEXT NOT NULL,
    version INTEGER,
    at TEXT NOT NULL
);
-- The signed bytes of every version `records` no longer holds (superseded or deleted), so a
-- change-feed page serves each put with the bytes of its own version, forever. Filled by the
-- triggers below: nothing is written for a record's first version, one row when it is replaced.
CREATE TABLE IF NOT EXISTS record_versions (
    record_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    signed_json TEXT NOT NULL,
    PRIMARY KEY (record_id, version)
);
CREATE TRIGGER IF NOT EXISTS records_keep_replaced BEFORE UPDATE OF signed_json ON records
WHEN old.signed_json IS NOT new.signed_json BEGIN
  INSERT OR IGNORE INTO record_versions (record_id, version, signed_json) VALUES (old.id, old.version, old.signed_json);
END;
CREATE TRIGGER IF NOT EXISTS records_keep_deleted BEFORE DELETE ON records BEGIN
  INSERT OR IGNORE INTO record_versions (record_id, version, signed_json) VALUES (old.id, old.version, old.signed_json);
END;
CREATE TABLE IF NOT EXISTS rejections (
    id INTEGER PRIMARY KEY,
    run_id INTEGER,
    node_id TEXT,
    seq INTEGER,
    record_id TEXT,
    reason TEXT NOT NULL,
    message TEXT,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rejections_node_id ON rejections(node_id);
CREATE TABLE IF NOT EXISTS harvest_runs (
    id INTEGER PRIMARY KEY,
    node_id TEXT,
    started TEXT,
    finished TEXT,
    status TEXT,
    entries INTEGER NOT NULL DEFAULT 0,
    accepted INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE INDEX IF NOT EXISTS harvest_runs_node_id ON harvest_runs(node_id);
CREATE TABLE IF NOT EXISTS harvest_flags (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS registry_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER,
    accepted_at TEXT,
    registry_keys TEXT,
    error TEXT
);
"""

# Tables a public catalogue should not expose (Datasette metadata hides them).
INTERNAL_TABLES = ("node_state", "tombstones", "harvest_flags", "profile_counts", "finalise_touched", "catalogue_state")


def connect(db_path: str | Path) -> sqlite3.Connection:
    """Open the catalogue database for harvesting: WAL, explicit transactions."""
    conn = sqlite3.connect(str(db_path), isolation_level=None, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL is durable across application crashes in WAL mode (only an OS
    # crash may lose the last commits, never consistency).
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=OFF")
    ensure_schema(conn)
    return conn


def ensure_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


class transaction:
    """`with transaction(conn): ...` — BEGIN IMMEDIATE, COMMIT, or ROLLBACK on any error."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")
        return False


def node_row(conn: sqlite3.Connection, node_id: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM nodes WHERE id = ?", (node_id,)).fetchone()


def node_state_row(conn: sqlite3.Connection, node_id: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM node_state WHERE node_id = ?", (node_id,)).fetchone()


def registry_state(conn: sqlite3.Connection) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM registry_state WHERE id = 1").fetchone()


def status_rows(conn: sqlite3.Connection) -> list[dict]:
    """One dict per node, for `biofed aggregator status`."""
    rows = conn.execute(
        "SELECT id, name, status, health, last_success, last_attempt, records, cursor, tree_size,"
        " checkpoint_timestamp, error, stale_since, mass_delete_pending FROM nodes ORDER BY id"
    ).fetchall()
    return [dict(row) for row in rows]


def finalise_pending(conn: sqlite3.Connection) -> bool:
    """True when a run changed the catalogue since its last finalise (set in the same transaction as the change)."""
    row = conn.execute("SELECT value FROM harvest_flags WHERE name = 'finalise'").fetchone()
    return row is None or bool(row[0])  # a database without the flag has never been finalised


def set_finalise_pending(conn: sqlite3.Connection, pending: bool) -> None:
    conn.execute("INSERT INTO harvest_flags (name, value) VALUES ('finalise', ?)"
                 " ON CONFLICT(name) DO UPDATE SET value = excluded.value", (1 if pending else 0,))


def bulk_pending(conn: sqlite3.Connection) -> bool:
    """True while a bulk load's indexes, FTS and triggers are still to be rebuilt (set with their DROP)."""
    row = conn.execute("SELECT value FROM harvest_flags WHERE name = 'bulk'").fetchone()
    return bool(row and row[0])


def set_bulk_pending(conn: sqlite3.Connection, pending: bool) -> None:
    conn.execute("INSERT INTO harvest_flags (name, value) VALUES ('bulk', ?)"
                 " ON CONFLICT(name) DO UPDATE SET value = excluded.value", (1 if pending else 0,))
