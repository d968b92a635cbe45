"""Flatten verified records into the public catalogue tables.

The aggregator owns the raw tables (`nodes`, `records`, `changes`, ...) and
calls this package inside its per-page transaction:

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

Modules: tables (definitions, schema creation and migration, bulk mode),
regions (NUTS reference data), flatten (pure: record -> rows), writes
(incremental upserts, deletes, stale flags), finalise, inspect_file (serving).
"""

from biofed.aggregator.catalogue.finalise import finalise
from biofed.aggregator.catalogue.flatten import ACTOR_COLUMNS, OFFER_COLUMNS, PROJECT_COLUMNS, flatten
from biofed.aggregator.catalogue.inspect_file import build_inspect_file
from biofed.aggregator.catalogue.tables import (
    FTS_COLUMNS, INDEXES, TABLES, bulk_begin, bulk_finish, ensure_schema, public_tables_empty,
)
from biofed.aggregator.catalogue.writes import (
    delete_record, delete_records, set_node_stale, set_records_stale, upsert_flat, upsert_record,
)

__all__ = [
    "ACTOR_COLUMNS", "FTS_COLUMNS", "INDEXES", "OFFER_COLUMNS", "PROJECT_COLUMNS", "TABLES",
    "build_inspect_file", "bulk_begin", "bulk_finish", "delete_record", "delete_records", "ensure_schema",
    "finalise", "flatten", "public_tables_empty", "set_node_stale", "set_records_stale", "upsert_flat",
    "upsert_record",
]
