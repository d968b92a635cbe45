"""Import benchmark: a member spreadsheet re-imported with --sync after 1 % of it changed.

    python -m bench.bench_import [--rows 10000] [--changed 0.01]

A CSV of generated actors (no `id` column: ids come from the PIC, so every row
is matched to the node's published records) is imported once; then a copy in
which 1 % of the rows changed (60 % of those edited, 20 % removed, 20 % new) is
imported with --sync: read and mapped, matched, diffed, signed, tombstoned, one
transaction. Timed in-process (the code path of `biofed node import`) and as the
whole `biofed node import --sync` command in a subprocess (Python start-up
included). Wall and CPU time: on a shared machine the CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import csv
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from biofed.node.importers import read_rows
from biofed.node.importing import import_rows
from biofed.node.store import Node, init_node

HEADER = ["name", "actor_type", "pic", "website", "email", "street", "postal_code", "city", "country", "sectors",
          "technologies", "founding_year", "description", "description_lang"]
CITIES = ["Tübingen", "Reutlingen", "Stuttgart", "Esslingen am Neckar", "Ulm"]


def member(i: int, *, edition: int = 0) -> list:
    return [f"Member {i} Biotech GmbH" + (f" (v{edition})" if edition else ""), "sme", f"{900_000_000 + i}",
            f"https://member{i}.example", f"info@member{i}.example", f"Hauptstraße {i % 200 + 1}",
            f"{70000 + i % 3000}", CITIES[i % len(CITIES)], "DE", "red-biotech; medtech",
            "cell therapy; organoids; qPCR", 1950 + i % 70,
            f"Member {i} develops cell therapies and diagnostics in the region.", "en"]


def write_sheet(path: Path, rows: list[list]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def changed_sheet(rows: int, share: float) -> tuple[list[list], dict]:
    changes = max(1, round(rows * share))
    edited, removed = round(changes * 0.6), round(changes * 0.2)
    added = changes - edited - removed
    step = rows // changes
    touched = list(range(0, rows, step))[:edited + removed]
    gone = set(touched[edited:])
    sheet = [member(i, edition=1 if i in touched[:edited] else 0) for i in range(rows) if i not in gone]
    sheet += [member(rows + i) for i in range(added)]
    return sheet, {"updated": edited, "deleted": removed, "created": added}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--changed", type=float, default=0.01)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        first = write_sheet(tmp / "members.csv", [member(i) for i in range(args.rows)])
        rows, expected = changed_sheet(args.rows, args.changed)
        second = write_sheet(tmp / "members-edited.csv", rows)
        for run, directory in (("in-process", tmp / "node-a"), ("command", tmp / "node-b")):
            node, _ = init_node(directory, node_id="bench-node", name="Bench", country="DE", region="DE1")
            started = time.perf_counter()
            outcome = import_rows(node, read_rows(first, node_id=node.id, node_region="DE1"))
            initial = time.perf_counter() - started
            assert outcome.result.created == args.rows and not outcome.rejected, outcome.rejected[:3]
            node.close()
            started, cpu = time.perf_counter(), time.process_time()
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            if run == "in-process":
                with Node.open(directory) as node:
                    outcome = import_rows(node, read_rows(second, node_id=node.id, node_region="DE1"), sync=True)
                result = outcome.result
                assert (result.updated, result.deleted, result.created) == tuple(expected.values()), result.as_dict()
            else:
                subprocess.run([sys.executable, "-m", "biofed", "node", "import", str(directory), str(second),
                                "--sync", "--quiet"], check=True, capture_output=True)
            elapsed = time.perf_counter() - started
            if run == "in-process":
                cpu = time.process_time() - cpu
            else:
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
            print(f"{run:>10}: first import of {args.rows:,} rows {initial:.2f} s; --sync of the edited sheet "
                  f"({sum(expected.values())} rows changed: {expected}) {elapsed:.2f} s wall, {cpu:.2f} s CPU")


if __name__ == "__main__":
    main()
