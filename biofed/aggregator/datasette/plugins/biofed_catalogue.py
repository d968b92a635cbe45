"""The catalogue's own Datasette plugin: resource limits, read-connection tuning, facet de-duplication and the open feeds."""

from __future__ import annotations

import sqlite3
from urllib.parse import unquote, unquote_plus

from datasette import hookimpl

# Public SQL is read-only but not resource-safe: without this,
# `select length(randomblob(400000000))` allocates 400 MB. Records are at most
# 64 KiB, so 5 MB leaves room for any legitimate value or group_concat.
MAX_VALUE_BYTES = 5_000_000


# Datasette keeps one read connection per SQL thread (num_sql_threads = 3) for
# the life of the process. SQLite's default page cache is 2 MB, smaller than
# one facet's index range at 1M actors, so every facet re-read its pages from
# the OS. 64 MB per connection keeps the facet indexes hot (at most 192 MB).
CACHE_SIZE_KIB = 65_536


@hookimpl
def prepare_connection(conn: sqlite3.Connection) -> None:
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
    conn.execute(f"PRAGMA cache_size = -{CACHE_SIZE_KIB}")


# Datasette 0.65 runs one facet query per facet *config*: a facet that is a
# table default (metadata.yml) and also asked for with ?_facet= is computed
# twice and shown twice ("country" and "country_2"). At 1M actors each facet is
# a ~50 ms GROUP BY, so ?_facet=country&_facet=actor_type on the actors table
# cost four of them instead of two. Drop the redundant ?_facet= before
# Datasette sees the request: the answer is the same facets, once each.
_TABLE_FORMATS = (".json", ".csv", ".tsv", ".atom", ".geojson")


def _without_default_facets(datasette, path: str, query: bytes) -> bytes:
    parts = path.strip("/").split("/")
    if len(parts) != 2 or parts[0] not in datasette.databases:
        return query
    table = parts[1]
    for suffix in _TABLE_FORMATS:
        if table.endswith(suffix):
            table = table[: -len(suffix)]
            break
    from datasette.utils import tilde_decode

    table = tilde_decode(unquote(table))
    defaults = {
        f for f in (datasette.table_metadata(parts[0], table) or {}).get("facets", []) if isinstance(f, str)
    }
    if not defaults:
        return query
    # Work on the raw segments: everything but a redundant _facet stays byte for byte.
    segments = query.split(b"&")
    kept = [s for s in segments if not _is_facet_on(s, defaults)]
    return query if len(kept) == len(segments) else b"&".join(kept)


def _is_facet_on(segment: bytes, columns: set[str]) -> bool:
    key, _, value = segment.partition(b"=")
    # unquote_plus decodes UTF-8 percent-escapes; raw non-ASCII bytes cannot name a column here.
    return (unquote_plus(key.decode("ascii", "replace")) == "_facet"
            and unquote_plus(value.decode("ascii", "replace")) in columns)


@hookimpl
def asgi_wrapper(datasette):
    def wrap(app):
        async def dedupe_facets(scope, receive, send):
            if scope.get("type") == "http" and b"_facet" in scope.get("query_string", b""):
                query = _without_default_facets(datasette, scope.get("path", ""), scope["query_string"])
                if query is not scope["query_string"]:
                    scope = {**scope, "query_string": query}
            await app(scope, receive, send)

        return dedupe_facets

    return wrap


@hookimpl
def register_routes():
    from biofed.aggregator import feeds

    return feeds.ROUTES
