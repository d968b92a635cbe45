"""`biofed registry ...`: the network operator's commands (see docs/registry.md).

Each command is a thin layer over `biofed.registry.store.RegistryStore`.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click

from biofed.errors import BiofedError
from biofed.protocol.fetch import DEFAULT_TIMEOUT, fetch_json
from biofed.protocol.registry import MAX_REGISTRY_BYTES, Registry, verify_registry
from biofed.registry.store import RegistryStore, read_document
from biofed.trust import jsonprofile
from biofed.trust.keys import PublicKey

registry_dir = click.argument("directory", type=click.Path(file_okay=False, path_type=Path))


def _echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _changed(document: dict, what: str) -> None:
    click.echo(f"registry {document['name']} version {document['version']}: {what} (expires {document['expires']})")


@click.group()
def registry():
    """Who is in the network, and which keys they sign with (see docs/registry.md)."""


@registry.command()
@registry_dir
@click.option("--name", required=True, help="The registry's name, e.g. biofed-eu (lower-case letters, digits, '-', '.').")
@click.option("--validity-days", default=7, show_default=True, type=click.IntRange(min=1),
              help="How long each signed version stays valid; re-sign ('biofed registry sign') well before.")
def init(directory, name, validity_days):
    """Create a registry in DIRECTORY with a new signing key and version 1 (no nodes)."""
    store = RegistryStore.init(directory, name=name, validity_days=validity_days)
    document = store.document()
    _changed(document, "created")
    click.echo(f"registry key: {store.signing_key.public.multibase}")
    click.echo("Give this key to aggregator operators (--registry-key) so they can pin it.")


@registry.command()
@registry_dir
@click.argument("request", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--offline", is_flag=True,
              help="Do not contact the node; the entry records controlVerified: false.")
@click.option("--timeout", default=DEFAULT_TIMEOUT, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds to wait for the node's descriptor.")
def add(directory, request, offline, timeout):
    """Admit a node with its signed join REQUEST (from 'biofed node join-request').

    Unless --offline, the node's descriptor at its baseUrl must serve the same
    id and key: proof that the requester controls that address.
    """
    store = RegistryStore.open(directory)
    try:
        join_request = jsonprofile.loads(request.read_bytes())
    except jsonprofile.ProfileError as exc:
        raise BiofedError(f"{request}: {exc}") from None
    entry = store.add_node(join_request, offline=offline, timeout=timeout)
    verified = "control verified" if entry["controlVerified"] else "control NOT verified (--offline)"
    _changed(store.document(), f"added node {entry['id']} with key {entry['keys'][0]['kid']}, {verified}")


@registry.command("list")
@registry_dir
@click.option("--json", "as_json", is_flag=True, help="The node entries as JSON.")
def list_nodes(directory, as_json):
    """List the nodes of the registry."""
    reg = RegistryStore.open(directory).registry()
    if as_json:
        _echo_json(reg.nodes)
        return
    click.echo(f"registry {reg.name} version {reg.version}, expires {reg.document['expires']}")
    for node in reg.nodes:
        active = [k["kid"] for k in node["keys"] if k["status"] == "active"]
        flag = "" if node["controlVerified"] else "  (control not verified)"
        click.echo(f"{node['id']:<24} {node['status']:<9} {node['country']} {node['baseUrl']} "
                   f"key {', '.join(active) or '-'}{flag}")


@registry.command()
@registry_dir
@click.argument("node_id", metavar="NODE", required=False)
def show(directory, node_id):
    """Show one node's entry, or the whole current registry document."""
    reg = RegistryStore.open(directory).registry()
    if node_id is None:
        _echo_json(reg.document)
        return
    node = reg.node(node_id)
    if node is None:
        raise BiofedError(f"node {node_id!r} is not in registry {reg.name}")
    _echo_json(node)


def _status_command(name: str, status: str, help_text: str):
    @registry.command(name, help=help_text)
    @registry_dir
    @click.argument("node_id", metavar="NODE")
    def command(directory, node_id):
        document = RegistryStore.open(directory).set_status(node_id, status)
        _changed(document, f"node {node_id} is {status}")

    return command


_status_command("suspend", "suspended", "Suspend NODE: aggregators stop harvesting it until 'activate'.")
_status_command("activate", "active", "Make a suspended NODE active again.")
_status_command("remove", "removed", "Remove NODE for good (its id is never reused).")


