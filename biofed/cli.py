"""The `biofed` command. Each part keeps its own commands in its package
(`biofed.node.cli`, ...); this module only assembles them and turns known
errors into one readable line with a non-zero exit status."""

from __future__ import annotations

import sys

import click

from biofed import __version__
from biofed.errors import BiofedError


def _known_errors() -> tuple[type[BaseException], ...]:
    from biofed.trust.checkpoint import CheckpointError
    from biofed.trust.jsonprofile import ProfileError
    from biofed.trust.keys import KeyFormatError
    from biofed.trust.merkle import ProofFailed
    from biofed.trust.proofs import ProofError

    return (BiofedError, CheckpointError, ProfileError, KeyFormatError, ProofFailed, ProofError, OSError)


class BiofedGroup(click.Group):
    """A click group that reports BioFed errors as `Error: ...` lines, not tracebacks."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except _known_errors() as exc:
            if isinstance(exc, OSError) and not getattr(exc, "filename", None):
                raise
            raise click.ClickException(str(exc)) from None


@click.group(cls=BiofedGroup)
@click.version_option(__version__, prog_name="biofed")
def cli():
    """BioFed: signed open data about Europe's life-science actors and projects.

    Each cluster runs a node, a registry pins the nodes' keys, an aggregator
    harvests and verifies every record into a public Datasette catalogue.
    """


def _add_commands() -> None:
    from biofed.aggregator.cli import aggregator
    from biofed.demo import demo
    from biofed.node.cli import node
    from biofed.registry.cli import registry
    from biofed.schema.cli import validate
    from biofed.verify import verify

    for command in (node, registry, aggregator, validate, verify, demo):
        cli.add_command(command)


_add_commands()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(cli())
