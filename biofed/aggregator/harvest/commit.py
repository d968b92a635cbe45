"""Commit one verified log page: records, catalogue rows, changes, rejections, cursor and frontier.

The caller wraps each call in one transaction (state.transaction), so a page
is in the catalogue completely or not at all, and the node's cursor moves with
it: a crash leaves the catalogue consistent and the next run continues there.
A record's version must rise above the held one (or its tombstone's); the same
signed bytes again are skipped, anything else is a `replayed-version` rejection.
"""

from __future__ import annotations

import orjson

from biofed.aggregator import state
from biofed.aggregator.checks import CONTENT_TYPES
from biofed.progress import log_event
from biofed.trust.checkpoint import Checkpoint


def attribution(node: dict) -> str:
    """How the catalogue credits a node: the registry's attribution, or its name and licence."""
    return node.get("attribution") or f"{node.get('name') or node['id']} ({node.get('licence')})"


def commit_page(conn, catalogue, node, run_id, entries, end, size, frontier_bytes, cp, report) -> None:
    """Write one verified page; the caller holds the transaction (the page's one commit)."""
    node_id = node["id"]
    now = state.utc_now()
    base_url = node["baseUrl"].rstrip("/")
    cat_node = {"id": node_id, "name": node.get("name"), "licence": node.get("licence"),
                "attribution": attribution(node), "base_url": base_url}
    ids = list({e.record_id for e in entries if e.reason is None})
    held: dict[str, tuple[int, str, str]] = {}
    tombs: dict[str, int] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(f"SELECT id, version, signed_json, type FROM records WHERE id IN ({marks})", chunk):
            held[row[0]] = (row[1], row[2], row[3])
        for row in conn.execute(f"SELECT id, version FROM tombstones WHERE id IN ({marks})", chunk):
            tombs[row[0]] = row[1]
    rejections, changes = [], []
    accepted = rejected = deleted = 0
    content_delta = 0  # change of the node's content record count (nodes.records)
    # The page's writes, batched: one executemany / DELETE ... IN per table. An id
    # seen twice in a page flushes the batch first, so writes keep their order.
    batch = _PageBatch(conn, catalogue, cat_node, now)
    for entry in entries:
        if entry.reason is None:
            current = held.get(entry.record_id)
            top = max(current[0] if current else 0, tombs.get(entry.record_id, 0))
            if entry.version <= top:
                if current and entry.version == current[0] and entry.leaf.decode("utf-8") == current[1]:
                    continue  # the same signed bytes again: nothing to do
                if entry.type == "Tombstone" and tombs.get(entry.record_id) == entry.version:
                    continue
                entry.reason, entry.message = "replayed-version", f"version {entry.version} of {entry.record_id} is not higher than the held version {top}"
        if entry.reason is not None:
            rejections.append((run_id, node_id, entry.seq, entry.record_id, entry.reason, entry.message, now))
            rejected += 1
            continue
        rid = entry.record_id
        batch.claim(rid)
        if entry.type == "Tombstone":
            batch.tomb_put.append((rid, node_id, entry.version, now))
            tombs[rid] = entry.version
            if rid in held:
                batch.record_del.append(rid)
                batch.cat_del.append(rid)
                if held[rid][2] in CONTENT_TYPES:
                    content_delta -= 1
                del held[rid]
                changes.append((rid, node_id, "delete", entry.version, now))
                deleted += 1
            continue
        leaf_text = entry.leaf.decode("utf-8")
        batch.record_put.append((rid, node_id, entry.type, entry.version, entry.date_modified, now, leaf_text,
                                 f"{base_url}/records/{rid}"))
        if rid in tombs:
            batch.tomb_del.append(rid)
            del tombs[rid]
        old = held.get(rid)
        content_delta += (entry.type in CONTENT_TYPES) - (old is not None and old[2] in CONTENT_TYPES)
        if entry.type in CONTENT_TYPES:
            # Worker processes send only the leaf: the canonical bytes of the verified record.
            record = entry.record if entry.record is not None else orjson.loads(entry.leaf)
            batch.cat_put.append(catalogue.flatten(record))
        else:  # key statements: verified and kept; the registry stays the source of truth for keys
            log_event("key-statement", node=node_id, id=rid, type=entry.type)
        held[rid] = (entry.version, leaf_text, entry.type)
        changes.append((rid, node_id, "put", entry.version, now))
        accepted += 1
    batch.flush()
    if accepted or deleted:
        state.set_finalise_pending(conn, True)
    if rejections:
        conn.executemany("INSERT INTO rejections (run_id, node_id, seq, record_id, reason, message, at) VALUES (?, ?, ?, ?, ?, ?, ?)", rejections)
    if changes:
        conn.executemany("INSERT INTO changes (record_id, node_id, op, version, at) VALUES (?, ?, ?, ?, ?)", changes)
    conn.execute("UPDATE node_state SET frontier = ?, frontier_size = ? WHERE node_id = ?", (frontier_bytes, size, node_id))
    # records is kept by delta (not a count over the node's records on every page).
    conn.execute("UPDATE nodes SET cursor = ?, records = records + ? WHERE id = ?", (end, content_delta, node_id))
    if end == cp.size:
        set_checkpoint(conn, node_id, cp)
    report.entries += len(entries)
    report.accepted += accepted
    report.rejected += rejected
    report.deleted += deleted
    conn.execute("UPDATE harvest_runs SET entries = ?, accepted = ?, rejected = ?, deleted = ? WHERE id = ?",
                 (report.entries, report.accepted, report.rejected, report.deleted, run_id))


