"""Identifiers of the protocol (docs/protocol.md §2): node ids and the verificationMethod of a proof."""

from __future__ import annotations

import re

NODE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
NODE_METHOD = re.compile(r"urn:biofed:([a-z0-9][a-z0-9-]{1,62})#([A-Za-z0-9_-]{43})")


def node_method(node_id: str, kid: str) -> str:
    """verificationMethod of a proof made by a node's key."""
    return f"urn:biofed:{node_id}#{kid}"


def node_method_prefix(node_id: str) -> str:
    return f"urn:biofed:{node_id}#"


def parse_node_method(method) -> tuple[str, str] | None:
    """`urn:biofed:<node id>#<kid>` -> (node id, kid); None for anything else."""
    match = NODE_METHOD.fullmatch(method) if isinstance(method, str) else None
    return (match.group(1), match.group(2)) if match else None


def registry_method(name: str, kid: str) -> str:
    """verificationMethod of a registry document's proof."""
    return f"urn:biofed:registry:{name}#{kid}"


def registry_method_prefix(name: str) -> str:
    return f"urn:biofed:registry:{name}#"
