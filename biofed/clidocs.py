"""Generate docs/cli.md from the commands' own --help text.

    python -m biofed.clidocs            # rewrite docs/cli.md
    python -m biofed.clidocs --check    # exit 1 if docs/cli.md is out of date

tests/test_clidocs.py fails when the committed reference drifts from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from biofed.cli import cli

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def _walk(command: click.Command, path: list[str]):
    yield path, command
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            yield from _walk(command.commands[name], path + [name])


def render() -> str:
    parts = [
        "# Command-line reference\n",
        "Generated from `--help` by `python -m biofed.clidocs`; do not edit by hand.\n",
    ]
    for path, command in _walk(cli, ["biofed"]):
        with click.Context(command, info_name=" ".join(path), terminal_width=100, max_content_width=100) as ctx:
            text = command.get_help(ctx)
        heading = "#" * min(len(path) + 1, 4)
        parts.append(f"{heading} `{' '.join(path)}`\n\n```\n{text}\n```\n")
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not DOC.exists() or DOC.read_text(encoding="utf-8") != text:
            print(f"{DOC.name} is out of date: run python -m biofed.clidocs", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
