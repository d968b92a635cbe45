"""Shared by the CSV and XLSX readers: header checks and row-to-record mapping."""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from biofed.node.importers import ImportRow, RowError
from biofed.node.importers import values as v
from biofed.node.importers.columns import column_name, known_column, map_row


def header_errors(header: list[Any], *, where) -> tuple[list[str | None], list[RowError]]:
    """Normalised column names and the problems with them (unknown, duplicate, missing).

    An unknown or repeated column is named None: reported once here, then left out of every row, so
    the data rows are still checked.
    """
    names, errors = [], []
    for index, cell in enumerate(header):
        name = column_name(cell)
        if name and name in names:
            errors.append(RowError(name, f"column {name} appears twice ({where(index)})"))
            name = None
        elif name and not known_column(name):
            errors.append(RowError(name, f"unknown column {v.text_of(cell)!r} ({where(index)}); "
                                         "see docs/importing.md for the columns"))
            name = None
        names.append(name)
    if not any(names) and not errors:
        errors.append(RowError("", "the first row must name the columns (id, type, name, ...)"))
    return names, errors


def header_row(errors: list[RowError]) -> ImportRow:
    return ImportRow("row 1", None, errors, whole_file=True)


def map_rows(names: list[str], rows: Iterable[tuple[int, list[Any], list[RowError]]], *, kind, node_id,
             node_region) -> Iterator[ImportRow]:
    """(row number, cells, cell errors) -> ImportRow; fully empty rows are skipped."""
    for number, cells, cell_errors in rows:
        if not any(v.text_of(cell) for cell in cells) and not cell_errors:
            continue
        errors = list(cell_errors)
        values = {}
        for index, cell in enumerate(cells):
            if index < len(names) and names[index] is None:
                continue  # an unknown or repeated column: reported with the header
            if index >= len(names) or not names[index]:
                if v.text_of(cell):
                    errors.append(RowError(f"column {index + 1}", "a value in a column without a header"))
                continue
            values[names[index]] = cell
        content, mapping_errors, warnings = map_row(values, kind=kind, node_id=node_id, node_region=node_region)
        errors += mapping_errors
        yield ImportRow(f"row {number}", None if errors else content, errors, warnings,
                        derived_id=not v.text_of(values.get("id")))
