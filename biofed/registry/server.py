"""Serve a registry directory over HTTP (protocol.md §7).

Files are read on every request, so a `biofed registry ...` change made while
the server runs is served at once. A static copy of registry.json and
history/ behind any web server works just as well; this app adds ETags.

The OpenAPI description (/openapi.json) declares every status, header and
body each route answers; tests/registry/test_fuzz_registry_api.py holds the app to it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from biofed.registry.store import HISTORY_DIR, REGISTRY_FILE, RegistryStore
from biofed.serving import HeadLikeGet

JSON = "application/json"
IMMUTABLE = "public, max-age=31536000, immutable"
# The names history/ files have: a version in decimal without a leading zero, at most 2^53 - 1 (16 digits,
# the strict JSON profile's bound). Anything else, Unicode digits included, is no version: 404.
VERSION = re.compile(r"[1-9][0-9]{0,15}")

# --- OpenAPI declarations of what each route really answers

ERROR_SCHEMA = {  # the protocol's error shape (docs/protocol.md §6)
    "type": "object", "required": ["error", "message", "errors"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}, "errors": {"type": "array"}},
}
JWK_SCHEMA = {"type": "object", "required": ["kty", "crv", "x", "kid"]}
REGISTRY_SCHEMA = {  # the outline; the data standard's schemas/registry.json has the last word
    "type": "object", "required": ["type", "name", "version", "issued", "expires", "registryKeys", "nodes", "proof"],
    "properties": {
        "type": {"const": "BioFedRegistry"}, "name": {"type": "string"}, "version": {"type": "integer", "minimum": 1},
        "issued": {"type": "string"}, "expires": {"type": "string"},
        "registryKeys": {"type": "array", "minItems": 1, "items": JWK_SCHEMA},
        "nodes": {"type": "array", "items": {
            "type": "object", "required": ["id", "baseUrl", "status", "keys"],
            "properties": {"status": {"enum": ["active", "suspended", "removed"]}, "keys": {"type": "array", "items": {
                **JWK_SCHEMA, "properties": {"status": {"enum": ["active", "retired", "revoked"]}}}}}}},
        "proof": {"type": "object"},
    },
}
VERSIONS_SCHEMA = {
    "type": "object", "required": ["name", "current", "versions"], "additionalProperties": False,
    "properties": {"name": {"type": "string"}, "current": {"type": "integer", "minimum": 1},
                   "versions": {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 1}}},
}
WELL_KNOWN_SCHEMA = {
    "type": "object", "required": ["name", "keys", "current", "version"], "additionalProperties": False,
    "properties": {"name": {"type": "string"},
                   "keys": {"type": "object", "required": ["keys"], "additionalProperties": False,
                            "properties": {"keys": {"type": "array", "minItems": 1, "items": JWK_SCHEMA}}},
                   "current": {"const": "/registry.json"}, "version": {"type": "integer", "minimum": 1}},
}
CORS = {"Access-Control-Allow-Origin": {"required": True, "schema": {"const": "*"}}}
CACHED = {"ETag": {"required": True, "schema": {"type": "string", "pattern": '^"[0-9a-f]+"$'}},
          "Cache-Control": {"required": True, "schema": {"type": "string"}}, **CORS}
IF_NONE_MATCH = {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"},
                 "description": "ETags the client holds (or *): 304 when one of them is the answer's"}
VERSION_PARAMETER = {"name": "version", "in": "path", "required": True,
                     "schema": {"type": "string", "pattern": f"^{VERSION.pattern}$"},
                     "description": "A version number, as in history/<version>.json; anything else is 404"}


def _ok(schema: dict, headers: dict | None = None) -> dict:
    declared = {"description": "Success", "content": {JSON: {"schema": schema}}}
    return {**declared, "headers": headers} if headers else declared


NOT_MODIFIED = {"description": "Not modified (If-None-Match named the ETag)", "headers": CACHED}
NOT_FOUND = {"description": "Not a version this registry has signed", "content": {JSON: {"schema": ERROR_SCHEMA}}}


def _etag_matches(request: Request, etag: str) -> bool:
    given = request.headers.get("if-none-match")
    if not given:
        return False
    return given.strip() == "*" or etag in [t.strip().removeprefix("W/") for t in given.split(",")]


def _json_file(request: Request, path: Path, etag: str, cache: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": cache, "Access-Control-Allow-Origin": "*"}
    if _etag_matches(request, etag):
        return Response(status_code=304, headers=headers)
    return Response(path.read_bytes(), media_type=JSON, headers=headers)


def _error(status: int, error: str, message: str, headers=None) -> JSONResponse:
    return JSONResponse({"error": error, "message": message, "errors": []}, status_code=status, headers=headers)


def create_app(directory) -> FastAPI:
    store = RegistryStore.open(Path(directory))
    app = FastAPI(title=f"BioFed registry {store.name}",
                  description="The signed list of BioFed nodes and their keys (docs/protocol.md §7).")
    app.state.store = store
    app.add_middleware(HeadLikeGet)  # HEAD wherever GET is served

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException):
        # unknown paths and methods get the protocol's error shape too, not FastAPI's {"detail": ...}
        return _error(exc.status_code, "not-found" if exc.status_code == 404 else "http-error", str(exc.detail),
                      headers=getattr(exc, "headers", None))

    @app.get("/registry.json", summary="The current signed registry document",
             responses={200: _ok(REGISTRY_SCHEMA, CACHED), 304: NOT_MODIFIED},
             openapi_extra={"parameters": [IF_NONE_MATCH]})
    def current(request: Request):
        version = store.document()["version"]
        # no-cache: clients revalidate every time (cheap: 304) so a new version is seen at once.
        return _json_file(request, store.directory / REGISTRY_FILE, f'"{version}"', "no-cache")

    @app.get("/registry/versions", summary="Every version signed so far", responses={200: _ok(VERSIONS_SCHEMA)})
    def versions():
        numbers = store.versions()
        return {"name": store.name, "current": store.document()["version"], "versions": numbers}

    # The path parameter is read raw (not declared to FastAPI): a name that is no version is 404, as from a
    # static copy, not FastAPI's 422.
    @app.get("/registry/{version}.json", summary="One version of the registry, as signed",
             responses={200: _ok(REGISTRY_SCHEMA, CACHED), 304: NOT_MODIFIED, 404: NOT_FOUND},
             openapi_extra={"parameters": [VERSION_PARAMETER, IF_NONE_MATCH]})
    def one_version(request: Request):
        version = request.path_params["version"]
        # Not str.isdigit() + int(): they take '²' (then int() fails: 500), Arabic-Indic digits and
        # leading zeros (aliases a static copy does not have), and names too long for the file system (500).
        if not VERSION.fullmatch(version):
            return _error(404, "not-found", f"{version[:40]!r} is not a version number")
        path = store.directory / HISTORY_DIR / f"{version}.json"
        if not path.is_file():
            return _error(404, "not-found", f"registry {store.name} has no version {version}")
        # A signed version never changes.
        etag = '"' + hashlib.sha256(path.read_bytes()).hexdigest()[:32] + '"'
        return _json_file(request, path, etag, IMMUTABLE)

    @app.get("/.well-known/biofed-registry.json", summary="The registry's name and public keys",
             responses={200: _ok(WELL_KNOWN_SCHEMA, CORS)})
    def well_known():
        document = store.document()
        return JSONResponse({"name": store.name, "keys": {"keys": document["registryKeys"]},
                             "current": "/registry.json", "version": document["version"]},
                            headers={"Access-Control-Allow-Origin": "*"})

    return app
