"""Import rows into a node: the one path shared by `biofed node import` and the demo.

Rows the importer could not map and records the schema refuses are reported
together, each with where it came from ("members.csv row 12") and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from biofed.node.store import ImportRejected, ImportResult, Node, Rejected


@dataclass
class ImportOutcome:
    result: ImportResult
    rejected: list[Rejected] = field(default_factory=list)  # mapping and validation failures, by source
    rows: int = 0
    all_or_nothing: bool = True


def import_rows(node: Node, rows: Iterable, *, skip_invalid: bool = False, dry_run: bool = False,
                on_progress: Callable[[int], None] | None = None, label: str = "") -> ImportOutcome:
    """Validate, sign and publish import rows (biofed.node.importers.ImportRow) in one transaction.

    All-or-nothing unless `skip_invalid`: with any invalid row nothing is written.
    """
    reader_rejects, contents, sources, positions = [], [], [], []
    count = 0
    for index, row in enumerate(rows):
        count += 1
        source = row.source if not label or label in row.source else f"{label} {row.source}".strip()
        if row.errors or row.content is None:
            errors = [{"pointer": e.field, "rule": "import", "message": e.message} for e in row.errors]
            reader_rejects.append(Rejected(index, source, None, errors or
                                           [{"pointer": "", "rule": "import", "message": "row is empty"}]))
        else:
            contents.append(row.content)
            sources.append(source)
            positions.append(index)
    all_or_nothing = not skip_invalid
    try:
        result = node.put_many(contents, skip_invalid=skip_invalid, sources=sources, on_progress=on_progress,
                               dry_run=dry_run or (all_or_nothing and bool(reader_rejects)))
    except ImportRejected as exc:
        result = exc.result
    # In input order (row 3 before row 12): the node numbers its rejects by position among the rows it got.
    for item in result.rejected:
        item.index = positions[item.index]
    rejected = sorted(reader_rejects + result.rejected, key=lambda r: r.index)
    return ImportOutcome(result, rejected, count, all_or_nothing)
