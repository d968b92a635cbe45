"""Publish the catalogue: an immutable snapshot for Datasette, swapped in atomically.

The harvest writes `catalogue.db` (WAL, page by page); the public serves a
snapshot of it. `VACUUM INTO` makes a compact, consistent copy even while a
harvest runs; its inspect file is written first, then the copy is renamed over
the previous snapshot, so a reader sees the old file or the new one, never a
half-written one. `biofed aggregator serve` notices the new file and swaps it
in; replicas behind a CDN can copy the same two files.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import click

from biofed.aggregator.catalogue import build_inspect_file
from biofed.errors import BiofedError


def inspect_path_for(public_path: Path) -> Path:
    return public_path.with_name(public_path.stem + "-inspect.json")


def publish(db_path: str | Path, public_path: str | Path) -> Path:
    """Snapshot db_path to public_path (and its inspect file); return public_path."""
    db_path, public_path = Path(db_path), Path(public_path)
    if not db_path.is_file():
        raise BiofedError(f"no catalogue database at {db_path}: run `biofed aggregator harvest` first")
    if db_path.resolve() == public_path.resolve():
        raise BiofedError("the published snapshot must be another file than the harvested database")
    tmp = public_path.with_name(public_path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("VACUUM INTO ?", (str(tmp),))
    finally:
        conn.close()
    inspect_tmp = build_inspect_file(tmp, tmp.with_name(tmp.name + "-inspect.json"))
    os.replace(inspect_tmp, inspect_path_for(public_path))
    os.replace(tmp, public_path)
    return public_path


@click.command("publish")
@click.option("--db", "db_path", default="catalogue.db", show_default=True,
              type=click.Path(dir_okay=False, path_type=Path), help="The harvested catalogue database.")
@click.option("--to", "public_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The snapshot to serve, e.g. catalogue-public.db (replaced atomically).")
def publish_command(db_path, public_path):
    """Publish an immutable snapshot of the catalogue for `biofed aggregator serve`."""
    publish(db_path, public_path)
    click.echo(f"Published {public_path}", err=True)
