"""`biofed registry ...` commands."""

import click


@click.group()
def registry():
    """registry commands (see docs/registry.md)."""
