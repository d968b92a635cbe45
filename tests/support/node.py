"""Helpers shared by the node tests (no tests here)."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner

from biofed.cli import cli
from biofed.node.samples import sample_actor
from biofed.node.store import init_node
from biofed.trust.keys import PublicKey

NODE_ID = "bioregio-stern"


def make_node(tmp_path, **kwargs):
    """A fresh node; returns (node, admin token)."""
    return init_node(tmp_path / "node", node_id=NODE_ID, name="BioRegio STERN", country="DE", region="DE1",
                     base_url="https://node.example", **kwargs)


def actors(n: int, start: int = 0, seed: int = 0) -> list[dict]:
    return [sample_actor(i, seed=seed) for i in range(start, start + n)]


def descriptor_keys(descriptor: dict) -> dict[str, PublicKey]:
    return {k["kid"]: PublicKey.from_jwk({f: k[f] for f in ("kty", "crv", "x", "kid")})
            for k in descriptor["keys"]["keys"]}


def loads(data: bytes):
    return orjson.loads(data)


# `biofed node ...` through click's runner

def run_cli(*args, ok=True):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def init(tmp_path) -> tuple[Path, str]:
    directory = tmp_path / "node"
    result = run_cli("node", "init", directory, "--id", NODE_ID, "--name", "BioRegio STERN", "--country", "DE",
                 "--region", "DE1", "--base-url", "https://node.example")
    return directory, result.stdout.strip()


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


