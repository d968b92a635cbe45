"""The catalogue's own Datasette plugin: resource limits and the open feeds."""

from __future__ import annotations

import sqlite3

from datasette import hookimpl

# Public SQL is read-only but not resource-safe: without this,
# `select length(randomblob(400000000))` allocates 400 MB. Records are at most
# 64 KiB, so 5 MB leaves room for any legitimate value or group_concat.
MAX_VALUE_BYTES = 5_000_000


@hookimpl
def prepare_connection(conn: sqlite3.Connection) -> None:
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)


@hookimpl
def register_routes():
    from biofed.aggregator import feeds

    return feeds.ROUTES
