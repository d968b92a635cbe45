"""GET /records/{id}: a record's current signed bytes (410 with the signed tombstone once deleted)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from biofed.node.routes.shared import JSON, RECORD_SCHEMA, ApiError, answers, cached, node_of

router = APIRouter()


@router.get("/records/{record_id:path}", summary="A record's current signed bytes", responses={
    **answers(404, 422, ok=(200, JSON, RECORD_SCHEMA), not_modified=True),
    410: {"description": "Deleted: the body is the signed tombstone", "content": {JSON: {"schema": RECORD_SCHEMA}}}})
def get_record(record_id: str, request: Request):
    node = node_of(request)
    stored = node.record(record_id)
    if stored is None:
        raise ApiError(404, "not-found", f"no record {node.full_id(record_id)!r} on node {node.id}")
    headers = {"ETag": f'"{stored.version}"', "Cache-Control": "no-cache"}
    if stored.deleted:
        return Response(stored.signed, status_code=410, media_type=JSON, headers=headers)
    return cached(request, stored.signed, JSON, headers)
