"""What every router uses: the app's Node, the error shape, ETag answers and the OpenAPI declarations."""

from __future__ import annotations

import hashlib

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from biofed.node.store import Node

IMMUTABLE = "public, max-age=31536000, immutable"
JSON = "application/json"


def node_of(request: Request) -> Node:
    """The node the app serves (create_app puts it on app.state).

    Read from the request, not injected with Depends: a dependency is solved on
    every request, and these routes are the node's hot path (docs/benchmarks.md).
    """
    return request.app.state.node


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
