"""Load: a node under concurrent readers and writers, the catalogue under concurrent readers.

    python -m bench.bench_load [--seconds 60] [--clients 50] [--records 2000]

Node: a real `biofed node serve` (uvicorn) on loopback in its own process,
`--clients` httpx clients for `--seconds` mixing reads (records, /log pages,
/checkpoint, the descriptor) and authenticated writes (POST new records, PUT
updates with If-Match, DELETE). Catalogue: a real `biofed aggregator serve`
(Datasette via make_datasette) over the catalogue of `biofed demo --no-serve`,
the same number of readers over table pages, facets, search, row pages and
canned queries. Prints throughput and p50/p95/p99 latency per kind of request,
and checks what tests/aggregator/test_load.py asserts (no errors, no lost or duplicated
writes, the log verifies).

The load functions are shared with tests/aggregator/test_load.py, which runs them with a
small budget and asserts correctness only.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

NODE_ID = "load-node"
READ_SHARE = 0.6  # of node requests; the rest are writes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(args: list[str], ready_url: str, log_path: Path, timeout: float = 60) -> subprocess.Popen:
    """A `biofed ...` server process on loopback, returned once `ready_url` answers 200."""
    log = log_path.open("wb")
    process = subprocess.Popen([sys.executable, "-m", "biofed", *args], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(ready_url, timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server at {ready_url} did not start: {log_path.read_text()[-2000:]}")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def make_node(directory: Path, records: int) -> str:
    """A node with `records` generated actors; returns an admin token (write + delete)."""
    from biofed.node.samples import sample_actor
    from biofed.node.store import init_node

    node, token = init_node(directory, node_id=NODE_ID, name="Load test node", country="DE", region="DE1",
                            base_url="https://load.example")
    node.put_many([sample_actor(i) for i in range(records)])
    node.close()
    return token


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    statuses: collections.Counter = field(default_factory=collections.Counter)  # (kind, status)
    errors: list[str] = field(default_factory=list)  # 5xx, transport errors, unexpected statuses
    seconds: float = 0.0

    def record(self, kind: str, status: int, elapsed: float, expected: tuple[int, ...], detail: str = "") -> None:
        self.latencies[kind].append(elapsed)
        self.statuses[(kind, status)] += 1
        if status not in expected:
            self.errors.append(f"{kind}: HTTP {status} {detail}"[:500])

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def table(self) -> list[tuple[str, int, float, float, float, float]]:
        """(kind, requests, requests/s, p50 ms, p95 ms, p99 ms), 'all' first."""
        rows = []
        everything = [x for v in self.latencies.values() for x in v]
        for kind, values in [("all", everything), *sorted(self.latencies.items())]:
            if not values:
                continue
            ordered = sorted(values)
            pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
            rows.append((kind, len(values), len(values) / self.seconds, pick(0.50), pick(0.95), pick(0.99)))
        return rows


@dataclass
class Ledger:
    """Every acknowledged write: id -> [(op, version)], from the node's own answers."""

    acks: dict[str, list[tuple[str, int]]] = field(default_factory=lambda: collections.defaultdict(list))
    conflicts: int = 0  # 412: a racing If-Match, correct behaviour

    @property
    def writes(self) -> int:
        return sum(len(v) for v in self.acks.values())


