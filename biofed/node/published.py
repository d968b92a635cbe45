"""What a node has published, read once per import: live and deleted ids by type, and the
identifiers of live records, to find the record a spreadsheet row without an `id` is.

A row without an id is matched, in this order, to: the live record sharing its strongest
identifier (PIC, ROR, VAT, website domain) unless another of their identifiers differs; the
id its identifiers mint, when that record exists (live or deleted); a record published under
the id derived from its name, by this version or an earlier one (`politechnika-odzka` for
"Politechnika Łódzka"). Else the minted id is new. Ids are looked up, never re-derived, so a
record keeps the id it was published under.
"""

from __future__ import annotations

from collections import defaultdict

import orjson

from biofed.node.importers import values as v
from biofed.node.importers.identity import match_keys, name_of
from biofed.node.records import CONTENT_TYPES

_CONFLICTING = ("pic", "ror", "vat")  # two records with different values of these are different organisations


class PublishedRecords:
    def __init__(self, node):
        self._node = node
        self._live: dict[str, set[str]] = defaultdict(set)
        self._all: set[str] = set()
        marks = ", ".join("?" * len(CONTENT_TYPES))
        for record_id, record_type, deleted in node.conn.execute(
                f"SELECT id, type, deleted FROM records WHERE type IN ({marks})", tuple(CONTENT_TYPES)):
            self._all.add(record_id)
            if not deleted:
                self._live[record_type].add(record_id)
        self._index: dict[str, dict[tuple[str, str], str | None]] = {}  # type -> key -> id (None: ambiguous)
        self._keys: dict[str, dict[str, str]] = {}  # live id -> its keys

    @property
    def types(self) -> set[str]:
        """The record types with live records."""
        return {t for t, ids in self._live.items() if ids}

    def live_ids(self, record_type: str) -> set[str]:
        return self._live.get(record_type, set())

    def _identifiers(self, record_type: str) -> dict[tuple[str, str], str | None]:
        if record_type not in self._index:
            index: dict[tuple[str, str], str | None] = {}
            ids = self.live_ids(record_type)
            for record_id, signed in self._node.conn.execute(
                    "SELECT id, signed FROM records WHERE deleted = 0 AND type = ?", (record_type,)):
                if record_id not in ids:
                    continue
                keys = match_keys(orjson.loads(signed))
                self._keys[record_id] = dict(keys)
                for key in keys:
                    index[key] = None if key in index and index[key] != record_id else record_id
            self._index[record_type] = index
        return self._index[record_type]

    def records(self, record_type: str) -> list[dict]:
        """The live records of a type, as signed."""
        ids = self.live_ids(record_type)
        return [orjson.loads(signed) for record_id, signed in self._node.conn.execute(
            "SELECT id, signed FROM records WHERE deleted = 0 AND type = ?", (record_type,)) if record_id in ids]

    def _conflicts(self, record_id: str, row_keys: dict[str, str]) -> bool:
        theirs = self._keys.get(record_id, {})
        return any(k in theirs and k in row_keys and theirs[k] != row_keys[k] for k in _CONFLICTING)

    def resolve(self, content: dict) -> dict:
        """`content` with the id of the published record it is (a copy), or unchanged when it is new."""
        minted = content.get("id") or ""
        parts = minted.split("/")
        if len(parts) != 3:
            return content
        keys = match_keys(content)
        row_keys = dict(keys)
        index = self._identifiers(content.get("type")) if keys else {}
        for key in keys:
            found = index.get(key)
            if found and not self._conflicts(found, row_keys):
                return {**content, "id": found}
        if minted in self._all:
            return content
        name = name_of(content)
        for local in dict.fromkeys((v.slug(name), v.legacy_slug(name))) if name else ():
            candidate = f"{parts[0]}/{parts[1]}/{local}"
            if local and candidate in self._all and not self._conflicts(candidate, row_keys):
                return {**content, "id": candidate}
        return content
