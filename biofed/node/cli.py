"""`biofed node ...` commands."""

import click


@click.group()
def node():
    """node commands (see docs/node.md)."""
