"""Organisations across nodes: grouping quality against a generator's truth, and its cost in a harvest.

    python -m bench.bench_organisations --actors 200000       # synthetic catalogue, 10 % duplicates
    python -m bench.bench_organisations --demo                # the shipped demo data

Synthetic: `--actors` records from 20 nodes describing organisations of which
10 % are published twice (a second node's record with another spelling of the
name, other sectors, and one shared strong identifier written differently:
ROR as URL or suffix, VAT with spaces, PIC). Hard negatives are mixed in: 2 %
of the records share a website domain or a name with another organisation
but no identifier (a university and its hospital). Quality is measured on
record pairs: precision = pairs grouped together that are one organisation;
recall = identifier-sharing duplicate pairs grouped together.

Cost: the catalogue load (upserts of every record, then finalise) with the
organisation grouping timed apart -- the keys written with the actor rows,
their index built at the end of a bulk load, and organisations.finalise --
for a full load and for a 1 % update (1 % of the records changed, half of
those changing an identifier). The full load is a bulk load, as a harvest
into an empty catalogue runs it (bulk_begin, the pages, bulk_finish,
finalise); `--no-bulk` writes it with every index in place.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import time
from collections import Counter

from biofed.aggregator import catalogue
from biofed.aggregator.catalogue import organisations, writes

NODES = [f"node-{n:02d}" for n in range(20)]
SECTORS = ["red-biotech", "medtech", "pharma", "diagnostics", "white-biotech", "digital-health"]
REGIONS = ["DE11", "DE21", "FR10", "BE21", "ITC4", "DK01", "CH04", None]


def _ror(n: int) -> str:
    return f"0{n:06x}"[-7:] + f"{n % 100:02d}"


def synthetic(actors: int, seed: int = 1) -> tuple[list[dict], dict[str, int]]:
    """Records and truth (record id -> organisation number)."""
    rng = random.Random(seed)
    records, truth = [], {}
    organisation = 0
    while len(records) < actors:
        organisation += 1
        node = rng.choice(NODES)
        region = rng.choice(REGIONS)
        kind = rng.random()
        identifiers = {}
        if kind < 0.4:
            identifiers["pic"] = str(900000000 + organisation)
        elif kind < 0.7:
            identifiers["ror"] = f"https://ror.org/{_ror(organisation)}"
        elif kind < 0.85:
            identifiers["vat"] = f"DE{100000000 + organisation}"
        else:
            identifiers["wikidata"] = f"Q{organisation}"
        record = {"id": f"{node}/actor/o{organisation}", "type": "Actor", "version": 1,
                  "names": [{"value": f"Organisation {organisation} GmbH", "preferred": True}],
                  "actorType": rng.choice(["sme", "university", "research-institute"]),
                  "country": region[:2] if region else "DE", "sectors": rng.sample(SECTORS, rng.randint(0, 2)),
                  "identifiers": identifiers, "website": f"https://org{organisation}.example"}
        if region:
            record["region"] = region
        records.append(record)
        truth[record["id"]] = organisation
        if rng.random() < 0.1 and len(records) < actors:  # published by a second node
            other = rng.choice([n for n in NODES if n != node])
            twin = {**record, "id": f"{other}/actor/dup-{organisation}",
                    "names": [{"value": f"ORGANISATION {organisation}", "preferred": True}],
                    "sectors": rng.sample(SECTORS, rng.randint(0, 3))}
            (kind_, value), = identifiers.items()
            spelled = {"ror": value.rsplit("/", 1)[-1].upper(), "vat": f"{value[:2]} {value[2:]}"}.get(kind_, value)
            twin["identifiers"] = {kind_: spelled}
            records.append(twin)
            truth[twin["id"]] = organisation
        if rng.random() < 0.02 and len(records) < actors:  # its hospital: same domain and name stem, no identifier
            organisation += 1
            hospital = {**record, "id": f"{node}/actor/o{organisation}", "actorType": "hospital",
                        "identifiers": {}, "sectors": []}
            records.append(hospital)
            truth[hospital["id"]] = organisation
    return records, truth


def _pairs(sizes) -> int:
    return sum(n * (n - 1) // 2 for n in sizes)


def quality(conn: sqlite3.Connection, truth: dict[str, int]) -> tuple[float, float, int, int]:
    grouped: dict[str, list[str]] = {}
    for actor_id, organisation_id in conn.execute("SELECT actor_id, organisation_id FROM organisation_records"):
        grouped.setdefault(organisation_id, []).append(actor_id)
    predicted = _pairs(len(ids) for ids in grouped.values())
    correct = sum(_pairs(Counter(truth[a] for a in ids).values()) for ids in grouped.values())
    true_pairs = _pairs(Counter(truth.values()).values())
    return (correct / predicted if predicted else 1.0, correct / true_pairs if true_pairs else 1.0,
            len(grouped), true_pairs)


class _Timed:
    """Time spent in organisations.write_keys (called by upsert_flat) and organisations.finalise."""

    def __init__(self):
        self.keys = self.finalise = 0.0
        self._write_keys, self._finalise = organisations.write_keys, organisations.finalise

    def __enter__(self):
        def write_keys(*args, **kwargs):
            start = time.perf_counter()
            try:
                return self._write_keys(*args, **kwargs)
            finally:
                self.keys += time.perf_counter() - start

        def finalise(*args, **kwargs):
            start = time.perf_counter()
            try:
                return self._finalise(*args, **kwargs)
            finally:
                self.finalise += time.perf_counter() - start

        writes.organisations.write_keys = write_keys
        organisations.finalise = finalise
        return self

    def __exit__(self, *exc):
        writes.organisations.write_keys = self._write_keys
        organisations.finalise = self._finalise


def _key_index_seconds(conn) -> float:
    """What building the keys' index at the end of a bulk load costs (bulk_finish builds it with the others)."""
    script = getattr(organisations, "KEY_INDEXES", "")
    if not script.strip():
        return 0.0
    conn.execute("DROP INDEX IF EXISTS idx_organisation_keys_actor")
    start = time.perf_counter()
    conn.execute(script.strip().rstrip(";"))
    return time.perf_counter() - start