def set_checkpoint(conn, node_id: str, cp: Checkpoint) -> None:
    """The node's verified tree size and root: its log is committed up to this checkpoint."""
    conn.execute("UPDATE nodes SET tree_size = ?, root_hash = ?, checkpoint_timestamp = ? WHERE id = ?",
                 (cp.size, cp.root.hex(), cp.timestamp, node_id))


class _PageBatch:
    """A page's record, tombstone and catalogue writes, flushed as one statement per table."""

    def __init__(self, conn, catalogue, cat_node, now):
        self.conn, self.catalogue, self.cat_node, self.now = conn, catalogue, cat_node, now
        self.ids: set[str] = set()
        self.record_put, self.record_del, self.tomb_put, self.tomb_del = [], [], [], []
        self.cat_put, self.cat_del = [], []

    def claim(self, rid: str) -> None:
        if rid in self.ids:
            self.flush()
        self.ids.add(rid)

    def flush(self) -> None:
        conn = self.conn
        if self.tomb_put:
            conn.executemany("INSERT OR REPLACE INTO tombstones (id, node_id, version, deleted_at) VALUES (?, ?, ?, ?)",
                             self.tomb_put)
        for chunk in _chunks(self.record_del):
            conn.execute(f"DELETE FROM records WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        if self.cat_del:
            self.catalogue.delete_records(conn, self.cat_del)
        if self.record_put:
            # An upsert, not INSERT OR REPLACE: a held record is updated in place (same rowid), and
            # node_id, fixed by the id's namespace, is not set again, so its index is not rewritten.
            conn.executemany(
                "INSERT INTO records (id, node_id, type, version, date_modified, verified_at, signed_json,"
                " record_url, stale, stale_since) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, NULL)"
                " ON CONFLICT (id) DO UPDATE SET type = excluded.type, version = excluded.version,"
                " date_modified = excluded.date_modified, verified_at = excluded.verified_at,"
                " signed_json = excluded.signed_json, record_url = excluded.record_url, stale = 0, stale_since = NULL",
                self.record_put)
        for chunk in _chunks(self.tomb_del):
            conn.execute(f"DELETE FROM tombstones WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        if self.cat_put:
            self.catalogue.upsert_flat(conn, self.cat_put, node=self.cat_node, verified_at=self.now)
        self.ids.clear()
        self.record_put, self.record_del, self.tomb_put, self.tomb_del = [], [], [], []
        self.cat_put, self.cat_del = [], []


def _chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i : i + size]
