"""Registry tests' helpers: serve an app on a free port, run the CLI, ask a node for its join request."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from click.testing import CliRunner

from biofed.cli import cli


@contextmanager
def serving(make_app):
    """Run `make_app(base_url)` with uvicorn on a free loopback port; yield the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(make_app(base_url), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield base_url
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()


def run(*args, ok=True):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 1, result.output
        assert result.output.count("Error:") == 1, result.output
    return result


def join(node_dir, tmp_path) -> Path:
    path = tmp_path / f"{Path(node_dir).name}-join.json"
    run("node", "join-request", node_dir, "--output", path)
    return path


