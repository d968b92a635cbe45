"""`biofed aggregator serve`: the public Datasette catalogue.

The catalogue is served immutable (Datasette's `-i`) with an inspect file, so
no request ever runs count(*) over a table and any number of replicas can
serve copies of the same file. Settings are chosen for a public site on a
small machine; docs/catalogue.md explains each.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click
import yaml

from biofed.aggregator.catalogue import build_inspect_file
from biofed.aggregator.datasette import METADATA_PATH, STATIC_PATH, TEMPLATES_PATH
from biofed.errors import BiofedError

DATABASE_NAME = "catalogue"  # URLs stay /catalogue/... whatever the file is called

SETTINGS = {
    "suggest_facets": False,  # 1.3 s -> 49 ms a table page at 200k rows
    "sql_time_limit_ms": 1000,
    "facet_time_limit_ms": 500,
    "max_returned_rows": 1000,
    "default_page_size": 50,
    "allow_download": False,  # the file can be large; /-/biofed/records.jsonl.gz is the bulk export
    "allow_facet": True,
    "default_cache_ttl": 300,
    "num_sql_threads": 3,
}


def load_metadata() -> dict:
    return yaml.safe_load(METADATA_PATH.read_text(encoding="utf-8"))


def _register_plugin() -> None:
    from datasette.plugins import pm

    from biofed.aggregator.datasette.plugins import biofed_catalogue, biofed_people, cache_headers, csv_guard

    if pm.get_plugin("biofed_catalogue") is None:
        pm.register(biofed_catalogue, name="biofed_catalogue")
    if pm.get_plugin("biofed_csv_guard") is None:
        pm.register(csv_guard, name="biofed_csv_guard")
    if pm.get_plugin("biofed_people") is None:
        pm.register(biofed_people, name="biofed_people")
    # Before the first request, not only at startup: an ASGI client may skip the lifespan.
    biofed_people.quiet_rich_tracebacks()
    if pm.get_plugin("biofed_cache_headers") is None:
        pm.register(cache_headers, name="biofed_cache_headers")


def _with_tiles(metadata: dict, tiles: str | None, attribution: str | None) -> dict:
    """The map tile server for BioFed's maps and datasette-cluster-map's, when one is given."""
    if not tiles:
        return metadata
    plugins = metadata.setdefault("plugins", {})
    plugins.setdefault("biofed", {}).update({"tiles": tiles, "tiles_attribution": attribution or ""})
    cluster = plugins.setdefault("datasette-cluster-map", {})
    cluster["tile_layer"] = tiles
    cluster["tile_layer_options"] = {"maxZoom": 18, "attribution": attribution or ""}
    return metadata


def _inspect_data(db_path: Path, inspect_path: Path | None) -> dict:
    """Datasette's inspect data for db_path, (re)built when missing or older than the database."""
    if inspect_path is None:
        inspect_path = db_path.with_name(db_path.stem + "-inspect.json")
        if not inspect_path.exists() or inspect_path.stat().st_mtime < db_path.stat().st_mtime:
            build_inspect_file(db_path, inspect_path)
    data = json.loads(Path(inspect_path).read_text(encoding="utf-8"))
    if len(data) != 1:
        raise BiofedError(f"{inspect_path} describes {len(data)} databases, expected one")
    return {DATABASE_NAME: next(iter(data.values()))}


def make_datasette(db_path: str | Path, *, inspect_path: str | Path | None = None, tiles: str | None = None,
                   tiles_attribution: str | None = None, **options):
    """A Datasette serving db_path immutable as /catalogue, with the BioFed metadata, settings, templates and plugins.

    tiles: the map tile URL template ({z}/{x}/{y}); OpenStreetMap's when not given.
    """
    from datasette.app import Datasette
    from datasette.database import Database

    db_path = Path(db_path)
    if not db_path.exists():
        raise BiofedError(f"no catalogue database at {db_path}: run `biofed aggregator harvest` first")
    _register_plugin()
    ds = Datasette(
        [],
        inspect_data=_inspect_data(db_path, Path(inspect_path) if inspect_path else None),
        metadata=_with_tiles(load_metadata(), tiles, tiles_attribution),
        settings=SETTINGS,
        template_dir=str(TEMPLATES_PATH),
        static_mounts=[("biofed-static", str(STATIC_PATH))],
        cors=True,
        **options,
    )
    ds.add_database(Database(ds, path=str(db_path), is_mutable=False), name=DATABASE_NAME)
    ds.remove_database("_memory")  # Datasette adds it when given no files; the public has no use for it
    return ds


class ReloadOnPublish:
    """ASGI wrapper: when `biofed aggregator publish` replaces the file, serve the new one.

    Looks at the file's inode and mtime at most every `interval` seconds, on
    requests only; requests already running finish on the old file.
    """

    def __init__(self, ds, db_path: Path, *, interval: float = 5.0):
        self.ds, self.db_path, self.interval = ds, Path(db_path), interval
        self.app = ds.app()
        self.signature = self._signature()
        self.checked = time.monotonic()

    def _signature(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self.db_path)
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns

    def reload_if_published(self) -> bool:
        now = time.monotonic()
        if now - self.checked < self.interval:
            return False
        self.checked = now
        signature = self._signature()
        if signature is None or signature == self.signature:
            return False
        from datasette.database import Database

        self.ds.inspect_data = _inspect_data(self.db_path, None)
        database = Database(self.ds, path=str(self.db_path), is_mutable=False)
        database.name = database.route = DATABASE_NAME
        # Replace, don't mutate: the same copy-and-swap Datasette's own add_database does.
        self.ds.databases = {**self.ds.databases, DATABASE_NAME: database}
        self.signature = signature
        return True

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            self.reload_if_published()
        await self.app(scope, receive, send)


@click.command()
@click.option("--db", "db_path", default="catalogue.db", show_default=True,
              type=click.Path(dir_okay=False, path_type=Path), help="The catalogue database.")
@click.option("--inspect-file", "inspect_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Datasette inspect data; built next to the database when not given.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8001, show_default=True)
@click.option("--tiles", default=None, metavar="URL",
              help="Map tile URL template, e.g. https://tiles.example/{z}/{x}/{y}.png "
                   "(default: tile.openstreetmap.org). Pages say so when tiles cannot load.")
@click.option("--tiles-attribution", default=None, help="The attribution the tile server requires.")
def serve(db_path, inspect_path, host, port, tiles, tiles_attribution):
    """Serve the catalogue with Datasette (read-only, immutable).

    Serve a published snapshot, not the file a harvest is writing:
    `biofed aggregator publish --db catalogue.db --to catalogue-public.db`.
    A newly published file is picked up without a restart.
    """
    from biofed.serving import run_server

    ds = make_datasette(db_path, inspect_path=inspect_path, tiles=tiles, tiles_attribution=tiles_attribution)
    click.echo(f"BioFed catalogue on http://{host}:{port}/", err=True)
    app = ReloadOnPublish(ds, db_path) if inspect_path is None else ds.app()
    run_server(app, host=host, port=port, log_level="info", lifespan="on")
