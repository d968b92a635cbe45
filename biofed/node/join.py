"""`biofed node join-request`: a request, signed by the node's key, to join a registry."""

import click


@click.command("join-request")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
def join_request(directory):
    """Write a join request signed by the node's key."""
    raise click.ClickException("not yet implemented")
