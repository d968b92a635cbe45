"""Open feeds for developers, mounted into the catalogue's Datasette.

    GET /-/biofed/records.jsonl.gz        every verified record, exactly as signed, with provenance
    GET /-/biofed/changes?after=&limit=   the change feed: puts and deletes in order, with a cursor
    GET /-/biofed/registry.json           the registry document the aggregator accepted, if it kept it

Signed records are copied into the output byte for byte (never re-serialised),
so anyone can re-verify them with `biofed verify`.
"""

from __future__ import annotations

import json
import zlib

from datasette.utils.asgi import AsgiStream, Response

DATABASE = "catalogue"
BATCH = 1000
MAX_LIMIT = 1000
DEFAULT_LIMIT = 500


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


async def _has_table(db, name: str) -> bool:
    return await db.table_exists(name)


class BytesStream(AsgiStream):
    """AsgiStream whose stream_fn writes bytes (Datasette's writer only takes str)."""

    async def asgi_send(self, send):
        headers = {**self.headers, "content-type": self.content_type}
        await send({"type": "http.response.start", "status": self.status,
                    "headers": [[k.encode("latin-1"), v.encode("latin-1")] for k, v in headers.items()]})

        class Writer:
            async def write(self, chunk: bytes):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})

        await self.stream_fn(Writer())
        await send({"type": "http.response.body", "body": b""})


def _error(status: int, error: str, message: str) -> Response:
    return Response.json({"error": error, "message": message}, status=status)


def record_line(row) -> str:
    """One JSONL line: the signed record verbatim, then where it came from."""
    provenance = {
        "node": row["node_id"],
        "licence": row["licence"],
        "attribution": row["attribution"],
        "verifiedAt": row["verified_at"],
        "source": row["record_url"],
        "stale": bool(row["stale"]),
    }
    return '{"record":' + row["signed_json"] + "," + _dumps(provenance)[1:] + "\n"


RECORDS_PAGE = """
select r.id, r.node_id, r.signed_json, r.verified_at, r.record_url, r.stale,
       n.licence, n.attribution
from records r left join nodes n on n.id = r.node_id
where r.id > :after
order by r.id
limit :limit
"""


async def records_jsonl_gz(datasette, request):
    db = datasette.get_database(DATABASE)
    if not await _has_table(db, "records"):
        return _error(404, "no-records", "This catalogue holds no signed records table.")

    async def stream(writer):
        # Keyset pages of BATCH rows: each query is short, whatever the size of the catalogue.
        compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip member
        after = ""
        while True:
            rows = (await db.execute(RECORDS_PAGE, {"after": after, "limit": BATCH})).rows
            if not rows:
                break
            chunk = compressor.compress("".join(record_line(row) for row in rows).encode("utf-8"))
            if chunk:
                await writer.write(chunk)
            after = rows[-1]["id"]
        await writer.write(compressor.flush())

    headers = {
        "content-disposition": 'attachment; filename="records.jsonl.gz"',
        "access-control-allow-origin": "*",
        # Already compressed: stops datasette-gzip compressing it twice.
        "content-encoding": "identity",
    }
    if db.hash:  # immutable catalogue: the file's hash names this exact content
        headers["etag"] = f'"{db.hash}"'
        if request.headers.get("if-none-match") == headers["etag"]:
            return Response("", status=304, headers=headers)
    return BytesStream(stream, headers=headers, content_type="application/gzip")


# A put carries the signed bytes of its own version: the record's while it still holds that
# version, afterwards the copy state.py's triggers keep in record_versions. A full page thus
# never changes, and the current state of an id is its latest put.
_CHANGES_PAGE = """
select c.seq, c.op, c.record_id, c.node_id, c.version, c.at, {put_bytes} as signed_json
from changes c left join records r on r.id = c.record_id
where c.seq > :after
order by c.seq
limit :limit
"""
_HELD_BYTES = "case when c.op = 'put' and r.version = c.version then r.signed_json end"
_KEPT_BYTES = ("case when c.op = 'put' then (select v.signed_json from record_versions v"
               " where v.record_id = c.record_id and v.version = c.version) end")
CHANGES_PAGE = _CHANGES_PAGE.format(put_bytes=f"coalesce({_HELD_BYTES}, {_KEPT_BYTES})")
# A catalogue harvested before record_versions existed: the bytes of a replaced version are gone.
CHANGES_PAGE_WITHOUT_VERSIONS = _CHANGES_PAGE.format(put_bytes=_HELD_BYTES)


def change_entry(row) -> str:
    """A change; a put carries its version's signed bytes (null only if they were replaced before they were kept)."""
    head = _dumps({
        "seq": row["seq"], "op": row["op"], "id": row["record_id"], "node": row["node_id"],
        "version": row["version"], "at": row["at"],
    })
    record = row["signed_json"] if row["signed_json"] is not None else "null"
    return head[:-1] + ',"record":' + record + "}"


def _int_arg(request, name: str, default: int) -> int:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, not {value!r}") from None


async def changes(datasette, request):
    db = datasette.get_database(DATABASE)
    if not await _has_table(db, "changes"):
        return _error(404, "no-changes", "This catalogue holds no change log.")
    try:
        after = _int_arg(request, "after", 0)
        limit = _int_arg(request, "limit", DEFAULT_LIMIT)
    except ValueError as exc:
        return _error(400, "bad-parameter", str(exc))
    if after < 0 or not 1 <= limit <= MAX_LIMIT:
        return _error(400, "bad-parameter", f"after must be >= 0 and limit between 1 and {MAX_LIMIT}.")
    versions_kept = await _has_table(db, "record_versions")
    rows = (await db.execute(CHANGES_PAGE if versions_kept else CHANGES_PAGE_WITHOUT_VERSIONS,
                             {"after": after, "limit": limit})).rows
    last = rows[-1]["seq"] if rows else after
    full = len(rows) == limit
    path = datasette.urls.path("/-/biofed/changes")
    next_url = f"{path}?after={last}&limit={limit}" if full else None
    body = '{"after":' + str(after) + ',"last":' + str(last)
    if not full:
        # The newest seq lets a mirror see a rebuilt catalogue (latest < its cursor). Only on the
        # last page: it grows with every harvest, and a full page is the same bytes forever.
        latest = (await db.execute("select coalesce(max(seq), 0) from changes")).rows[0][0]
        body += ',"latest":' + str(latest)
    body += ',"entries":[' + ",".join(change_entry(row) for row in rows) + "]" + ',"next":' + _dumps(next_url) + "}"
    headers = {"access-control-allow-origin": "*"}
    if full and versions_kept:  # its entries and their bytes never change again
        headers["cache-control"] = "public, max-age=31536000, immutable"
    return Response(body, headers=headers, content_type="application/json; charset=utf-8")


async def registry_json(datasette, request):
    # The aggregator's registry_state may keep the accepted document in a
    # `document` column; serve it verbatim when it does.
    db = datasette.get_database(DATABASE)
    if await _has_table(db, "registry_state"):
        columns = await db.table_columns("registry_state")
        if "document" in columns:
            rows = (await db.execute("select document from registry_state where document is not null limit 1")).rows
            if rows:
                return Response(rows[0][0], headers={"access-control-allow-origin": "*"},
                                content_type="application/json; charset=utf-8")
    return _error(404, "no-registry", "This catalogue did not keep the registry document; fetch it from the registry.")


ROUTES = [
    (r"^/-/biofed/records\.jsonl\.gz$", records_jsonl_gz),
    (r"^/-/biofed/changes$", changes),
    (r"^/-/biofed/registry\.json$", registry_json),
]