def load(conn, records, verified_at: str, *, bulk: bool = False) -> tuple[float, _Timed]:
    by_node: dict[str, list] = {}
    for record in records:
        by_node.setdefault(record["id"].split("/")[0], []).append(record)
    start = time.perf_counter()
    with _Timed() as timed:
        conn.execute("BEGIN")
        if bulk:
            catalogue.bulk_begin(conn)
        for node, items in by_node.items():
            flats = [catalogue.flatten(r) for r in items]
            for i in range(0, len(flats), 1000):  # pages, as the harvester writes them
                catalogue.upsert_flat(conn, flats[i:i + 1000], node={"id": node, "name": node, "licence": "CC0-1.0"},
                                      verified_at=verified_at)
        if bulk:
            catalogue.bulk_finish(conn)
            timed.keys += _key_index_seconds(conn)  # timed apart: built again, as bulk_finish built it
        catalogue.finalise(conn)
        conn.execute("COMMIT")
    return time.perf_counter() - start, timed


def bench_synthetic(actors: int, path: str, bulk: bool = True) -> None:
    start = time.perf_counter()
    records, truth = synthetic(actors)
    print(f"generated {len(records):,} records of {len(set(truth.values())):,} organisations "
          f"in {time.perf_counter() - start:.1f} s")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    catalogue.ensure_schema(conn)
    total, timed = load(conn, records, "2026-01-01T00:00:00Z", bulk=bulk)
    precision, recall, groups, true_pairs = quality(conn, truth)
    print(f"full load{' (bulk)' if bulk else ''}: {total:.2f} s; grouping {timed.keys + timed.finalise:.2f} s "
          f"(keys {timed.keys:.2f} s, finalise {timed.finalise:.2f} s) = {100 * (timed.keys + timed.finalise) / total:.1f} %")
    print(f"quality: {groups:,} organisations; precision {precision:.4f}, recall {recall:.4f} "
          f"({true_pairs:,} duplicate pairs)")
    rng = random.Random(2)
    changed = []
    for record in rng.sample(records, len(records) // 100):
        record = {**record, "version": 2, "sectors": rng.sample(SECTORS, rng.randint(0, 2))}
        if rng.random() < 0.5:  # a new identifier: its group may change
            record["identifiers"] = {"pic": str(800000000 + rng.randrange(len(records)))}
            truth[record["id"]] = -rng.randrange(10**9)  # its own organisation now, unless the PIC is shared
        changed.append(record)
    total, timed = load(conn, changed, "2026-02-01T00:00:00Z")
    print(f"1 % update ({len(changed):,} records): {total:.2f} s; grouping {timed.keys + timed.finalise:.3f} s "
          f"(keys {timed.keys:.3f} s, finalise {timed.finalise:.3f} s) = {100 * (timed.keys + timed.finalise) / total:.1f} %")
    conn.close()


def bench_demo() -> None:
    from biofed.data import demo_nodes, demo_rows

    contents, merged, rows = [], 0, 0
    for node in demo_nodes():
        for row in demo_rows(node["id"]):
            rows += 1
            merged += len(row.merged)
            if row.content is not None and row.content.get("type") == "Actor":
                contents.append({**row.content, "version": 1})
    conn = sqlite3.connect(":memory:", isolation_level=None)
    catalogue.ensure_schema(conn)
    total, timed = load(conn, contents, "2026-01-01T00:00:00Z")
    organisations_, multi = conn.execute("SELECT count(*), sum(records > 1) FROM organisations").fetchone()
    print(f"demo: {merged} CORDIS rows merged into ROR records at the nodes; {len(contents)} actor records -> "
          f"{organisations_} organisations ({multi} with records on several nodes); "
          f"load {total:.2f} s, grouping {timed.keys + timed.finalise:.3f} s")
    for row in conn.execute("SELECT name, node_ids, disagreements FROM organisations WHERE records > 1 ORDER BY id"):
        print("  ", row)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actors", type=int, default=200_000)
    parser.add_argument("--demo", action="store_true")
    parser.add_argument("--db", default=":memory:", help="catalogue file (default: in memory)")
    parser.add_argument("--no-bulk", dest="bulk", action="store_false",
                        help="write the full load with every index in place instead of as a bulk load")
    args = parser.parse_args(argv)
    if args.demo:
        bench_demo()
    else:
        bench_synthetic(args.actors, args.db, args.bulk)


if __name__ == "__main__":
    main()
