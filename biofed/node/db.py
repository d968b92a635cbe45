"""The node database: one SQLite file in WAL mode.

synchronous=FULL: a commit is on disk before the node serves the checkpoint
that covers it. With NORMAL a power cut could drop the last commits after an
aggregator already saw their checkpoint; the node would then sign different
entries at the same positions, which aggregators (rightly) treat as a
rewritten log. Bulk imports are one transaction, so the extra fsync is paid
once per import, not per record.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    version INTEGER NOT NULL,
    content_hash BLOB NOT NULL,   -- SHA-256 of JCS(content without version, dateModified, proof)
    signed BLOB NOT NULL,         -- JCS(signed record) = the log leaf = the served bytes
    deleted INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL REFERENCES log(seq)
);
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY,      -- 1, 2, 3, ...; leaf index = seq - 1
    record_id TEXT NOT NULL,
    leaf BLOB NOT NULL,
    leaf_hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS tree (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL,
    compact_range BLOB NOT NULL   -- the O(log n) perfect-subtree roots: append and root without reading the log
);
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY,     -- the latest signed note per tree size
    root BLOB NOT NULL,
    timestamp TEXT NOT NULL,
    kid TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS keys (
    kid TEXT PRIMARY KEY,
    jwk TEXT NOT NULL,            -- public JWK
    status TEXT NOT NULL CHECK (status IN ('active', 'retired', 'revoked')),
    valid_from TEXT NOT NULL,
    valid_until TEXT,
    compromised_since TEXT
);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY,        -- hex SHA-256 of the token; the token itself is never stored
    name TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,         -- space-separated
    created TEXT NOT NULL,
    revoked TEXT
);
"""

# The web console's own tables (biofed/node/console): staff accounts, their sessions, failed logins,
# pending spreadsheet uploads and the audit trail. Private to the node: never in a feed, a record,
# the snapshot or the catalogue. CREATE ... IF NOT EXISTS: `migrate` adds them to an older node.db.
CONSOLE_SCHEMA = """
CREATE TABLE IF NOT EXISTS console_users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('editor', 'admin')),
    password TEXT,                -- scrypt$n$r$p$salt$hash; NULL until the setup link is used
    setup_hash TEXT,              -- hex SHA-256 of the one-time setup token; NULL once used
    setup_expires TEXT,
    created TEXT NOT NULL,
    disabled TEXT
);
CREATE TABLE IF NOT EXISTS console_sessions (
    hash TEXT PRIMARY KEY,        -- hex SHA-256 of the session cookie; the cookie itself is never stored
    user TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created TEXT NOT NULL,
    seen TEXT NOT NULL,
    expires TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS console_logins (
    name TEXT PRIMARY KEY,        -- the account name tried (known or not)
    failures INTEGER NOT NULL,
    last_failure TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS console_uploads (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    created TEXT NOT NULL,
    filename TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS console_audit (
    id INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    user TEXT NOT NULL,
    action TEXT NOT NULL,         -- created, updated, deleted, restored, imported, user-added, token-created, ...
    record_id TEXT,
    version INTEGER,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS console_audit_record ON console_audit (record_id);
CREATE INDEX IF NOT EXISTS log_record ON log (record_id);  -- a record's versions, for the console's history
"""


def connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN IMMEDIATE ourselves so a write
    # takes the lock before it reads the state it builds on.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=OFF")
    return conn


def create(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)
    migrate(conn)


def migrate(conn: sqlite3.Connection) -> None:
    """Add what a node.db made by an older version lacks (only additions: tables and indexes)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'log_record'").fetchone() is None:
        conn.executescript(CONSOLE_SCHEMA)
