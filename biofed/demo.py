"""`biofed demo`: a real six-node network on loopback, from real data."""

import click


@click.command()
@click.option("--dir", "directory", default="biofed-demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--no-serve", is_flag=True, help="Build the network and the catalogue, then exit.")
def demo(directory, no_serve):
    """Run a demo network: nodes, registry, harvest, catalogue."""
    raise click.ClickException("the demo is not built yet")
