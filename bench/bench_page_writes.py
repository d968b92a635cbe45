"""Where the writes of an incremental harvest go: WAL frames per table and index.

    python -m bench.bench_page_writes --nodes 20 --records 10000 --share 0.01

Harvests the network once (in this process), changes `--share` of every
node's records, then harvests again with automatic checkpoints off while a
second connection keeps the WAL from being checkpointed at close. Every WAL
frame is one page written by a commit; the frames are attributed to the
b-tree (table, index, FTS shadow table) that owns the page (`dbstat`).
Node directories come from the same cache as bench_harvest.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import sqlite3
import struct
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench.bench_harvest import Network, change_share, node_dirs


def wal_frames(wal: Path) -> tuple[collections.Counter, int]:
    """(page number -> frames of it in the WAL, page size); the WAL is a 32-byte header, then frames of 24 + page size bytes."""
    frames: collections.Counter = collections.Counter()
    with wal.open("rb") as f:
        header = f.read(32)
        page_size = struct.unpack(">I", header[8:12])[0]
        while True:
            frame_header = f.read(24)
            if len(frame_header) < 24 or len(f.read(page_size)) < page_size:
                break
            frames[struct.unpack(">I", frame_header[:4])[0]] += 1
    return frames, page_size


def main(argv=None) -> None:
    from biofed.aggregator import state
    from biofed.aggregator.harvest import HarvestSettings, harvest
    from biofed.trust.keys import PublicKey

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--share", type=float, default=0.01)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-page-writes-"))
    try:
        copies = []
        for d in node_dirs(args.nodes, args.records):
            copies.append(work / "nodes" / d.name)
            shutil.copytree(d, copies[-1])
        net = Network(copies, work)
        db = work / "catalogue.db"
        settings = HarvestSettings(max_age=timedelta(days=3650))
        keys = [PublicKey.from_jwk(k) for k in json.loads(net.registry.read_text())["registryKeys"]]
        try:
            started = time.perf_counter()
            harvest(net.registry, db, settings=settings, registry_keys=keys)
            full = time.perf_counter() - started
            changed = change_share(copies, args.share)
            keep = sqlite3.connect(db)  # holds the WAL open: the harvest's close does not checkpoint it
            keep.execute("SELECT count(*) FROM nodes").fetchone()
            connect = state.connect

            def no_autocheckpoint(path):
                conn = connect(path)
                conn.execute("PRAGMA wal_autocheckpoint = 0")
                return conn

            state.connect = no_autocheckpoint
            try:
                started = time.perf_counter()
                harvest(net.registry, db, settings=settings, registry_keys=keys)
                incremental = time.perf_counter() - started
            finally:
                state.connect = connect
            frames, page_size = wal_frames(db.with_name(db.name + "-wal"))
            owner = dict(keep.execute("SELECT pageno, name FROM dbstat"))
            by_tree, pages = collections.Counter(), collections.Counter()
            for page, count in frames.items():
                by_tree[owner.get(page, "(free)")] += count
                pages[owner.get(page, "(free)")] += 1
            keep.close()
        finally:
            net.close()
        total = sum(frames.values())
        print(f"full harvest {full:.1f} s; {changed} records changed; incremental harvest {incremental:.2f} s "
              f"(no automatic checkpoints)")
        print(f"WAL: {total:,} frames ({total * page_size / 2**20:,.0f} MiB), {len(frames):,} distinct pages, "
              f"{total / changed:.1f} page writes per changed record")
        print("| b-tree | frames | distinct pages |\n|---|---|---|")
        for name, count in by_tree.most_common(args.top):
            print(f"| {name} | {count:,} | {pages[name]:,} |")
        rest = total - sum(c for _, c in by_tree.most_common(args.top))
        print(f"| (the other {len(by_tree) - args.top} b-trees) | {rest:,} | |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
