"""Readers: requests/s of ONE catalogue replica, per page kind, with 50 concurrent readers.

    python -m bench.bench_network --nodes 1000 --records 1000 --keep-catalogue cat.db   # a harvested catalogue
    python -m bench.bench_readers --db cat.db [--seconds 20] [--clients 50]

(or a synthetic one: python -m bench.bench_catalogue --rows 1000000 --db cat.db)

The catalogue is published the way a replica fleet gets it (`publish(...,
datasette_files=True)`: snapshot, inspect-data.json, metadata, settings,
plugins) and served by `datasette serve DIR` in its own process, as each
replica runs. An httpx load generator (bench.bench_load.catalogue_load: one
asyncio process, `--clients` connections) then drives each page kind alone:
the front door (`/`), a profile (a random actor's row page) and a faceted table
(a country's actors with the region and actor-type facets). No cache in front:
every request reaches Datasette. Client and server share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.bench_load import catalogue_load, free_port, print_table, stop_server
from biofed.aggregator.publish import publish


def page_kinds(db: Path, seed: int = 0) -> dict[str, list[str]]:
    from datasette.utils import tilde_encode

    rng = random.Random(seed)
    conn = sqlite3.connect(db)
    top = conn.execute("SELECT max(rowid) FROM actors").fetchone()[0]
    ids = [conn.execute("SELECT id FROM actors WHERE rowid >= ? LIMIT 1", (rng.randint(1, top),)).fetchone()[0]
           for _ in range(300)]
    countries = [row[0] for row in conn.execute(
        "SELECT country FROM actors WHERE country IS NOT NULL GROUP BY country ORDER BY count(*) DESC LIMIT 8")]
    conn.close()
    return {
        "front door (/)": ["/"],
        "profile (actor row page, HTML)": [f"/catalogue/actors/{tilde_encode(i)}" for i in ids],
        "faceted table (country, facets region + actor_type, HTML)": [
            f"/catalogue/actors?country={c}&_facet=region&_facet=actor_type" for c in countries],
    }


def start_replica(site: Path, port: int, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "datasette", "serve", str(site), "--cors", "--host", "127.0.0.1",
                                    "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"datasette exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/-/versions.json", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("datasette did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="a catalogue (bench_network --keep-catalogue, bench_catalogue);"
                                                " default: the demo's, built here (`python -m bench` runs it so)")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.db is None:
            from bench.bench_load import build_demo_catalogue

            args.db = build_demo_catalogue(Path(tmp) / "demo")
            print(f"no --db: the demo's catalogue ({args.db.stat().st_size / 1e6:,.0f} MB)")
        site = Path(tmp) / "site"
        site.mkdir()
        started = time.perf_counter()
        publish(args.db, site / "catalogue.db", datasette_files=True)
        actors = sqlite3.connect(site / "catalogue.db").execute("SELECT count(*) FROM actors").fetchone()[0]
        print(f"published {actors:,} actors ({(site / 'catalogue.db').stat().st_size / 1e6:,.0f} MB)"
              f" in {time.perf_counter() - started:.1f} s")
        kinds = page_kinds(site / "catalogue.db")
        port = free_port()
        replica = start_replica(site, port, Path(tmp) / "datasette.log")
        try:
            base = f"http://127.0.0.1:{port}"
            for label, paths in kinds.items():
                for path in paths[:3]:  # warm: the first answer of a page opens its indexes
                    assert httpx.get(base + path, timeout=60).status_code == 200, path
                stats = asyncio.run(catalogue_load(base, [(label, p) for p in paths], clients=args.clients,
                                                   seconds=args.seconds))
                print_table(f"{label}, {args.clients} readers", stats)
                if stats.errors:
                    print("errors:", stats.errors[:5])
        finally:
            stop_server(replica)


if __name__ == "__main__":
    main()
