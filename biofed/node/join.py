"""`biofed node join-request`: a request, signed by the node's key, to join a registry."""

from pathlib import Path

import click


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

    from biofed.registry.document import make_join_request

    request = make_join_request(directory)
    text = json.dumps(request, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"join request for node {request['id']} (key {request['publicKey']['kid']}) written to {output}",
                   err=True)
