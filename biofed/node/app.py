"""The node's HTTP API (docs/protocol.md §6): the app, its middleware and error shapes.

The routes live in biofed.node.routes, one APIRouter per concern (discovery,
public feeds, records, the write API); they find the node on app.state.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from starlette.exceptions import HTTPException as StarletteHTTPException

from biofed.node import console
from biofed.node.routes import discovery, feeds, records, writes
from biofed.node.routes.shared import ApiError, error_response
from biofed.node.store import Node, NodeError, RecordInvalid
from biofed.serving import HeadLikeGet


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
        docs_url=None,  # /docs is the console's, with Swagger UI's files from the package (no CDN)
        redoc_url=None,
    )
    app.state.node = node
    app.state.snapshot_cache = {}  # GET /snapshot.jsonl.gz: the last one built, by tree size
    discovery.describe_bearer_tokens(app)
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

    # Registration order is the OpenAPI document's order of paths.
    for routes in (discovery, feeds, records, writes):
        app.include_router(routes.router)
    console.install(app)  # /admin (staff's web console), /docs
    return app


__all__ = ["create_app", "RecordInvalid"]
