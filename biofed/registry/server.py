"""Serve a registry directory over HTTP (protocol.md §7).

Files are read on every request, so a `biofed registry ...` change made while
the server runs is served at once. A static copy of registry.json and
history/ behind any web server works just as well; this app adds ETags.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from biofed.registry.store import HISTORY_DIR, REGISTRY_FILE, RegistryStore
from biofed.serving import HeadLikeGet

JSON = "application/json"


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


def create_app(directory) -> FastAPI:
    store = RegistryStore.open(Path(directory))
    app = FastAPI(title=f"BioFed registry {store.name}",
                  description="The signed list of BioFed nodes and their keys (docs/protocol.md §7).")
    app.state.store = store
    app.add_middleware(HeadLikeGet)  # HEAD wherever GET is served

    def not_found(message: str) -> JSONResponse:
        return JSONResponse({"error": "not-found", "message": message, "errors": []}, status_code=404)

    @app.get("/registry.json", summary="The current signed registry document")
    def current(request: Request):
        version = store.document()["version"]
        # no-cache: clients revalidate every time (cheap: 304) so a new version is seen at once.
        return _json_file(request, store.directory / REGISTRY_FILE, f'"{version}"', "no-cache")

    @app.get("/registry/versions", summary="Every version signed so far")
    def versions():
        numbers = store.versions()
        return {"name": store.name, "current": store.document()["version"], "versions": numbers}

    @app.get("/registry/{version}.json", summary="One version of the registry, as signed")
    def one_version(version: str, request: Request):
        if not version.isdigit():
            return not_found(f"{version!r} is not a version number")
        path = store.directory / HISTORY_DIR / f"{int(version)}.json"
        if not path.is_file():
            return not_found(f"registry {store.name} has no version {int(version)}")
        # A signed version never changes.
        etag = '"' + hashlib.sha256(path.read_bytes()).hexdigest()[:32] + '"'
        return _json_file(request, path, etag, "public, max-age=31536000, immutable")

    @app.get("/.well-known/biofed-registry.json", summary="The registry's name and public keys")
    def well_known():
        document = store.document()
        return JSONResponse({"name": store.name, "keys": {"keys": document["registryKeys"]},
                             "current": "/registry.json", "version": document["version"]},
                            headers={"Access-Control-Allow-Origin": "*"})

    return app
