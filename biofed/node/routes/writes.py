"""The write API: POST, PUT and DELETE of records, with a bearer token of the right scope.

Request bodies are read as raw bytes and parsed with the strict JSON profile
here, never by FastAPI/pydantic, so that every malformed body gets our error
shape and the exact reason.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from biofed.node.routes.shared import JSON, RECORD_SCHEMA, ApiError, answers, node_of
from biofed.node.store import RecordNotFound
from biofed.trust import jsonprofile
from biofed.trust.canonical import canonicalize
from biofed.trust.jsonprofile import MAX_RECORD_BYTES

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

router = APIRouter()


def parse_version(header: str | None) -> int | None:
    if header is None:
        return None
    match = re.fullmatch(r'\s*(?:W/)?"?(\d{1,15})"?\s*', header)
    if not match:
        raise ApiError(400, "bad-if-match", f"If-Match {header!r} is not a version such as \"3\"")
    return int(match.group(1))


def authorise(request: Request, scope: str):
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorised", "this request needs 'Authorization: Bearer <token>'",
                       headers={"WWW-Authenticate": "Bearer"})
    found = node_of(request).authenticate(token.strip())
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


@router.post("/records", status_code=201, summary="Create a record (scope: write)",
             responses=answers(400, 401, 403, 409, 413, 422, ok=(201, JSON, RECORD_SCHEMA)), openapi_extra=WRITE)
async def create_record(request: Request):
    authorise(request, "write")
    body = await read_body(request)
    record = await run_in_threadpool(node_of(request).put, body, create=True)
    return signed_response(record, 201, location=True)


@router.put("/records/{record_id:path}", summary="Update a record (scope: write; If-Match required)",
            responses=answers(400, 401, 403, 404, 410, 412, 413, 422, 428, ok=(200, JSON, RECORD_SCHEMA)),
            openapi_extra=UPDATE)
async def update_record(record_id: str, request: Request):
    node = node_of(request)
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


@router.delete("/records/{record_id:path}", summary="Delete a record: appends a signed tombstone (scope: delete)",
               responses=answers(400, 401, 403, 404, 410, 412, 422, ok=(200, JSON, RECORD_SCHEMA)),
               openapi_extra=DELETE)
def delete_record(record_id: str, request: Request):
    authorise(request, "delete")
    expected = parse_version(request.headers.get("if-match"))
    tombstone = node_of(request).delete(record_id, expect_version=expected)
    return signed_response(tombstone, 200)
