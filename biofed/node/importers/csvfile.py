"""Member directories as CSV: UTF-8 (with or without BOM), comma, semicolon or tab separated."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterator

from biofed.node.importers import ImportRow, RowError
from biofed.node.importers.tabular import header_errors, header_row, map_rows


def _file_error(message: str) -> Iterator[ImportRow]:
    yield ImportRow("file", None, [RowError("", message)], whole_file=True)


def decode(data: bytes) -> str:
    """The text of a CSV file; ValueError names the first problem and where it is."""
    if not data.strip():
        raise ValueError("the file is empty")
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise ValueError(f"NUL byte on line {line}: this is not a text file (export the sheet as CSV UTF-8)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValueError(f"not UTF-8: byte 0x{data[exc.start]:02X} on line {line} "
                         "(save the file as 'CSV UTF-8')") from None


def sniff_delimiter(first_line: str) -> str:
    """Excel writes `;` in many European locales; the header names have no separators in them."""
    counts = {sep: first_line.count(sep) for sep in (",", ";", "\t")}
    return max(counts, key=counts.get) if any(counts.values()) else ","


def read_csv(path: Path, *, kind, node_id, node_region=None) -> Iterator[ImportRow]:
    try:
        text = decode(Path(path).read_bytes())
    except ValueError as exc:
        yield from _file_error(str(exc))
        return
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text.split("\n", 1)[0]))
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        yield from _file_error(f"no header row ({exc})" if str(exc) else "no header row")
        return
    names, errors = header_errors(header, where=lambda i: f"column {i + 1}")
    if errors:
        yield header_row(errors)
        if not any(names):
            return

    def rows():
        number = 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # e.g. an unterminated quote
                yield number + 1, [], [RowError("", f"malformed CSV: {exc}")]
                return
            number += 1
            errors = _formula_errors(names, cells)
            if errors:  # refused, so not mapped either
                cells = ["" if cell.strip().startswith("=") else cell for cell in cells]
            yield number, cells, errors

    yield from map_rows(names, rows(), kind=kind, node_id=node_id, node_region=node_region)


def _formula_errors(names, cells) -> list[RowError]:
    # A cell starting with '=' is a formula in every spreadsheet that opens the file later.
    return [RowError(names[i] if i < len(names) else f"column {i + 1}",
                     f"the cell starts with '=' ({cell.strip()[:30]!r}...): formulas are not imported")
            for i, cell in enumerate(cells) if cell.strip().startswith("=")]
