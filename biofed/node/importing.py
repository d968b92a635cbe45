"""Import rows into a node: the one path shared by `biofed node import` and the demo.

Rows the importer could not map and records the schema refuses are reported
together, each with where it came from ("members.csv row 12") and why. A row
without an `id` is matched to what the node published before (see
biofed.node.published); two rows that are the same record are an error
naming both. With `sync`, the file is the complete list of the record types
it holds: published records of those types that it does not mention are
deleted in the same transaction as the puts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterable

from biofed.node.importers import RowError
from biofed.node.importers.matching import merge_actors
from biofed.node.published import PublishedRecords
from biofed.node.store import ImportRejected, ImportResult, Node, Rejected

# A sync that would delete more than this share of a record type's published records needs
# `allow_mass_delete`: a half-empty sheet saved by mistake must not wipe a node.
MASS_DELETE_SHARE = 0.20


@dataclass
class MassDelete:
    type: str
    deleting: int
    published: int

    def __str__(self) -> str:
        return f"{self.deleting} of {self.published} {self.type} records ({self.deleting / self.published:.0%})"


@dataclass
class ImportOutcome:
    result: ImportResult
    rejected: list[Rejected] = field(default_factory=list)  # mapping and validation failures, by source
    rows: int = 0  # record rows read (a header's problems are not a row)
    all_or_nothing: bool = True
    warnings: list[tuple[str, object]] = field(default_factory=list)  # (source, RowError): values converted
    file_errors: int = 0  # problems with the file or its header: nothing is imported, even with skip_invalid
    not_in_file: dict[str, int] = field(default_factory=dict)  # without sync: published, not mentioned, by type
    mass_delete: list[MassDelete] = field(default_factory=list)  # refused: over MASS_DELETE_SHARE of a type
    sync_skipped: str = ""  # why a sync deleted nothing
    written: bool = False  # False when nothing was committed (dry run or refused)
    merged: list[tuple[str, str]] = field(default_factory=list)  # (source, what it was merged into and why)


def _reject(index: int, source: str, record_id, errors) -> Rejected:
    return Rejected(index, source, record_id, [{"pointer": e.field, "rule": "import", "message": e.message}
                                               if not isinstance(e, dict) else e for e in errors])


def import_rows(node: Node, rows: Iterable, *, skip_invalid: bool = False, dry_run: bool = False,
                on_progress: Callable[[int], None] | None = None, label: str = "", sync: bool = False,
                allow_mass_delete: bool = False) -> ImportOutcome:
    """Validate, sign and publish import rows (biofed.node.importers.ImportRow) in one transaction.

    All-or-nothing unless `skip_invalid`: with any invalid row nothing is written. A problem with
    the file itself (an unknown column) stops the import in both modes: that column's data would
    be lost. `sync` deletes the published records of the file's types that it does not mention.
    """
    outcome = ImportOutcome(ImportResult(), all_or_nothing=not skip_invalid)
    reader_rejects: list[Rejected] = []
    contents, sources, positions, derived = [], [], [], []
    for index, row in enumerate(rows):
        source = row.source if not label or label in row.source else f"{label} {row.source}".strip()
        whole_file = getattr(row, "whole_file", False)
        outcome.rows += not whole_file
        outcome.file_errors += len(row.errors) if whole_file else 0
        outcome.warnings += [(source, warning) for warning in getattr(row, "warnings", ())]
        if row.errors or row.content is None:
            reader_rejects.append(_reject(index, source, None, row.errors or [
                {"pointer": "", "rule": "import", "message": "row is empty"}]))
        else:
            contents.append(row.content)
            sources.append(source)
            positions.append(index)
            derived.append(getattr(row, "derived_id", False))

    published = PublishedRecords(node)
    contents = [published.resolve(content) if is_derived else content
                for content, is_derived in zip(contents, derived)]
    if any(content.get("type") == "Actor" and content.get("sources") for content in contents):
        # one organisation seen by two sources (ROR and CORDIS) becomes one record (importers/matching.py)
        merged = merge_actors(contents, published=published.records("Actor"), batch_sources=sources)
        outcome.merged = [(sources[i], message) for i, message in merged.merged]
        outcome.warnings += [(sources[i], RowError("", message)) for i, message in merged.reported]
        sources = [" + ".join(sources[i] for i in group) for group in merged.groups]
        positions = [positions[group[0]] for group in merged.groups]
        contents = merged.contents
    contents, sources, positions, duplicates = _without_duplicates(contents, sources, positions)
    reader_rejects += duplicates

    types = {content.get("type") for content in contents}
    in_file = {content.get("id") for content in contents}
    missing = {t: sorted(published.live_ids(t) - in_file) for t in sorted(types, key=str) if t in published.types}
    tombstones: list[str] = []
    if sync and reader_rejects:
        outcome.sync_skipped = (f"{len(reader_rejects)} row(s) could not be read, and a record they meant to keep "
                                "would have been deleted")
    elif sync:
        for record_type, ids in missing.items():
            total = len(published.live_ids(record_type))
            if ids and len(ids) > MASS_DELETE_SHARE * total and not allow_mass_delete:
                outcome.mass_delete.append(MassDelete(record_type, len(ids), total))
            tombstones += ids
    else:
        outcome.not_in_file = {t: len(ids) for t, ids in missing.items() if ids}

    refused = bool(outcome.file_errors or outcome.mass_delete or (outcome.all_or_nothing and reader_rejects))
    try:
        result = node.put_many(contents, skip_invalid=skip_invalid, sources=sources, on_progress=on_progress,
                               dry_run=dry_run or refused, tombstones=tombstones)
        outcome.written = not (dry_run or refused)
    except ImportRejected as exc:
        result = exc.result
    # In input order (row 3 before row 12): the node numbers its rejects by position among the rows it got.
    for item in result.rejected:
        item.index = positions[item.index]
    outcome.result = result
    outcome.rejected = sorted(reader_rejects + result.rejected, key=lambda r: r.index)
    return outcome


def _without_duplicates(contents, sources, positions):
    """Rows that are the same record are all refused, each naming the others (never merged silently)."""
    by_id = defaultdict(list)
    for n, content in enumerate(contents):
        by_id[content.get("id")].append(n)
    clashing = {n for ns in by_id.values() if len(ns) > 1 for n in ns}
    if not clashing:
        return contents, sources, positions, []
    rejects = []
    for n in sorted(clashing):
        record_id = contents[n].get("id")
        others = " and ".join(sources[m] for m in by_id[record_id] if m != n)
        rejects.append(_reject(positions[n], sources[n], record_id, [{
            "pointer": "id", "rule": "import",
            "message": f"the same record as {others} ({record_id}): one row per record; merge the rows, or give "
                       "each its own id"}]))
    keep = [n for n in range(len(contents)) if n not in clashing]
    return ([contents[n] for n in keep], [sources[n] for n in keep], [positions[n] for n in keep], rejects)
