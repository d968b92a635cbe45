"""Running an HTTP service: one place that checks the address and starts uvicorn."""

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
