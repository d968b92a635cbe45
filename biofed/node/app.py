"""The node's HTTP API (docs/protocol.md §6): public feeds and authenticated writes.

Request bodies are read as raw bytes and parsed with the strict JSON profile
here, never by FastAPI/pydantic, so that every malformed body gets our error
shape and the exact reason.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import hashlib
import re
from pathlib import Path

import orjson
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from biofed.node.store import Node, NodeError, RecordInvalid, RecordNotFound
from biofed.serving import HeadLikeGet
from biofed.trust import jsonprofile
from biofed.trust.canonical import canonicalize
from biofed.trust.jsonprofile import MAX_RECORD_BYTES

DEFAULT_PAGE = 500
MAX_PAGE = 1000
IMMUTABLE = "public, max-age=31536000, immutable"
JSON = "application/json"


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, errors=(), headers=None):
        super().__init__(message)
        self.status, self.error, self.message, self.errors = status, error, message, list(errors)
        self.headers = headers or {}


def error_response(status: int, error: str, message: str, errors=(), headers=None) -> JSONResponse:
    return JSONResponse({"error": error, "message": message, "errors": list(errors)}, status_code=status,
                        headers=headers)


# --- OpenAPI declarations of what each route really answers (docs/protocol.md §6)

ERROR_SCHEMA = {
    "type": "object", "required": ["error", "message", "errors"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                   "errors": {"type": "array", "items": {"type": "object", "properties": {
                       "pointer": {"type": "string"}, "rule": {"type": "string"}, "message": {"type": "string"}}}}},
}
ERROR_TEXT = {
    400: "Malformed request, JSON outside the strict profile, or a bad range", 401: "No, unknown or revoked token",
    403: "The token lacks the scope", 404: "Unknown record, schema or log position", 409: "The id exists",
    410: "The record is deleted", 412: "Stale version (If-Match)", 413: "Body over 64 KiB",
    422: "Invalid query parameters or a record that breaks the data standard", 428: "If-Match is required",
}
RECORD_SCHEMA = {"type": "object", "required": ["id", "type", "version", "dateModified", "proof"]}
BEARER = [{"bearerToken": []}]
BODY = {"required": True, "description": "The record's content with its id; the node sets version, dateModified "
        "and proof. Read raw and parsed with the strict JSON profile (at most 64 KiB).",
        "content": {JSON: {"schema": {"type": "object", "properties": {"id": {"type": "string"},
                                                                       "type": {"type": "string"}}}}}}
IF_MATCH = {"name": "If-Match", "in": "header", "description": 'The current version, e.g. "3"',
            "schema": {"type": "string"}}
WRITE = {"security": BEARER, "requestBody": BODY}
UPDATE = {"security": BEARER, "requestBody": BODY, "parameters": [{**IF_MATCH, "required": False}]}
DELETE = {"security": BEARER, "parameters": [{**IF_MATCH, "required": False}]}


def answers(*statuses: int, ok: tuple[int, str, dict] | None = None, not_modified: bool = False) -> dict:
    """`responses=` for a route: its success body, 304 if it has ETags, and its error statuses."""
    declared: dict = {}
    if ok is not None:
        status, media_type, schema = ok
        declared[status] = {"description": "Success", "content": {media_type: {"schema": schema}}}
    if not_modified:
        declared[304] = {"description": "Not modified (If-None-Match matched the ETag)"}
    for status in statuses:
        declared[status] = {"description": ERROR_TEXT[status], "content": {JSON: {"schema": ERROR_SCHEMA}}}
    return declared


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def not_modified(request: Request, etag: str) -> bool:
    given = request.headers.get("if-none-match")
    if not given:
        return False
    return given.strip() == "*" or etag in [t.strip().removeprefix("W/") for t in given.split(",")]


def cached(request: Request, body: bytes, media_type: str, headers: dict | None = None) -> Response:
    headers = dict(headers or {})
    etag = headers.setdefault("ETag", etag_of(body))
    if not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def parse_version(header: str | None) -> int | None:
    if header is None:
        return None
    match = re.fullmatch(r'\s*(?:W/)?"?(\d{1,15})"?\s*', header)
    if not match:
        raise ApiError(400, "bad-if-match", f"If-Match {header!r} is not a version such as \"3\"")
    return int(match.group(1))


class OpenToEveryOrigin:
    """`Access-Control-Allow-Origin: *` on every answer, not only when an Origin header came
    (a CDN may cache the answer for browsers). Plain ASGI: no per-request task overhead."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_cors(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"access-control-allow-origin" for name, _ in headers):
                    headers.append((b"access-control-allow-origin", b"*"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cors)


def create_app(directory, *, checkpoint_interval: float | None = None) -> FastAPI:
    """The ASGI app for the node in `directory`.

    The checkpoint is re-signed every `checkpoint_interval` seconds (default:
    node.json's checkpointInterval) by a task that lives as long as the app.
    """
    node = Node.open(Path(directory))
    interval = checkpoint_interval if checkpoint_interval is not None else node.config.checkpointInterval

    async def resign_forever():
        while True:
            await asyncio.sleep(interval)
            try:
                await run_in_threadpool(node.resign_checkpoint)
            except Exception as exc:  # keep serving; the next round tries again
                from biofed.progress import log_event

                log_event("checkpoint-error", node=node.id, error=str(exc))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(resign_forever())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            node.close()

    app = FastAPI(
        title=f"BioFed node {node.id}",
        description=f"{node.config.name}: signed open data about life-science actors, projects and offers. "
                    "The wire contract is docs/protocol.md of the BioFed project.",
        version="1.0",
        lifespan=lifespan,
    )
    app.state.node = node
    describe = app.openapi

    def openapi_with_bearer() -> dict:
        document = describe()
        document.setdefault("components", {}).setdefault("securitySchemes", {})["bearerToken"] = {
            "type": "http", "scheme": "bearer", "description": "A node token (`biofed node token create`)"}
        return document

    app.openapi = openapi_with_bearer
    # zlib's default level, not Starlette's 9: a 1,000-entry log page costs 10 ms instead of 18 ms
    # to compress, for 6 % more bytes (docs/benchmarks.md).
    app.add_middleware(GZipMiddleware, minimum_size=500, compresslevel=6)
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "HEAD", "OPTIONS"],
                       allow_headers=["If-None-Match"], expose_headers=["ETag", "BioFed-Tree-Size"])

    app.add_middleware(OpenToEveryOrigin)
    app.add_middleware(HeadLikeGet)  # outermost: every layer inside sees the GET a HEAD stands for

    @app.exception_handler(ApiError)
    async def api_error(request, exc: ApiError):
        return error_response(exc.status, exc.error, exc.message, exc.errors, exc.headers)

    @app.exception_handler(NodeError)
    async def node_error(request, exc: NodeError):
        return error_response(exc.status, exc.code, str(exc), exc.errors)

    @app.exception_handler(RequestValidationError)
    async def query_error(request, exc: RequestValidationError):
        # the error shape of docs/protocol.md, not FastAPI's {"detail": ...}
        issues = [{"pointer": "/" + "/".join(str(part) for part in e.get("loc", ())), "rule": str(e.get("type", "")),
                   "message": str(e.get("msg", ""))} for e in exc.errors()]
        return error_response(422, "bad-parameter", "; ".join(f"{i['pointer']}: {i['message']}" for i in issues),
                              issues)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException):
        return error_response(exc.status_code, "not-found" if exc.status_code == 404 else "http-error",
                              str(exc.detail), headers=getattr(exc, "headers", None))

    # --- public reads

    @app.get("/.well-known/biofed-node.json", summary="Node descriptor: id, licence, keys",
             responses=answers(ok=(200, JSON, {"type": "object", "required": ["id", "keys"]}), not_modified=True))
    def descriptor(request: Request):
        return cached(request, orjson.dumps(node.descriptor()), JSON, {"Cache-Control": "no-cache"})

    @app.get("/controller.json", summary="Controller document of the node's keys (W3C Controlled Identifiers)",
             responses=answers(ok=(200, JSON, {"type": "object", "required": ["id", "verificationMethod", "assertionMethod"]}),
                               not_modified=True))
    def controller(request: Request):
        from biofed.protocol.controller import controller_document

        body = orjson.dumps(controller_document(node.id, node.keys()))
        return cached(request, body, JSON, {"Cache-Control": "no-cache"})

    @app.get("/schemas/{name}.json", summary="A JSON Schema the node validates against",
             responses=answers(404, 422, ok=(200, "application/schema+json", {"type": "object"}), not_modified=True))
    def schema(name: str, request: Request):
        from biofed.schema import schema_documents, schema_file

        documents = schema_documents()
        if name not in documents:
            raise ApiError(404, "not-found", f"no schema {name!r}; known: {', '.join(sorted(documents))}")
        # the published file, byte for byte
        return cached(request, schema_file(name), "application/schema+json")

    @app.get("/checkpoint", summary="The latest signed checkpoint (C2SP signed note)",
             responses=answers(ok=(200, "text/plain", {"type": "string"})))
    async def checkpoint():
        # async: a one-row indexed read is cheaper than a trip through the thread pool.
        return Response(node.checkpoint_note(), media_type="text/plain; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    @app.get("/log", summary="A page of log entries after a sequence number", responses=answers(
        404, 422, not_modified=True, ok=(200, JSON, {"type": "object", "required": ["node", "after", "treeSize", "entries", "next"],
                                                    "properties": {"entries": {"type": "array"}}})))
    def log(request: Request, after: int = Query(0, ge=0), limit: int = Query(DEFAULT_PAGE, ge=1, le=MAX_PAGE)):
        size = node.tree_size()
        if after > size:
            raise ApiError(404, "not-found", f"after={after} is beyond the end of the log (tree size {size})")
        entries = node.log_page(after, limit)
        full = len(entries) == limit
        # A full page never changes: its treeSize is where it ends and its next link is fixed.
        tree_size = after + len(entries)
        next_link = f"/log?after={tree_size}&limit={limit}" if full else None
        parts = [b'{"node":', orjson.dumps(node.id), b',"after":', str(after).encode(), b',"treeSize":',
                 str(tree_size).encode(), b',"entries":[']
        parts.append(b",".join(b'{"seq":%d,"record":%s}' % (seq, leaf) for seq, leaf in entries))
        parts += [b'],"next":', orjson.dumps(next_link), b"}"]
        body = b"".join(parts)
        headers = {"Cache-Control": IMMUTABLE if full else "no-cache"}
        return cached(request, body, JSON, headers)

    @app.get("/log/proof/inclusion", summary="Inclusion proof of entry `seq` in the tree of size `size`",
             responses=answers(400, 422, ok=(200, JSON, {"type": "object", "required": ["seq", "treeSize", "hashes"]})))
    def inclusion(seq: int = Query(..., ge=1), size: int | None = Query(None, ge=1)):
        current = node.tree_size()
        size = current if size is None else size
        if not seq <= size <= current:
            raise ApiError(400, "bad-range", f"need 1 <= seq ({seq}) <= size ({size}) <= tree size ({current})")
        hashes = node.inclusion_proof(seq, size)
        return {"seq": seq, "treeSize": size, "hashes": [base64.b64encode(h).decode() for h in hashes]}

    @app.get("/log/proof/consistency", summary="Consistency proof between two tree sizes",
             responses=answers(400, 422, ok=(200, JSON, {"type": "object", "required": ["first", "second", "hashes"]})))
    def consistency(first: int = Query(..., ge=1), second: int | None = Query(None, ge=1)):
        current = node.tree_size()
        second = current if second is None else second
        if not first <= second <= current:
            raise ApiError(400, "bad-range", f"need 1 <= first ({first}) <= second ({second}) <= tree size ({current})")
        hashes = node.consistency_proof(first, second)
        return {"first": first, "second": second, "hashes": [base64.b64encode(h).decode() for h in hashes]}

    @app.get("/log/index", summary="Where a record's current version is in the log (for an inclusion proof)",
             responses=answers(404, 422, ok=(200, JSON, {
                 "type": "object", "required": ["id", "version", "seq", "deleted"],
                 "properties": {"id": {"type": "string"}, "version": {"type": "integer"},
                                "seq": {"type": "integer"}, "deleted": {"type": "boolean"}}})))
    def log_index(id: str = Query(..., min_length=1, max_length=512, description="A record id (or its short form)")):
        # The entry holding the bytes GET /records/{id} serves now (its tombstone when deleted).
        stored = node.record(id)
        if stored is None:
            raise ApiError(404, "not-found", f"no record {node.full_id(id)!r} on node {node.id}")
        return JSONResponse({"id": stored.id, "version": stored.version, "seq": stored.seq, "deleted": stored.deleted},
                            headers={"Cache-Control": "no-cache"})

    snapshot_cache: dict[int, bytes] = {}

    @app.get("/snapshot.jsonl.gz", summary="Every current record, one per line, gzip",
             responses=answers(ok=(200, "application/gzip", {"type": "string", "format": "binary"}), not_modified=True))
    def snapshot(request: Request):
        size, records = node.current_records()
        body = snapshot_cache.get(size)
        if body is None:
            body = gzip.compress(b"".join(r + b"\n" for r in records), compresslevel=6, mtime=0)
            snapshot_cache.clear()
            snapshot_cache[size] = body
        headers = {"BioFed-Tree-Size": str(size), "ETag": f'"snapshot-{size}"',
                   "Content-Disposition": f'attachment; filename="{node.id}-{size}.jsonl.gz"'}
        if not_modified(request, headers["ETag"]):
            return Response(status_code=304, headers=headers)
        # application/gzip: GZipMiddleware leaves an already compressed body alone.
        return Response(body, media_type="application/gzip", headers=headers)

    @app.get("/records/{record_id:path}", summary="A record's current signed bytes", responses={
        **answers(404, 422, ok=(200, JSON, RECORD_SCHEMA), not_modified=True),
        410: {"description": "Deleted: the body is the signed tombstone", "content": {JSON: {"schema": RECORD_SCHEMA}}}})
    def get_record(record_id: str, request: Request):
        stored = node.record(record_id)
        if stored is None:
            raise ApiError(404, "not-found", f"no record {node.full_id(record_id)!r} on node {node.id}")
        headers = {"ETag": f'"{stored.version}"', "Cache-Control": "no-cache"}
        if stored.deleted:
            return Response(stored.signed, status_code=410, media_type=JSON, headers=headers)
        return cached(request, stored.signed, JSON, headers)

    # --- authenticated writes

    def authorise(request: Request, scope: str):
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorised", "this request needs 'Authorization: Bearer <token>'",
                           headers={"WWW-Authenticate": "Bearer"})
        found = node.authenticate(token.strip())
        if found is None:
            raise ApiError(401, "unauthorised", "the token is unknown or revoked",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if not found.allows(scope):
            raise ApiError(403, "forbidden", f"token {found.name!r} lacks the {scope!r} scope")
        return found

    async def read_body(request: Request) -> dict:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_RECORD_BYTES):
            raise ApiError(413, "too-large", f"body of {length} bytes is over the limit of {MAX_RECORD_BYTES}")
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > MAX_RECORD_BYTES:  # a lying or missing Content-Length
                raise ApiError(413, "too-large", f"body is over the limit of {MAX_RECORD_BYTES} bytes")
            chunks.append(chunk)
        try:
            body = jsonprofile.loads(b"".join(chunks))
        except jsonprofile.ProfileError as exc:
            raise ApiError(400, "bad-json", f"body: {exc}",
                           [{"pointer": exc.pointer, "rule": "json-profile", "message": exc.message}]) from None
        if not isinstance(body, dict):
            raise ApiError(400, "bad-json", "body must be a JSON object (the record)")
        return body

    def signed_response(record: dict, status: int, location: bool = False) -> Response:
        # The bytes this request wrote (JCS of the signed record = the log leaf), not a re-read:
        # a concurrent write to the same id must not show up in this answer.
        headers = {"ETag": f'"{record["version"]}"'}
        if location:
            headers["Location"] = f"/records/{record['id']}"
        return Response(canonicalize(record), status_code=status, media_type=JSON, headers=headers)

    @app.post("/records", status_code=201, summary="Create a record (scope: write)",
              responses=answers(400, 401, 403, 409, 413, 422, ok=(201, JSON, RECORD_SCHEMA)), openapi_extra=WRITE)
    async def create_record(request: Request):
        authorise(request, "write")
        body = await read_body(request)
        record = await run_in_threadpool(node.put, body, create=True)
        return signed_response(record, 201, location=True)

    @app.put("/records/{record_id:path}", summary="Update a record (scope: write; If-Match required)",
             responses=answers(400, 401, 403, 404, 410, 412, 413, 422, 428, ok=(200, JSON, RECORD_SCHEMA)),
             openapi_extra=UPDATE)
    async def update_record(record_id: str, request: Request):
        authorise(request, "write")
        expected = parse_version(request.headers.get("if-match"))
        if expected is None:
            raise ApiError(428, "if-match-required", "updates need 'If-Match: \"<current version>\"'")
        body = await read_body(request)
        full_id = node.full_id(record_id)
        if "id" in body and body["id"] != full_id and node.full_id(str(body["id"])) != full_id:
            raise ApiError(400, "id-mismatch", f"body id {body['id']!r} differs from the URL's {full_id!r}")
        body["id"] = full_id
        if node.record(full_id) is None:
            raise RecordNotFound(f"record {full_id} does not exist; create it with POST /records")
        record = await run_in_threadpool(node.put, body, expect_version=expected)
        return signed_response(record, 200)

    @app.delete("/records/{record_id:path}", summary="Delete a record: appends a signed tombstone (scope: delete)",
                responses=answers(400, 401, 403, 404, 410, 412, 422, ok=(200, JSON, RECORD_SCHEMA)),
                openapi_extra=DELETE)
    def delete_record(record_id: str, request: Request):
        authorise(request, "delete")
        expected = parse_version(request.headers.get("if-match"))
        tombstone = node.delete(record_id, expect_version=expected)
        return signed_response(tombstone, 200)

    return app


__all__ = ["create_app", "RecordInvalid"]
