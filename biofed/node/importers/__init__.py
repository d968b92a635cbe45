"""Importers: turn a member spreadsheet, JSON records, ROR or CORDIS data into record content.

    from biofed.node.importers import read_rows
    for row in read_rows("members.xlsx", node_id="bioregio-stern", node_region="DE1"):
        if row.errors: print(row.source, [(e.field, e.message) for e in row.errors])
        else: node.put(row.content)

Each row comes back as an ImportRow: its `content` is an unsigned record
(`id`, `type` and fields; the node adds `version`, `dateModified`, `proof`),
or None when the row could not be mapped; `errors` name the column (or JSON
pointer) and the reason. Schema validation happens afterwards, in the node.
Formats: csv, xlsx, json, jsonl (from the file name), ror and cordis (say so).
See docs/importing.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from biofed.errors import BiofedError
from biofed.protocol.types import KINDS

FORMATS = ("csv", "xlsx", "json", "jsonl", "ror", "cordis")
# One spreadsheet or JSON file is read whole: refuse a huge one up front rather than fill memory.
# (ROR and CORDIS dumps are bulk open data and exempt.)
MAX_FILE_BYTES = 32 * 1024 * 1024


@dataclass
class RowError:
    field: str  # spreadsheet column, or JSON pointer
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass
class ImportRow:
    source: str  # "row 12", "line 3", "ror https://ror.org/..."
    content: dict | None  # unsigned record content with id, type and fields
    errors: list[RowError] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)  # values converted, not refused (a date as a year)
    whole_file: bool = False  # the errors are about the file or its header, not one record
    derived_id: bool = False  # no id given: derived, so the node may match it to a record published earlier
    merged: list[str] = field(default_factory=list)  # other rows merged into this one (same organisation), and why

    @property
    def ok(self) -> bool:
        return self.content is not None and not self.errors


def guess_format(path: Path) -> str:
    """The format from the file name: .csv, .xlsx, .json, .jsonl; a CORDIS folder (H2020 or HE) is `cordis`."""
    path = Path(path)
    if path.is_dir():
        if (path / "projects.tsv").is_file() or (path / "project.csv").is_file():
            return "cordis"
        raise BiofedError(f"{path}: a folder can only be imported as CORDIS data (neither projects.tsv, "
                          "Horizon 2020, nor project.csv, Horizon Europe, is in it)")
    suffix = path.suffix.lower()
    if suffix == ".jsonl" and path.name.startswith("ror"):
        return "ror"
    formats = {".csv": "csv", ".xlsx": "xlsx", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}
    if suffix not in formats:
        raise BiofedError(f"{path.name}: cannot tell the format from the name; give one of {', '.join(FORMATS)}")
    return formats[suffix]


def read_rows(path, *, format: str | None = None, kind: str | None = None, node_id: str,
              node_region: str | None = None, **options) -> Iterator[ImportRow]:
    """Read FILE as import rows for node `node_id` (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise BiofedError(f"{path}: no such file")
    fmt = (format or guess_format(path)).lower()
    if kind is not None and kind.lower() not in KINDS:
        raise BiofedError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    kind = kind.lower() if kind else None
    if fmt in ("csv", "xlsx", "json", "jsonl") and path.stat().st_size > MAX_FILE_BYTES:
        raise BiofedError(f"{path.name} is {path.stat().st_size / 2**20:.1f} MiB, over the limit of "
                          f"{MAX_FILE_BYTES // 2**20} MiB for one import; split it into smaller files")
    if fmt == "csv":
        from biofed.node.importers.csvfile import read_csv as reader
    elif fmt == "xlsx":
        from biofed.node.importers.xlsx import read_xlsx as reader
    elif fmt in ("json", "jsonl"):
        from biofed.node.importers.jsonrecords import read_json_records

        return read_json_records(path, lines=fmt == "jsonl", kind=kind, node_id=node_id)
    elif fmt == "ror":
        from biofed.node.importers.ror import read_ror

        return read_ror(path, node_id=node_id, node_region=node_region, **options)
    elif fmt == "cordis":
        from biofed.node.importers.cordis import read_cordis

        return read_cordis(path, node_id=node_id, kind=kind, **options)
    else:
        raise BiofedError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return reader(path, kind=kind, node_id=node_id, node_region=node_region)


__all__ = ["FORMATS", "MAX_FILE_BYTES", "ImportRow", "RowError", "guess_format", "read_rows"]
