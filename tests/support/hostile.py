"""Real servers on loopback for harvest tests: honest nodes and hostile ones.

`serve(app)` runs any ASGI app with uvicorn in a thread on a free port.
`LogServer` is a small Starlette app that speaks the node protocol (section 6)
from a list of real signed leaves and a real signing key, and can misbehave
on purpose: answer 500, send malformed JSON, an endless body, a trickle,
redirect off its origin, serve a stale checkpoint, a truncated or a
rewritten log, accept a request and never answer it ("silent": the
checkpoint, "silent-log": log pages), or serve its log in many small pages
each trickled at a rate the harvester accepts (`page_entries`, `trickle_rate`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from biofed.trust import merkle, proofs
from biofed.trust.canonical import canonicalize
from biofed.trust.checkpoint import Checkpoint
from biofed.trust.keys import SigningKey


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Served:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def serve(app, port: int | None = None) -> Served:
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    return Served(f"http://127.0.0.1:{port}", server, thread)


def utc(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def sign_record(content: dict, key: SigningKey, node_id: str, *, created: str | None = None) -> bytes:
    """Leaf bytes of a record signed the way a node signs (for hostile logs)."""
    signed = proofs.sign(content, key, f"urn:biofed:{node_id}#{key.kid}", created=created)
    return canonicalize(signed)


def actor(node_id: str, local: str, version: int = 1, name: str | None = None, when: str = "2026-01-01T00:00:00Z") -> dict:
    return {"id": f"{node_id}/actor/{local}", "type": "Actor", "version": version, "dateModified": when,
            "names": [{"value": name or f"Actor {local}", "preferred": True}], "actorType": "sme", "country": "DE"}


def registry_document(key: SigningKey, nodes: list[dict], *, version: int = 1, name: str = "test",
                      expires: datetime | None = None, issued: datetime | None = None) -> dict:
    """A registry document as in protocol.md section 7, signed by `key`."""
    issued = issued or datetime.now(timezone.utc) - timedelta(minutes=1)
    expires = expires or datetime.now(timezone.utc) + timedelta(days=7)
    doc = {"type": "BioFedRegistry", "name": name, "version": version, "issued": utc(issued), "expires": utc(expires),
           "registryKeys": [key.public.jwk()], "nodes": nodes}
    return proofs.sign(doc, key, f"urn:biofed:registry:{name}#{key.kid}")


def registry_node(node_id: str, base_url: str, keys: list[dict], *, licence: str = "CC-BY-4.0",
                  status: str = "active", name: str | None = None) -> dict:
    return {"id": node_id, "name": name or node_id.title(), "country": "DE", "region": "DE1", "baseUrl": base_url,
            "licence": licence, "status": status, "controlVerified": True, "keys": keys}


def key_entry(key: SigningKey, *, status: str = "active", valid_from: str = "2020-01-01T00:00:00Z",
              compromised_since: str | None = None) -> dict:
    return {**key.public.jwk(), "status": status, "validFrom": valid_from, "validUntil": None,
            "compromisedSince": compromised_since}


@dataclass
class LogServer:
    """A node log served from leaves, signed by `key`; `mode` picks a misbehaviour."""

    node_id: str
    key: SigningKey
    leaves: list[bytes] = field(default_factory=list)
    mode: str = "honest"
    checkpoint_age: timedelta = timedelta(0)
    claimed_size: int | None = None  # checkpoint over a prefix/superset (truncation tests)
    redirect_to: str | None = None
    page_entries: int | None = None  # at most this many entries per log page, whatever the limit asked
    trickle_rate: int | None = None  # bytes/s at which each log page is sent
    requests: list[str] = field(default_factory=list)

    def hashes(self, size: int) -> list[bytes]:
        return [merkle.leaf_hash(leaf) for leaf in self.leaves[:size]]

    def size(self) -> int:
        return self.claimed_size if self.claimed_size is not None else len(self.leaves)

    def checkpoint_note(self) -> str:
        size = self.size()
        root = merkle.root(self.hashes(size)) if size <= len(self.leaves) else merkle.root(self.hashes(len(self.leaves)))
        stamp = utc(datetime.now(timezone.utc) - self.checkpoint_age)
        return Checkpoint(f"biofed/node/{self.node_id}", size, root, stamp).sign(self.key)

    def app(self) -> Starlette:
        async def silent(request: Request):
            # The request was read; no answer ever comes. Ends when the client gives up (disconnects).
            while not await request.is_disconnected():
                await asyncio.sleep(0.02)
            return Response(b"", status_code=504)

        async def checkpoint(request: Request):
            self.requests.append(str(request.url.path))
            if self.mode == "silent":
                return await silent(request)
            if self.mode == "500":
                return PlainTextResponse("boom", status_code=500)
            if self.mode == "redirect":
                return RedirectResponse(self.redirect_to + "/checkpoint", status_code=302)
            return PlainTextResponse(self.checkpoint_note())

        async def log(request: Request):
            self.requests.append(str(request.url))
            after = int(request.query_params.get("after", 0))
            limit = int(request.query_params.get("limit", 500))
            if self.page_entries is not None:
                limit = min(limit, self.page_entries)
            if self.mode == "silent-log":
                return await silent(request)
            if self.trickle_rate:
                rate = self.trickle_rate

                async def steady():
                    body = self._page(after, limit)
                    step = max(1, rate // 20)
                    for i in range(0, len(body), step):
                        yield body[i : i + step]
                        await asyncio.sleep(0.05)
                return StreamingResponse(steady(), media_type="application/json")
            if self.mode == "malformed":
                return Response(b'{"node": "x", "entries": [{"seq": 1, "record": {"id": "a", "id": "b"}', media_type="application/json")
            if self.mode == "oversized":
                async def endless():
                    yield b'{"node": "' + self.node_id.encode() + b'", "entries": ['
                    chunk = b" " * 65536
                    for _ in range(100_000):
                        # Stop when the harvester hangs up, as a real server does: writing on into a closed
                        # connection keeps this server's loop busy and its next /checkpoint late.
                        if await request.is_disconnected():
                            return
                        yield chunk
                return StreamingResponse(endless(), media_type="application/json")
            if self.mode == "slow":
                async def trickle():
                    body = self._page(after, limit)
                    for i in range(0, len(body), 16):
                        yield body[i : i + 16]
                        await asyncio.sleep(0.05)
                return StreamingResponse(trickle(), media_type="application/json")
            return Response(self._page(after, limit), media_type="application/json")

        async def consistency(request: Request):
            first, second = int(request.query_params["first"]), int(request.query_params["second"])
            proof = merkle.consistency_proof(first, self.hashes(second))
            return JSONResponse({"first": first, "second": second, "hashes": [base64.b64encode(h).decode() for h in proof]})

        return Starlette(routes=[Route("/checkpoint", checkpoint), Route("/log", log),
                                 Route("/log/proof/consistency", consistency)])

    def _page(self, after: int, limit: int) -> bytes:
        chosen = self.leaves[after : after + limit]
        entries = b",".join(b'{"seq":%d,"record":%s}' % (after + i + 1, leaf) for i, leaf in enumerate(chosen))
        end = after + len(chosen)
        return b'{"node":' + orjson.dumps(self.node_id) + b',"after":%d,"treeSize":%d,"entries":[' % (after, end) + entries + b'],"next":null}'


@contextlib.contextmanager
def running(*apps):
    servers = [serve(app) for app in apps]
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()
