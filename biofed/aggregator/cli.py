"""`biofed aggregator ...` commands."""

import click

from biofed.aggregator.serve import serve


@click.group()
def aggregator():
    """Harvest the network, verify every record, build and serve the catalogue."""


aggregator.add_command(serve)
