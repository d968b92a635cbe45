"""Datasette plugin: CSV exports of the catalogue are safe to open in a spreadsheet.

A record name such as `=HYPERLINK("http://evil.example","Click")` is data, and
the catalogue keeps it as signed. But a cell that starts with `=`, `+`, `-`,
`@`, a tab or a carriage return is a formula to Excel, LibreOffice and
Google Sheets when they open a .csv file (CSV/formula injection). This ASGI
wrapper rewrites Datasette's CSV answers (`.csv` paths, `_format=csv`), row
by row as they stream, and prefixes such a cell with `'` (the OWASP
advice); plain numbers such as `-3` or `+49` stay as they are. JSON and the
HTML pages are untouched: there the name is shown exactly as signed.
"""

from __future__ import annotations

import csv
import io
import re

from datasette import hookimpl

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def neutralise(cell: str) -> str:
    if cell.startswith(FORMULA_START) and not NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


class CsvRewriter:
    """Incremental: feed bytes, get back the complete records seen so far, rewritten."""

    def __init__(self):
        self.pending = b""

    def _split(self) -> int:
        """The end of the last complete record in `pending` (a newline outside quotes), or 0."""
        end, quoted = 0, False
        for index, byte in enumerate(self.pending):
            if byte == 0x22:  # '"' toggles; an escaped "" toggles twice
                quoted = not quoted
            elif byte == 0x0A and not quoted:
                end = index + 1
        return end

    def _rewrite(self, chunk: bytes) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        for row in csv.reader(io.StringIO(chunk.decode("utf-8"), newline="")):
            writer.writerow([neutralise(cell) for cell in row])
        return out.getvalue().encode("utf-8")

    def feed(self, data: bytes) -> bytes:
        self.pending += data
        end = self._split()
        if not end:
            return b""
        complete, self.pending = self.pending[:end], self.pending[end:]
        return self._rewrite(complete)

    def close(self) -> bytes:
        rest, self.pending = self.pending, b""
        return self._rewrite(rest) if rest.strip() else rest


def _is_csv(scope) -> bool:
    path = scope.get("path", "")
    query = scope.get("query_string", b"")
    return path.endswith(".csv") or b"_format=csv" in query


@hookimpl
def asgi_wrapper(datasette):
    def wrap(app):
        async def guarded(scope, receive, send):
            if scope["type"] != "http" or not _is_csv(scope):
                return await app(scope, receive, send)
            rewriter = CsvRewriter()
            is_text = False

            async def send_rewritten(message):
                nonlocal is_text
                if message["type"] == "http.response.start":
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-length"]
                    content_type = dict((k.lower(), v) for k, v in headers).get(b"content-type", b"")
                    is_text = content_type.startswith((b"text/csv", b"text/plain"))
                    message = {**message, "headers": headers}
                elif message["type"] == "http.response.body" and is_text:
                    body = rewriter.feed(message.get("body", b""))
                    if not message.get("more_body", False):
                        body += rewriter.close()
                    message = {**message, "body": body}
                await send(message)

            await app(scope, receive, send_rewritten)

        return guarded

    return wrap
