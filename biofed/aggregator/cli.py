"""`biofed aggregator ...` commands."""

import click


@click.group()
def aggregator():
    """aggregator commands (see docs/aggregator.md)."""
