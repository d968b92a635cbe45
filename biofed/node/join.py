"""`biofed node join-request`: a request, signed by the node's key, to join a registry."""

from __future__ import annotations

from pathlib import Path

import click


def make_join_request(node_dir) -> dict:
    """The join request (protocol.md §7) for the node in `node_dir`, signed with its current key."""
    from biofed.node.store import Node  # here, not at the top: `biofed --help` stays quick
    from biofed.protocol.join import build_join_request

    with Node.open(node_dir) as node:
        key = node.signing_key
        valid_from = next((entry.get("validFrom") for entry in node.keys() if entry.get("kid") == key.kid), None)
        return build_join_request(node.config.to_dict(), key, key_valid_from=valid_from)


@click.command("join-request")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the request here (default: standard output).")
def join_request(directory, output):
    """Write a join request signed by the node's key.

    Send it to the network operator, who admits the node with
    'biofed registry add'. It holds no secret.
    """
    import json

    request = make_join_request(directory)
    text = json.dumps(request, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"join request for node {request['id']} (key {request['publicKey']['kid']}) written to {output}",
                   err=True)
