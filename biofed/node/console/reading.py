"""What the console reads from the node's store: record lists, one record's versions and what changed."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from biofed.node.importers.identity import name_of
from biofed.node.records import content_of
from biofed.node.store import Node
from biofed.protocol.types import CONTENT_TYPES

PAGE = 50


@dataclass
class Listed:
    id: str
    type: str
    version: int
    name: str
    modified: str
    kind: str
    local: str


def listed_of(record: dict, version: int) -> Listed:
    kind, local = record["id"].split("/")[1:3]
    return Listed(record["id"], record["type"], version, name_of(record) or record.get("acronym") or local,
                  record.get("dateModified", ""), kind, local)


def list_records(node: Node, *, query: str = "", record_type: str = "", deleted: bool = False,
                 page: int = 0) -> tuple[list[Listed], int]:
    """One page of live (or deleted) records, by id, matching `query` anywhere in their text; and the total."""
    types = [record_type] if record_type in CONTENT_TYPES else list(CONTENT_TYPES)
    where = f"deleted = ? AND type IN ({', '.join('?' * len(types))})"
    args: list = [int(deleted), *types]
    if query:
        escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where += " AND (CAST(signed AS TEXT) LIKE ? ESCAPE '\\')"
        args.append(f"%{escaped}%")
    conn = node.conn
    total = conn.execute(f"SELECT count(*) FROM records WHERE {where}", args).fetchone()[0]
    rows = conn.execute(f"SELECT id, version, signed, seq FROM records WHERE {where} ORDER BY id LIMIT ? OFFSET ?",
                        [*args, PAGE, page * PAGE]).fetchall()
    listed = []
    for record_id, version, signed, seq in rows:
        record = orjson.loads(signed)
        if deleted:  # the tombstone has no name: the last version before it has
            before = previous_version(node, record_id, seq)
            shown = listed_of(before or record, version)
            shown.modified = record.get("dateModified", "")
            listed.append(shown)
        else:
            listed.append(listed_of(record, version))
    return listed, total


def previous_version(node: Node, record_id: str, before_seq: int) -> dict | None:
    row = node.conn.execute("SELECT leaf FROM log WHERE record_id = ? AND seq < ? ORDER BY seq DESC LIMIT 1",
                            (record_id, before_seq)).fetchone()
    return orjson.loads(row[0]) if row else None


def current(node: Node, record_id: str) -> tuple[dict | None, bool]:
    """(the current signed record, deleted?) or (None, False)."""
    stored = node.record(record_id)
    if stored is None or stored.type not in CONTENT_TYPES:
        return None, False
    return orjson.loads(stored.signed), stored.deleted


def versions(node: Node, record_id: str) -> list[dict]:
    """Every version of a record in log order (tombstones included)."""
    rows = node.conn.execute("SELECT leaf FROM log WHERE record_id = ? ORDER BY seq", (record_id,)).fetchall()
    return [orjson.loads(row[0]) for row in rows]


def flatten(value, pointer: str = "") -> dict[str, str]:
    """A record's content as JSON pointer -> value text: what a history lists as changed."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{pointer}/{key}"))
        return out
    if isinstance(value, list):
        if all(not isinstance(item, (dict, list)) for item in value):
            return {pointer: "; ".join(str(item) for item in value)} if value else {}
        out = {}
        for index, item in enumerate(value):
            out.update(flatten(item, f"{pointer}/{index}"))
        return out
    return {pointer: "" if value is None else str(value)}


def changes(before: dict | None, after: dict) -> list[tuple[str, str, str]]:
    """(field, before, after) for each field that differs in content (node-set fields left out)."""
    old = flatten(content_of(before)) if before and before.get("type") != "Tombstone" else {}
    new = flatten(content_of(after)) if after.get("type") != "Tombstone" else {}
    return [(key, old.get(key, ""), new.get(key, "")) for key in sorted(set(old) | set(new))
            if old.get(key) != new.get(key) and key != "/type"]


def node_actors(node: Node, cache: dict, limit: int) -> dict[str, dict] | None:
    """This node's live actors: id -> {name, country} (read again only when the log grew), or None when
    there are more than `limit` (a form then asks for an actor's id rather than offering a list)."""
    size = node.tree_size()
    if cache.get("size") != size:
        count = node.conn.execute("SELECT count(*) FROM records WHERE deleted = 0 AND type = 'Actor'").fetchone()[0]
        actors = None
        if count <= limit:
            actors = {}
            for (signed,) in node.conn.execute("SELECT signed FROM records WHERE deleted = 0 AND type = 'Actor' "
                                               "ORDER BY id"):
                record = orjson.loads(signed)
                actors[record["id"]] = {"name": name_of(record), "country": record.get("country", "")}
        cache.clear()
        cache.update(size=size, actors=actors)
    return cache["actors"]


def actor_summary(node: Node, actor_id: str) -> dict | None:
    """{name, country} of one of this node's live actors, or None."""
    stored = node.record(actor_id)
    if stored is None or stored.deleted or stored.type != "Actor":
        return None
    record = orjson.loads(stored.signed)
    return {"name": name_of(record), "country": record.get("country", "")}
