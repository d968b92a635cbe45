"""Member directories as .xlsx: the first worksheet, read-only, formulas rejected unevaluated."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from biofed.node.importers import ImportRow, RowError
from biofed.node.importers.tabular import header_errors, header_row, map_rows


def read_xlsx(path: Path, *, kind, node_id, node_region=None, worksheet: int = 0) -> Iterator[ImportRow]:
    """The rows of one worksheet (the first by default; the console's template has one per record type)."""
    try:
        # data_only=False: a formula stays a formula, so it can be refused rather than trusted
        workbook = load_workbook(path, read_only=True, data_only=False)
    except Exception as exc:  # a hostile zip or XML can make openpyxl raise anything (ParseError, zlib.error...)
        yield ImportRow("file", None, [RowError("", f"not a readable .xlsx workbook ({_reason(exc)})")],
                        whole_file=True)
        return
    try:
        sheet = workbook.worksheets[worksheet]
        rows = _pulled(sheet.iter_rows())
        header_cells = next(rows, None)
        if header_cells is None:
            yield ImportRow("file", None, [RowError("", "the file is empty")], whole_file=True)
            return
        header = [cell.value for cell in header_cells]
        while header and header[-1] is None:
            header.pop()
        names, errors = header_errors(header, where=lambda i: f"cell {get_column_letter(i + 1)}1")
        if errors:
            yield header_row(errors)
            if not any(names):
                return

        def cells():
            for number, row in enumerate(rows, 2):
                values, problems = [], []
                for index, cell in enumerate(row):
                    value = getattr(cell, "value", None)
                    if getattr(cell, "data_type", None) == "f" or (isinstance(value, str) and value.startswith("=")):
                        column = names[index] if index < len(names) and names[index] else f"column {index + 1}"
                        problems.append(RowError(column, f"cell {get_column_letter(index + 1)}{number} holds a "
                                                         f"formula ({str(value)[:40]!r}): formulas are not imported"))
                        value = None
                    values.append(value)
                yield number, values, problems

        yield from map_rows(names, cells(), kind=kind, node_id=node_id, node_region=node_region)
    except _Unreadable as exc:
        yield ImportRow("file", None, [RowError("", f"the worksheet is damaged and cannot be read ({exc})")],
                        whole_file=True)
    finally:
        workbook.close()


class _Unreadable(Exception):
    pass


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


def _pulled(rows):
    """openpyxl's rows, parsed lazily from the sheet XML: a damaged sheet fails mid-way with any error."""
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except Exception as exc:
            raise _Unreadable(_reason(exc)) from None
        yield row
