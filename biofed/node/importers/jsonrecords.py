"""Records already in the data standard, as one JSON document or JSON Lines.

A .json file holds one record or an array of records; a .jsonl file one record
a line. Each record is parsed under the strict profile. A local id
(`curevac`, or `actor/curevac`) gets this node's prefix; the kind comes from
`type`. `version`, `dateModified` and `proof` are the node's to set, so they
are dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from biofed.node.importers import ImportRow, RowError
from biofed.node.importers import values as v
from biofed.trust import jsonprofile

NODE_FIELDS = ("version", "dateModified", "proof")
TYPES = {"actor": "Actor", "project": "Project", "offer": "Offer"}


def _content(record, *, source: str, kind: str | None, node_id: str) -> ImportRow:
    if not isinstance(record, dict):
        return ImportRow(source, None, [RowError("", f"a record is a JSON object, not {type(record).__name__}")])
    record_type = record.get("type")
    if record_type is None and kind:
        record_type = TYPES[kind]
    if record_type not in TYPES.values():
        return ImportRow(source, None, [RowError("/type", f"type must be Actor, Project or Offer, not {record_type!r}")])
    content = {key: value for key, value in record.items() if key not in NODE_FIELDS}
    content["type"] = record_type
    raw_id = record.get("id")
    if not isinstance(raw_id, str) or not raw_id.strip():
        return ImportRow(source, None, [RowError("/id", "every record needs an id (local or `<node>/<kind>/<local>`)")])
    try:
        content["id"] = v.record_id(raw_id, node_id=node_id, kind=record_type.lower())
    except ValueError as exc:
        return ImportRow(source, None, [RowError("/id", str(exc))])
    return ImportRow(source, content, [])


def read_json_records(path: Path, *, lines: bool, kind: str | None, node_id: str) -> Iterator[ImportRow]:
    data = Path(path).read_bytes()
    if not data.strip():
        yield ImportRow("file", None, [RowError("", "the file is empty")], whole_file=True)
        return
    if not lines:
        try:
            document = jsonprofile.loads(data, max_bytes=None, max_depth=jsonprofile.MAX_DEPTH + 1)
        except jsonprofile.ProfileError as exc:
            yield ImportRow("file", None, [RowError(exc.pointer or "/", exc.message)], whole_file=True)
            return
        records = document if isinstance(document, list) else [document]
        for index, record in enumerate(records):
            source = f"record {index + 1}" if isinstance(document, list) else "record"
            try:
                jsonprofile.check(record)
            except jsonprofile.ProfileError as exc:
                yield ImportRow(source, None, [RowError(exc.pointer or "/", exc.message)])
                continue
            yield _content(record, source=source, kind=kind, node_id=node_id)
        return
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        source = f"line {number}"
        try:
            record = jsonprofile.loads(line.rstrip(b"\r"))
        except jsonprofile.ProfileError as exc:
            yield ImportRow(source, None, [RowError(exc.pointer or "/", exc.message)])
            continue
        yield _content(record, source=source, kind=kind, node_id=node_id)
