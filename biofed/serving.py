"""Running an HTTP service: one place that checks the address and starts uvicorn, and HEAD for every GET."""

from __future__ import annotations

import socket

from biofed.errors import BiofedError


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_ports_free(ports: list[int], host: str = "127.0.0.1") -> None:
    busy = [port for port in ports if not port_free(port, host)]
    if busy:
        raise BiofedError(f"port(s) {', '.join(map(str, busy))} on {host} are in use (is it already running?); "
                          "stop it or choose another port")


def run_server(app, *, host: str, port: int, **options) -> None:
    """uvicorn.run, after a one-line error (not uvicorn's log) when the port is taken."""
    import uvicorn

    check_ports_free([port], host)
    uvicorn.run(app, host=host, port=port, **options)


def free_port_run(span: int, host: str = "127.0.0.1", attempts: int = 50) -> int:
    """The first of `span` consecutive free ports (e.g. a demo's registry and six nodes)."""
    for _ in range(attempts):
        with socket.socket() as probe:
            probe.bind((host, 0))
            base = probe.getsockname()[1]
        if base + span < 65535 and all(port_free(port, host) for port in range(base, base + span)):
            return base
    raise BiofedError(f"no run of {span} free ports on {host}")


class HeadLikeGet:
    """HEAD wherever GET is served (RFC 9110 §9.3.2), for every route of the app it wraps.

    A HEAD request runs through the app as the GET it stands for, so the status and
    every header (ETag, Content-Type, Content-Length, Cache-Control, CORS, gzip) are
    the GET's, If-None-Match gives the same 304, and only GET handlers (the public,
    read-only ones) can ever run; then the body is dropped. A path without a GET route
    still answers 405 as before. A 405's Allow gains HEAD wherever it lists GET.
    Plain ASGI, outermost: the server itself still sees the HEAD request.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        head = scope["method"] == "HEAD"

        async def send_like_get(message):
            kind = message["type"]
            if kind == "http.response.start":
                if message["status"] == 405:
                    headers = [_allow_head(name, value) for name, value in message.get("headers", [])]
                    message = {**message, "headers": headers}
            elif head and kind == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b""}
            elif head and kind == "http.response.pathsend":
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        # a copy: the server's own scope keeps "HEAD" (it sends no body for it either)
        await self.app({**scope, "method": "GET"} if head else scope, receive, send_like_get)


def _allow_head(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    if name.lower() != b"allow":
        return name, value
    methods = [method.strip() for method in value.split(b",")]
    if b"GET" in methods and b"HEAD" not in methods:
        methods.insert(methods.index(b"GET") + 1, b"HEAD")
    return name, b", ".join(methods)
