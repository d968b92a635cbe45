"""`biofed node ...` commands."""

import click

from biofed.node.join import join_request


@click.group()
def node():
    """Run a cluster's publishing node (see docs/node.md)."""


node.add_command(join_request)
