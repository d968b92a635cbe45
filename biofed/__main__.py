from biofed.cli import cli

cli()
