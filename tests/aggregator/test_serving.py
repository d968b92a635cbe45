"""Every `serve` command says in one line when its port is taken, instead of uvicorn's log."""

import socket
import subprocess
import sys

import pytest
from support.catalogue_sample import build_sample_catalogue

from biofed.node.store import init_node
from biofed.registry.store import RegistryStore


@pytest.fixture
def busy_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def serve(*args):
    return subprocess.run([sys.executable, "-m", "biofed", *args], capture_output=True, text=True, timeout=60)


def test_serve_commands_refuse_a_busy_port_in_one_line(tmp_path, busy_port):
    node, _ = init_node(tmp_path / "node", node_id="bioregio-stern", name="BioRegio STERN", country="DE")
    node.close()
    RegistryStore.init(tmp_path / "registry", name="biofed-test")
    build_sample_catalogue(tmp_path / "catalogue.db")
    for command in (["node", "serve", str(tmp_path / "node")],
                    ["registry", "serve", str(tmp_path / "registry")],
                    ["aggregator", "serve", "--db", str(tmp_path / "catalogue.db")]):
        result = serve(*command, "--port", str(busy_port))
        assert result.returncode == 1, (command, result.stderr)
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert errors == [f"Error: port(s) {busy_port} on 127.0.0.1 are in use (is it already running?); "
                          "stop it or choose another port"], result.stderr
        assert "Traceback" not in result.stderr