async def node_load(base_url: str, token: str, initial_ids: list[str], *, clients: int, seconds: float,
                    seed: int = 0, max_requests_per_client: int = 100_000) -> tuple[Stats, Ledger]:
    """`clients` concurrent clients reading and writing for `seconds` (and at most that many requests each)."""
    from biofed.node.samples import sample_actor

    stats, ledger = Stats(), Ledger()
    known: dict[str, int] = {rid: 1 for rid in initial_ids}  # id -> last version a client saw
    live = list(initial_ids)
    auth = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    deadline = time.monotonic() + seconds

    async def one(client: httpx.AsyncClient, kind: str, method: str, url: str, expected, **kw) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await client.request(method, url, **kw)
        except httpx.HTTPError as exc:
            stats.record(kind, 0, time.perf_counter() - started, expected, f"{type(exc).__name__}: {exc}")
            return None
        stats.record(kind, response.status_code, time.perf_counter() - started, expected,
                     f"{method} {url}: {response.text[:200]}")
        return response

    def acked(op: str, response: httpx.Response) -> None:
        record = orjson.loads(response.content)
        etag = int(response.headers["etag"].strip('"'))
        if etag != record["version"]:
            stats.errors.append(f"{op} {record['id']}: ETag {etag} but the body is version {record['version']}")
        ledger.acks[record["id"]].append((op, record["version"]))
        known[record["id"]] = max(known.get(record["id"], 0), record["version"])

    async def worker(number: int, client: httpx.AsyncClient) -> None:
        rng = random.Random(seed * 1000 + number)
        created = 0
        for _ in range(max_requests_per_client):
            if time.monotonic() >= deadline:
                return
            if rng.random() < READ_SHARE:
                choice = rng.random()
                if choice < 0.5:
                    rid = rng.choice(live or initial_ids)
                    await one(client, "GET record", "GET", f"/records/{rid}", (200, 410))
                elif choice < 0.75:
                    after = rng.randrange(0, len(initial_ids))
                    await one(client, "GET /log", "GET", f"/log?after={after}&limit=100", (200,))
                elif choice < 0.9:
                    await one(client, "GET /checkpoint", "GET", "/checkpoint", (200,))
                else:
                    await one(client, "GET descriptor", "GET", "/.well-known/biofed-node.json", (200,))
                continue
            choice = rng.random()
            if choice < 0.35 or not live:
                created += 1
                content = sample_actor(1_000_000 + number * 100_000 + created, seed=seed)
                content["id"] = f"actor/load-{seed}-{number}-{created}"
                response = await one(client, "POST record", "POST", "/records", (201,), json=content, headers=auth)
                if response is not None and response.status_code == 201:
                    acked("create", response)
                    live.append(f"{NODE_ID}/{content['id']}")
            elif choice < 0.9:
                rid = rng.choice(live)
                version = known[rid]
                content = sample_actor(rng.randrange(10_000), seed=rng.randrange(1, 1_000_000))
                content["id"] = rid
                response = await one(client, "PUT record", "PUT", f"/records/{rid}", (200, 412),
                                     json=content, headers={**auth, "If-Match": f'"{version}"'})
                if response is not None:
                    if response.status_code == 200:
                        acked("update", response)
                    elif response.status_code == 412:
                        ledger.conflicts += 1
                        known[rid] = max(known[rid], version + 1)  # someone else wrote: look again next time
            else:
                rid = rng.choice(live)
                version = known[rid]
                response = await one(client, "DELETE record", "DELETE", f"/records/{rid}", (200, 410, 412),
                                     headers={**auth, "If-Match": f'"{version}"'})
                if response is not None:
                    if response.status_code == 200:
                        acked("delete", response)
                        if rid in live:
                            live.remove(rid)
                    elif response.status_code == 412:
                        ledger.conflicts += 1
                        known[rid] = max(known[rid], version + 1)
                    elif rid in live:  # 410: a racing delete won
                        live.remove(rid)

    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        await asyncio.gather(*(worker(i, client) for i in range(clients)))
    stats.seconds = time.monotonic() - started
    return stats, ledger


