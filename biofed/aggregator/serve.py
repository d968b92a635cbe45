"""`biofed aggregator serve`: the public Datasette catalogue."""

import click


@click.command()
@click.option("--db", "db_path", default="catalogue.db", show_default=True)
@click.option("--port", default=8001, show_default=True)
def serve(db_path, port):
    """Serve the catalogue with Datasette."""
    raise click.ClickException("not yet implemented")