@registry.command("rotate-node-key")
@registry_dir
@click.argument("node_id", metavar="NODE")
@click.option("--new-key", help="The new public key: multibase (z6Mk...) or a JWK/PEM file.")
@click.option("--statement", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The node's KeyRotation statement (JSON), signed by the old key.")
@click.option("--from-node", metavar="URL", help="Read the descriptor and rotation statement here "
                                                "(default: the node's registered baseUrl).")
@click.option("--offline", is_flag=True, help="Do not contact the node: pin --new-key as given.")
@click.option("--at", metavar="TIME", help="With --offline: the rotation time (default: now); the old key stays "
                                          "valid through that second, the new one from it.")
@click.option("--timeout", default=DEFAULT_TIMEOUT, show_default=True, type=click.FloatRange(min=0.1))
def rotate_node_key(directory, node_id, new_key, statement, from_node, offline, at, timeout):
    """Pin NODE's new key and retire the old one.

    By default the node's KeyRotation statement (signed by the old key) is
    fetched from the node and checked; the old key retires at the rotation time.
    """
    key = PublicKey.parse(new_key) if new_key else None
    stmt = None
    if statement:
        try:
            stmt = jsonprofile.loads(statement.read_bytes())
        except jsonprofile.ProfileError as exc:
            raise BiofedError(f"{statement}: {exc}") from None
    store = RegistryStore.open(directory)
    document = store.rotate_node_key(node_id, new_key=key, statement=stmt, from_node=from_node,
                                     offline=offline, at=at, timeout=timeout)
    node = Registry(document).node(node_id)
    active = [k["kid"] for k in node["keys"] if k["status"] == "active"]
    _changed(document, f"node {node_id} now signs with key {', '.join(active)}")


# A kid is base64url: one in 64 starts with '-', which must not be read as an option.
@registry.command("revoke-node-key", context_settings={"ignore_unknown_options": True})
@registry_dir
@click.argument("node_id", metavar="NODE")
@click.argument("kid", metavar="KID")
@click.option("--compromised-since", required=True, metavar="TIME",
              help="RFC 3339 time from which signatures by this key are refused, e.g. 2026-11-20T00:00:00Z.")
def revoke_node_key(directory, node_id, kid, compromised_since):
    """Revoke NODE's key KID: signatures made with it since --compromised-since are refused."""
    document = RegistryStore.open(directory).revoke_node_key(node_id, kid, compromised_since)
    _changed(document, f"key {kid} of node {node_id} revoked")


@registry.command()
@registry_dir
def sign(directory):
    """Re-sign: a new version with a fresh expiry, nothing else changed (run on a schedule)."""
    _changed(RegistryStore.open(directory).sign(), "re-signed")


@registry.command()
@click.argument("source", metavar="FILE_OR_URL")
@click.option("--key", "key_text", required=True, multiple=True,
              help="A trusted registry public key: multibase (z6Mk...) or a JWK/PEM/JWKS file. Repeatable.")
@click.option("--last-version", type=click.IntRange(min=1), help="Refuse versions older than this (rollback).")
def verify(source, key_text, last_version):
    """Verify a registry document (file or URL): signature, rollback, expiry."""
    if source.startswith(("http://", "https://")):
        document = fetch_json(source, max_bytes=MAX_REGISTRY_BYTES, timeout=30.0)
    else:
        document = read_document(Path(source))
    keys = [PublicKey.parse(text) for text in key_text]
    reg = verify_registry(document, keys, last_version=last_version)
    left = reg.expires - datetime.now(reg.expires.tzinfo)
    click.echo(f"{source}: registry {reg.name} version {reg.version} verified; {len(reg.active_nodes())} active "
               f"of {len(reg.nodes)} nodes; expires {reg.document['expires']} (in {left.days} d "
               f"{left.seconds // 3600} h)")


@registry.command()
@registry_dir
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8002, show_default=True, type=int)
def serve(directory, host, port):
    """Serve the registry over HTTP: /registry.json, /registry/{version}.json, /registry/versions."""
    from biofed.registry.server import create_app
    from biofed.serving import run_server

    run_server(create_app(directory), host=host, port=port, log_level="info")