def check_node_after_load(directory: Path, ledger: Ledger, initial_ids: list[str], initial_size: int) -> list[str]:
    """Problems (empty when sound): lost or duplicated writes, a log that does not verify."""
    from biofed.node.store import Node
    from biofed.trust import checkpoint as checkpoints
    from biofed.trust import merkle
    from biofed.trust.keys import PublicKey

    problems = []
    with Node.open(directory) as node:
        problems += node.check_log()
        size = node.tree_size()
        if size != initial_size + ledger.writes:
            problems.append(f"log size {size} != {initial_size} + {ledger.writes} acknowledged writes")
        leaves = [row[0] for row in node.conn.execute("SELECT leaf_hash FROM log ORDER BY seq")]
        keys = [PublicKey.from_jwk({f: k[f] for f in ("kty", "crv", "x", "kid")}) for k in node.keys()]
        cp = checkpoints.verify(node.checkpoint_note(), keys, origin=node.config.origin)
        if (cp.size, cp.root) != (len(leaves), merkle.root(leaves)):
            problems.append("the latest signed checkpoint does not match the log")
        initial = set(initial_ids)
        logged = collections.Counter(rid for (rid,) in node.conn.execute("SELECT record_id FROM log"))
        for rid, acks in ledger.acks.items():
            stored = node.record(rid)
            base = 1 if rid in initial else 0
            versions = sorted(v for _, v in acks)
            if stored is None:
                problems.append(f"{rid}: acknowledged but not stored")
                continue
            if versions != list(range(base + 1, base + len(acks) + 1)):
                problems.append(f"{rid}: acknowledged versions {versions} are not {base + 1}..{base + len(acks)}")
            if stored.version != base + len(acks):
                problems.append(f"{rid}: stored version {stored.version} != {base} + {len(acks)} acknowledged writes")
            if logged[rid] != base + len(acks):
                problems.append(f"{rid}: {logged[rid]} log entries for {base + len(acks)} versions")
            last_op = max(acks, key=lambda a: a[1])[0]
            if stored.deleted != (last_op == "delete"):
                problems.append(f"{rid}: deleted={stored.deleted} but the last acknowledged write was {last_op}")
        for rid in initial - set(ledger.acks):
            stored = node.record(rid)
            if stored is None or stored.version != 1 or stored.deleted:
                problems.append(f"{rid}: never written under load but changed")
        unexpected = set(logged) - initial - set(ledger.acks)
        if unexpected:
            problems.append(f"{len(unexpected)} id(s) in the log that no client was told were written")
    return problems


def catalogue_paths(db: Path, seed: int = 0) -> list[tuple[str, str]]:
    """(kind, path) of the catalogue requests the readers cycle through."""
    import sqlite3

    from datasette.utils import tilde_encode

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        actors = [r[0] for r in conn.execute("SELECT id FROM actors ORDER BY id")]
        projects = [r[0] for r in conn.execute("SELECT id FROM projects ORDER BY id")]
        technology = conn.execute("SELECT technology FROM actor_technologies GROUP BY technology "
                                  "ORDER BY count(*) DESC LIMIT 1").fetchone()
        region = conn.execute("SELECT region FROM actors WHERE region IS NOT NULL GROUP BY region "
                              "ORDER BY count(*) DESC LIMIT 1").fetchone()
    finally:
        conn.close()
    rng = random.Random(seed)
    paths = [
        ("table", "/catalogue/actors"),
        ("table", "/catalogue/actors.json?_size=50"),
        ("table", "/catalogue/projects?_sort=id"),
        ("facets", "/catalogue/actors.json?_facet=country&_facet=actor_type"),
        ("facets", "/catalogue/actors?_facet=country&_facet=actor_type"),
        ("facets", "/catalogue/actor_sectors.json?_facet=sector&country=DE"),
        ("search", "/catalogue/actors.json?_search=bio"),
        ("search", "/catalogue/actors?_search=university"),
        ("search", "/catalogue/search.json?q=cancer"),
        ("search", "/catalogue/search?q=bio&country=&region="),
        ("canned", f"/catalogue/region_strengths.json?region={region[0] if region else ''}"),
        ("canned", "/catalogue/cross_border_projects.json?country=DE"),
        ("canned", "/catalogue/node_health.json"),
        ("canned", f"/catalogue/offers_for_technology.json?technology={technology[0] if technology else 'CRISPR'}"),
        ("canned", "/catalogue/actors_by_stage_and_sector_in_region.json?region=DE&stage=&sector="),
        ("index", "/"),
        ("index", "/catalogue"),
    ]
    for rid in rng.sample(actors, min(20, len(actors))):
        paths.append(("row", f"/catalogue/actors/{tilde_encode(rid)}"))
        paths.append(("row", f"/catalogue/actors/{tilde_encode(rid)}.json"))
    for rid in rng.sample(projects, min(10, len(projects))):
        paths.append(("row", f"/catalogue/projects/{tilde_encode(rid)}"))
    return paths


