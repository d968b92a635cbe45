"""`biofed aggregator ...` commands: harvest once, run on a schedule, show node health, serve."""

from __future__ import annotations

import dataclasses
import json
import random
import re
import signal
import time
from datetime import datetime, timedelta, timezone

import click

from biofed.aggregator.publish import publish_command
from biofed.aggregator.serve import serve
from biofed.errors import BiofedError
from biofed.protocol.times import parse_time


@click.group()
def aggregator():
    """Harvest the network, verify every record, build and serve the catalogue."""


aggregator.add_command(serve)
aggregator.add_command(publish_command)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """'90s', '15m', '1h', '2d' (or plain seconds)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text or "")
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration like 90s, 15m, 1h or 2d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2) or "s"])


def _settings(max_age, concurrency, page_size, workers):
    from biofed.aggregator.harvest import HarvestSettings

    settings = HarvestSettings(max_age=parse_duration(max_age), concurrency=concurrency)
    if page_size:
        settings = dataclasses.replace(settings, page_size=page_size)
    if workers is not None:
        settings = dataclasses.replace(settings, workers=workers)
    return settings


def _keys(values):
    from biofed.trust.keys import PublicKey

    return [PublicKey.parse(v) for v in values] or None


def harvest_options(f):
    for decorator in reversed([
        click.option("--registry", "registry_source", required=True, help="Registry document: a file or an http(s) URL."),
        click.option("--db", "db_path", default="catalogue.db", show_default=True, help="Catalogue database."),
        click.option("--registry-key", "registry_keys", multiple=True,
                     help="Pin the registry key (multibase z6Mk..., or a JWK/PEM file). Default: trust on first use."),
        click.option("--max-age", default="1h", show_default=True, help="Oldest acceptable node checkpoint."),
        click.option("--concurrency", type=click.IntRange(1, 1024), default=None,
                     help="Nodes harvested at the same time (default: as many as pages in flight, workers + 2)."),
        click.option("--page-size", type=click.IntRange(1, 1000), default=None, help="Log entries per request (default 1000)."),
        click.option("--workers", type=click.IntRange(0, 64), default=None, help="Verifying processes (default: one per CPU; 0: in-process)."),
        click.option("--publish", "publish_path", type=click.Path(dir_okay=False),
                     help="After the harvest, publish an immutable snapshot here for `biofed aggregator serve`."),
    ]):
        f = decorator(f)
    return f


def _run_once(registry_source, db_path, registry_keys, max_age, concurrency, page_size, workers, publish_path,
              accept_mass_delete=()):
    from biofed.aggregator.harvest import harvest
    from biofed.aggregator.publish import publish

    report = harvest(registry_source, db_path, settings=_settings(max_age, concurrency, page_size, workers),
                     registry_keys=_keys(registry_keys), accept_mass_delete=set(accept_mass_delete), progress=True)
    if publish_path:  # failed nodes keep their last verified records (stale): still worth publishing
        publish(db_path, publish_path)
    return report


@aggregator.command("harvest")
@harvest_options
@click.option("--accept-mass-delete", multiple=True, metavar="NODE",
              help="Accept a quarantined mass deletion of this node (repeatable).")
def harvest_command(registry_source, db_path, registry_keys, max_age, concurrency, page_size, workers, publish_path,
                    accept_mass_delete):
    """Harvest every node of the registry once into the catalogue.

    Exit status 0 when every node is ok or unchanged; 1 when a node failed, was
    quarantined or was slow (stopped at its budget for the run, continued next run;
    its records are kept, marked stale) or the registry was refused.
    """
    report = _run_once(registry_source, db_path, registry_keys, max_age, concurrency, page_size, workers, publish_path,
                       accept_mass_delete)
    for node_id, node in sorted(report.nodes.items()):
        if node.status not in ("ok", "unchanged"):
            click.echo(f"{node_id}: {node.status}: {node.error}", err=True)
    s = report.summary()
    click.echo(f"registry v{s['registry_version']}: {len(report.nodes)} nodes "
               f"({', '.join(f'{n} {k}' for k, n in sorted(s['nodes'].items()))}); "
               f"{s['accepted']} accepted, {s['rejected']} rejected, {s['deleted']} deleted in {s['seconds']} s")
    if not report.ok:
        raise SystemExit(1)


@aggregator.command("run")
@harvest_options
@click.option("--every", default="1h", show_default=True, help="Interval between the starts of two harvests.")
@click.option("--jitter", default="10%", show_default=True, help="Random spread of the interval, e.g. 10% or 5m.")
def run_command(registry_source, db_path, registry_keys, max_age, concurrency, page_size, workers, publish_path, every,
                jitter):
    """Harvest on a schedule until stopped (Ctrl-C or SIGTERM stop cleanly between pages).

    Runs never overlap: each holds the catalogue's lock file, and the next one
    starts only after the previous one has finished.
    """
    from biofed.progress import log_event

    interval = parse_duration(every).total_seconds()
    spread = interval * float(jitter[:-1]) / 100 if jitter.endswith("%") else parse_duration(jitter).total_seconds()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while True:
            started = time.monotonic()
            try:
                _run_once(registry_source, db_path, registry_keys, max_age, concurrency, page_size, workers, publish_path)
            except BiofedError as exc:  # a refused registry or a held lock: try again next time
                log_event("harvest-error", error=str(exc))
            pause = max(0.0, interval + random.uniform(-spread, spread) - (time.monotonic() - started))
            log_event("sleep", seconds=round(pause, 1))
            time.sleep(pause)
    except KeyboardInterrupt:
        log_event("stopped")


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return ""
    seconds = (datetime.now(timezone.utc) - parse_time(timestamp, "checkpoint timestamp")).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


@aggregator.command("status")
@click.option("--db", "db_path", default="catalogue.db", show_default=True, help="Catalogue database.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object with every node.")
def status_command(db_path, as_json):
    """Show each node's health: last success, records, cursor, checkpoint age, error."""
    import os
    import sqlite3

    from biofed.aggregator import state

    if not os.path.exists(db_path):
        raise BiofedError(f"{db_path}: no such catalogue database (run `biofed aggregator harvest` first)")
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        rows = state.status_rows(conn)
        registry = state.registry_state(conn)
    finally:
        conn.close()
    for row in rows:
        row["checkpoint_age"] = _age(row["checkpoint_timestamp"])
    if as_json:
        click.echo(json.dumps({"registry": dict(registry) if registry else None, "nodes": rows}, indent=2))
        return
    if registry:
        click.echo(f"registry version {registry['version']}, accepted {registry['accepted_at']}"
                   + (f"; last refused: {registry['error']}" if registry["error"] else ""))
    columns = ("id", "health", "last_success", "last_attempt", "records", "cursor", "checkpoint_age", "stale_since", "error")
    table = [[str(row[c] if row[c] is not None else "") for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in table]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    for r in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
