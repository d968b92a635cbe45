"""`biofed validate FILE...`"""

import click


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def validate(files):
    """Validate BioFed records (JSON or JSONL) against the data standard."""
    raise click.ClickException("not yet implemented")
