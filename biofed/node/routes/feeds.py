"""The public feeds an aggregator reads: checkpoint, log pages, proofs, log index, snapshot."""

from __future__ import annotations

import base64
import gzip

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from biofed.node.routes.shared import IMMUTABLE, JSON, ApiError, answers, cached, node_of, not_modified

DEFAULT_PAGE = 500
MAX_PAGE = 1000

router = APIRouter()


@router.get("/checkpoint", summary="The latest signed checkpoint (C2SP signed note)",
            responses=answers(ok=(200, "text/plain", {"type": "string"})))
async def checkpoint(request: Request):
    # async: a one-row indexed read is cheaper than a trip through the thread pool.
    return Response(node_of(request).checkpoint_note(), media_type="text/plain; charset=utf-8",
                    headers={"Cache-Control": "no-cache"})


@router.get("/log", summary="A page of log entries after a sequence number", responses=answers(
    404, 422, not_modified=True, ok=(200, JSON, {"type": "object", "required": ["node", "after", "treeSize", "entries", "next"],
                                                "properties": {"entries": {"type": "array"}}})))
def log(request: Request, after: int = Query(0, ge=0), limit: int = Query(DEFAULT_PAGE, ge=1, le=MAX_PAGE)):
    node = node_of(request)
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


@router.get("/log/proof/inclusion", summary="Inclusion proof of entry `seq` in the tree of size `size`",
            responses=answers(400, 422, ok=(200, JSON, {"type": "object", "required": ["seq", "treeSize", "hashes"]})))
def inclusion(request: Request, seq: int = Query(..., ge=1), size: int | None = Query(None, ge=1)):
    node = node_of(request)
    current = node.tree_size()
    size = current if size is None else size
    if not seq <= size <= current:
        raise ApiError(400, "bad-range", f"need 1 <= seq ({seq}) <= size ({size}) <= tree size ({current})")
    hashes = node.inclusion_proof(seq, size)
    return {"seq": seq, "treeSize": size, "hashes": [base64.b64encode(h).decode() for h in hashes]}


@router.get("/log/proof/consistency", summary="Consistency proof between two tree sizes",
            responses=answers(400, 422, ok=(200, JSON, {"type": "object", "required": ["first", "second", "hashes"]})))
def consistency(request: Request, first: int = Query(..., ge=1), second: int | None = Query(None, ge=1)):
    node = node_of(request)
    current = node.tree_size()
    second = current if second is None else second
    if not first <= second <= current:
        raise ApiError(400, "bad-range", f"need 1 <= first ({first}) <= second ({second}) <= tree size ({current})")
    hashes = node.consistency_proof(first, second)
    return {"first": first, "second": second, "hashes": [base64.b64encode(h).decode() for h in hashes]}


@router.get("/log/index", summary="Where a record's current version is in the log (for an inclusion proof)",
            responses=answers(404, 422, ok=(200, JSON, {
                "type": "object", "required": ["id", "version", "seq", "deleted"],
                "properties": {"id": {"type": "string"}, "version": {"type": "integer"},
                               "seq": {"type": "integer"}, "deleted": {"type": "boolean"}}})))
def log_index(request: Request,
              id: str = Query(..., min_length=1, max_length=512, description="A record id (or its short form)")):
    # The entry holding the bytes GET /records/{id} serves now (its tombstone when deleted).
    node = node_of(request)
    stored = node.record(id)
    if stored is None:
        raise ApiError(404, "not-found", f"no record {node.full_id(id)!r} on node {node.id}")
    return JSONResponse({"id": stored.id, "version": stored.version, "seq": stored.seq, "deleted": stored.deleted},
                        headers={"Cache-Control": "no-cache"})


@router.get("/snapshot.jsonl.gz", summary="Every current record, one per line, gzip",
            responses=answers(ok=(200, "application/gzip", {"type": "string", "format": "binary"}), not_modified=True))
def snapshot(request: Request):
    node = node_of(request)
    snapshot_cache: dict[int, bytes] = request.app.state.snapshot_cache  # the last snapshot built, by tree size
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
