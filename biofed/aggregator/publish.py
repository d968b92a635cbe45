"""Publish the catalogue: an immutable snapshot for Datasette, swapped in atomically.

The harvest writes `catalogue.db` (WAL, page by page); the public serves a
snapshot of it. `VACUUM INTO` makes a compact, consistent copy even while a
harvest runs; its inspect file is written first, then the copy is renamed over
the previous snapshot, so a reader sees the old file or the new one, never a
half-written one. `biofed aggregator serve` notices the new file and swaps it
in; replicas behind a CDN can copy the same two files.

With `datasette_files` the snapshot's folder becomes a Datasette
configuration directory: `catalogue.db`, `inspect-data.json` (which makes
Datasette open it immutable, with no count(*) per request), `metadata.yml`,
`settings.json`, `plugins/`, `templates/` and `biofed-static/` -- what
`datasette serve DIR --static biofed-static:DIR/biofed-static` runs as is and
what `datasette package` / `datasette publish` take as files and options
(docs/scaling.md shows the commands).
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import click

from biofed.aggregator.catalogue import build_inspect_file
from biofed.errors import BiofedError


def inspect_path_for(public_path: Path) -> Path:
    return public_path.with_name(public_path.stem + "-inspect.json")


DATASETTE_FILE_NAME = "catalogue.db"  # Datasette names a database after its file; the URLs are /catalogue/...


def publish(db_path: str | Path, public_path: str | Path, *, datasette_files: bool = False) -> Path:
    """Snapshot db_path to public_path (and its inspect file); return public_path.

    With datasette_files, also write the rest of a Datasette configuration
    directory next to it (see the module docstring); they are written before the
    snapshot is swapped in, so a replica reading the folder never finds a new
    database with old settings.
    """
    db_path, public_path = Path(db_path), Path(public_path)
    if not db_path.is_file():
        raise BiofedError(f"no catalogue database at {db_path}: run `biofed aggregator harvest` first")
    if db_path.resolve() == public_path.resolve():
        raise BiofedError("the published snapshot must be another file than the harvested database")
    if datasette_files and public_path.name != DATASETTE_FILE_NAME:
        raise BiofedError(f"--datasette-files: the snapshot must be named {DATASETTE_FILE_NAME}, not {public_path.name}"
                          " (Datasette names the database after its file, and the catalogue's URLs are /catalogue/...)")
    tmp = public_path.with_name(public_path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("VACUUM INTO ?", (str(tmp),))
    finally:
        conn.close()
    inspect_tmp = build_inspect_file(tmp, tmp.with_name(tmp.name + "-inspect.json"))
    if datasette_files:
        _write_datasette_files(public_path.parent, json.loads(inspect_tmp.read_text(encoding="utf-8")))
    os.replace(inspect_tmp, inspect_path_for(public_path))
    os.replace(tmp, public_path)
    return public_path


STATIC_MOUNT = "biofed-static"  # the catalogue's templates link /biofed-static/...: `--static biofed-static:DIR/biofed-static`


def _write_datasette_files(folder: Path, inspect_data: dict) -> None:
    """inspect-data.json, metadata.yml, settings.json, plugins/, templates/ and biofed-static/ of a
    Datasette configuration directory."""
    from biofed.aggregator.datasette import METADATA_PATH, STATIC_PATH, TEMPLATES_PATH
    from biofed.aggregator.serve import DATABASE_NAME, SETTINGS

    (info,) = inspect_data.values()  # inspected under the temporary name: name the file being published
    files = {
        "inspect-data.json": json.dumps({DATABASE_NAME: {**info, "file": DATASETTE_FILE_NAME}}, indent=2),
        "metadata.yml": METADATA_PATH.read_text(encoding="utf-8"),
        "settings.json": json.dumps(SETTINGS, indent=2),
    }
    plugins_source = METADATA_PATH.parent / "plugins"
    for plugin in sorted(plugins_source.glob("*.py")):
        if plugin.name != "__init__.py":  # loaded by file name from plugins/: the hooks are module-level
            files[f"plugins/{plugin.name}"] = plugin.read_text(encoding="utf-8")
    for source, target in ((TEMPLATES_PATH, "templates"), (STATIC_PATH, STATIC_MOUNT)):
        for path in sorted(source.rglob("*")):
            if path.is_file():
                files[f"{target}/{path.relative_to(source).as_posix()}"] = path.read_bytes()
    for name, content in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        if isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, target)


@click.command("publish")
@click.option("--db", "db_path", default="catalogue.db", show_default=True,
              type=click.Path(dir_okay=False, path_type=Path), help="The harvested catalogue database.")
@click.option("--to", "public_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The snapshot to serve, e.g. catalogue-public.db (replaced atomically).")
@click.option("--datasette-files", is_flag=True,
              help="Make the snapshot's folder a Datasette configuration directory (inspect-data.json, metadata.yml,"
                   " settings.json, plugins/, templates/, biofed-static/) for `datasette serve DIR` replicas"
                   " or `datasette package`;"
                   " the snapshot must then be named catalogue.db.")
def publish_command(db_path, public_path, datasette_files):
    """Publish an immutable snapshot of the catalogue (for `serve` or Datasette replicas)."""
    publish(db_path, public_path, datasette_files=datasette_files)
    click.echo(f"Published {public_path}", err=True)
    if datasette_files:
        folder = public_path.parent
        click.echo(f"Serve a replica with: datasette serve {folder} --static {STATIC_MOUNT}:{folder / STATIC_MOUNT}"
                   " --cors --host 0.0.0.0 --port 8001", err=True)