async def catalogue_load(base_url: str, paths: list[tuple[str, str]], *, clients: int, seconds: float,
                         seed: int = 0, max_requests_per_client: int = 100_000) -> Stats:
    stats = Stats()
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def reader(number: int, client: httpx.AsyncClient) -> None:
        rng = random.Random(seed * 1000 + number)
        for _ in range(max_requests_per_client):
            if time.monotonic() >= deadline:
                return
            kind, path = rng.choice(paths)
            started = time.perf_counter()
            try:
                response = await client.get(path)
            except httpx.HTTPError as exc:
                stats.record(kind, 0, time.perf_counter() - started, (200,), f"GET {path}: {type(exc).__name__}: {exc}")
                continue
            stats.record(kind, response.status_code, time.perf_counter() - started, (200,),
                         f"GET {path}: {response.text[:200]}")

    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        await asyncio.gather(*(reader(i, client) for i in range(clients)))
    stats.seconds = time.monotonic() - started
    return stats


def build_demo_catalogue(directory: Path) -> Path:
    """The demo's real network, built and stopped; returns its published catalogue file."""
    from biofed.serving import free_port_run

    for _ in range(20):
        base = free_port_run(7)
        result = subprocess.run([sys.executable, "-m", "biofed", "demo", "--no-serve", "--quiet", "--dir",
                                 str(directory), "--base-port", str(base)], capture_output=True, text=True,
                                timeout=600)
        if result.returncode == 0:
            return directory / "catalogue-public.db"
        if "in use" not in result.stderr:
            raise RuntimeError(result.stderr[-3000:])
    raise RuntimeError("no run of 7 free loopback ports for the demo")


def run_node_load(work: Path, *, clients: int, seconds: float, records: int, seed: int = 0):
    """Serve a fresh node and load it; (stats, ledger, problems)."""
    directory = work / "node"
    token = make_node(directory, records)
    initial_ids = [f"{NODE_ID}/actor/org-{i}" for i in range(records)]
    port = free_port()
    server = start_server(["node", "serve", str(directory), "--port", str(port)],
                          f"http://127.0.0.1:{port}/checkpoint", work / "node-server.log")
    try:
        stats, ledger = asyncio.run(node_load(f"http://127.0.0.1:{port}", token, initial_ids, clients=clients,
                                              seconds=seconds, seed=seed))
    finally:
        stop_server(server)
    problems = check_node_after_load(directory, ledger, initial_ids, records)
    return stats, ledger, problems


def run_catalogue_load(work: Path, db: Path, *, clients: int, seconds: float, seed: int = 0) -> Stats:
    port = free_port()
    server = start_server(["aggregator", "serve", "--db", str(db), "--port", str(port)],
                          f"http://127.0.0.1:{port}/catalogue", work / "catalogue-server.log")
    try:
        return asyncio.run(catalogue_load(f"http://127.0.0.1:{port}", catalogue_paths(db, seed), clients=clients,
                                          seconds=seconds, seed=seed))
    finally:
        stop_server(server)


def print_table(title: str, stats: Stats) -> None:
    print(f"\n{title}: {stats.requests} requests in {stats.seconds:.1f} s, {len(stats.errors)} errors\n")
    print("| requests | count | per second | p50 ms | p95 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for kind, count, rate, p50, p95, p99 in stats.table():
        print(f"| {kind} | {count:,} | {rate:,.1f} | {p50:.1f} | {p95:.1f} | {p99:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--records", type=int, default=2000, help="actors on the node before the load")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="biofed-bench-load-") as tmp:
        work = Path(tmp)
        stats, ledger, problems = run_node_load(work, clients=args.clients, seconds=args.seconds,
                                                records=args.records, seed=args.seed)
        print_table(f"Node, {args.clients} clients, {READ_SHARE:.0%} reads", stats)
        print(f"\nacknowledged writes {ledger.writes:,}, 412 If-Match conflicts {ledger.conflicts:,}; "
              f"problems: {problems or 'none'}; errors: {stats.errors[:5] or 'none'}")
        db = build_demo_catalogue(work / "demo")
        cat = run_catalogue_load(work, db, clients=args.clients, seconds=args.seconds, seed=args.seed)
        print_table(f"Catalogue, {args.clients} readers", cat)
        print(f"\nerrors: {cat.errors[:5] or 'none'}")
        if problems or stats.errors or cat.errors:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
