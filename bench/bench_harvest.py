"""Harvest benchmark: full, bare verification, naive ingest, unchanged, 1 % changed, memory.

    python -m bench.bench_harvest --nodes 20 --records 10000

Node directories are generated once (the node's put_many) into a cache under
the temporary directory and reused. All nodes are served by ONE helper
process (a uvicorn server per node, in threads) so a 100-node network does
not need 100 processes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson

from bench.records import actor

CACHE = Path(tempfile.gettempdir()) / "biofed-bench-harvest"


def node_dirs(nodes: int, records: int, prefix: str = "n") -> list[Path]:
    from biofed.node.store import Node, init_node

    base = CACHE / f"{prefix}{nodes}x{records}"
    dirs = [base / f"{prefix}{i:03d}" for i in range(nodes)]
    for i, d in enumerate(dirs):
        if (d / ".complete").exists():
            continue
        shutil.rmtree(d, ignore_errors=True)
        node_id = f"{prefix}{i:03d}-bench"
        node, _ = init_node(d, node_id=node_id, name=f"Bench {i}", country="DE", checkpoint_interval=300)
        for start in range(0, records, 2000):
            contents = [actor(node_id, j) for j in range(start, min(records, start + 2000))]
            for c in contents:
                c["id"] = c["id"][len(node_id) + 1:]
            node.put_many(contents)
        node.close()
        (d / ".complete").write_text("ok")
    return dirs


def serve_many(dirs: list[str]) -> None:
    """Helper process: serve each node dir on a free port; print the ports as JSON; run until killed."""
    import uvicorn

    from biofed.node.app import create_app

    ports, servers = [], []
    for d in dirs:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(d, checkpoint_interval=300), host="127.0.0.1", port=port,
                                               log_level="error", access_log=False))
        threading.Thread(target=server.run, daemon=True).start()
        servers.append(server)
        ports.append(port)
    while not all(s.started for s in servers):
        time.sleep(0.05)
    print(json.dumps(ports), flush=True)
    threading.Event().wait()


class Network:
    def __init__(self, dirs: list[Path], workdir: Path):
        from biofed.node.store import Node
        from biofed.trust.keys import SigningKey
        from biofed.trust import proofs

        self.process = subprocess.Popen([sys.executable, "-m", "bench.bench_harvest", "--serve", *map(str, dirs)],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        ports = json.loads(self.process.stdout.readline())
        entries = []
        for d, port in zip(dirs, ports):
            node = Node.open(d)
            entries.append({"id": node.id, "name": node.config.name, "country": "DE", "region": "DE1",
                            "baseUrl": f"http://127.0.0.1:{port}", "licence": "CC-BY-4.0", "status": "active",
                            "controlVerified": True, "keys": node.keys()})
            node.close()
        self.urls = [e["baseUrl"] for e in entries]
        key = SigningKey.generate()
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400))
        doc = {"type": "BioFedRegistry", "name": "bench", "version": 1, "issued": now, "expires": later,
               "registryKeys": [key.public.jwk()], "nodes": entries}
        self.registry = workdir / "registry.json"
        self.registry.write_bytes(orjson.dumps(proofs.sign(doc, key, f"urn:biofed:registry:bench#{key.kid}")))

    def close(self):
        self.process.kill()
        self.process.wait()


def timed_harvest(registry: Path, db: Path, **settings) -> tuple[float, dict, int]:
    """Run one harvest in a child process; return (seconds, summary, peak RSS in KiB).

    The peak is the child's own high-water mark since exec (VmHWM). ru_maxrss of
    a child is not usable here: Linux carries the parent's resident size over
    fork + exec into it, so a harvest started after the bench loaded 200k leaves
    would report the bench's memory. ru_maxrss is printed too, for comparison.
    """
    # The cached node directories keep the checkpoint they were generated with: a
    # bench run hours later must not fail the nodes as frozen (max_age).
    code = ("import json,sys,time,resource;from datetime import timedelta;"
            "from biofed.aggregator.harvest import harvest,HarvestSettings;"
            f"s=HarvestSettings(**{{'max_age': timedelta(days=3650), **{settings!r}}});t=time.perf_counter();r=harvest(sys.argv[1],sys.argv[2],settings=s);"
            "hwm=[int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')];"
            "print(json.dumps([time.perf_counter()-t,r.summary(),(hwm or [0])[0],resource.getrusage(resource.RUSAGE_SELF).ru_maxrss]))")
    # The bench's own writes (copied node directories, the naive ingest's database) would
    # otherwise be flushed by the harvest's first checkpoint fsync and billed to it (+0.4 s
    # for a 1 % run here): every timed harvest starts with nothing left to write back.
    os.sync()
    out = subprocess.run([sys.executable, "-c", code, str(registry), str(db)], capture_output=True, text=True, check=True)
    seconds, summary, hwm, maxrss = json.loads(out.stdout.strip().splitlines()[-1])
    return seconds, summary, hwm or maxrss


def bare_verify(dirs: list[Path]) -> tuple[int, float]:
    """Parse + canonicalise + verify every leaf, one loop, one core: the floor of the work."""
    from biofed.node.store import Node
    from biofed.trust import proofs
    from biofed.trust.canonical import canonicalize
    from biofed.trust.keys import PublicKey

    leaves, keys = [], {}
    for d in dirs:
        node = Node.open(d)
        for k in node.keys():
            keys[k["kid"]] = PublicKey.from_jwk({x: k[x] for x in ("kty", "crv", "x")})
        leaves += [leaf for _, leaf in node.log_page(0, 10**9)]
        node.close()
    resolve = lambda method: keys.get(method.rsplit("#", 1)[-1])  # noqa: E731
    started = time.perf_counter()
    for leaf in leaves:
        proofs.verify(orjson.loads(canonicalize(orjson.loads(leaf))), resolve)
    return len(leaves), time.perf_counter() - started


def naive_ingest(urls: list[str], db: Path) -> tuple[int, float]:
    """httpx + sqlite-utils insert of the same feeds, no verification at all."""
    import sqlite_utils

    database = sqlite_utils.Database(db)
    started = time.perf_counter()
    total = 0
    with httpx.Client(timeout=60) as client:
        for url in urls:
            after = 0
            while True:
                page = client.get(f"{url}/log", params={"after": after, "limit": 1000}).json()
                rows = [{"id": e["record"]["id"], "seq": e["seq"], "json": orjson.dumps(e["record"]).decode()} for e in page["entries"]]
                database["records"].insert_all(rows, pk="id", replace=True)
                total += len(rows)
                after += len(rows)
                if not page["next"]:
                    break
    return total, time.perf_counter() - started


def change_share(dirs: list[Path], share: float) -> int:
    from biofed.node.store import Node

    changed = 0
    for d in dirs:
        node = Node.open(d)
        size = node.tree_size()
        count = max(1, int(size * share))
        contents = []
        for j in range(count):
            c = actor(node.id, j * (size // count))
            c["id"] = c["id"][len(node.id) + 1:]
            c["names"][0]["value"] += f" (rev {time.time_ns()})"
            contents.append(c)
        node.put_many(contents)
        changed += count
        node.close()
    return changed


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--unchanged-nodes", type=int, default=100)
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=INT",
                        help="A HarvestSettings field for every harvest of the run, e.g. concurrency=8.")
    parser.add_argument("--serve", nargs="*")
    args = parser.parse_args(argv)
    settings = {name: int(value) for name, value in (item.split("=", 1) for item in args.setting)}
    if args.serve is not None:
        return serve_many(args.serve)
    work = Path(tempfile.mkdtemp(prefix="bench-harvest-"))
    started = time.perf_counter()
    dirs = node_dirs(args.nodes, args.records)
    print(f"nodes ready ({args.nodes} x {args.records}) in {time.perf_counter() - started:.1f} s", flush=True)
    # Work on copies so that the 1 % change does not alter the cache.
    copies = []
    for d in dirs:
        target = work / "nodes" / d.name
        shutil.copytree(d, target)
        copies.append(target)
    small = node_dirs(1, args.records, prefix="m")
    one = Network(small, work)
    try:
        _, _, rss_small = timed_harvest(one.registry, work / "small.db", **settings)
    finally:
        one.close()
    net = Network(copies, work)
    try:
        total = args.nodes * args.records
        secs, summary, rss_full = timed_harvest(net.registry, work / "full.db", **settings)
        print(f"(a) full harvest: {total} records in {secs:.1f} s = {total / secs:,.0f} records/s; {summary}; peak RSS {rss_full / 1024:.0f} MiB", flush=True)
        n, bare = bare_verify(copies)
        print(f"(b) bare canonicalise+verify loop: {n / bare:,.0f} records/s  -> (a)/(b) = {(total / secs) / (n / bare):.2f}", flush=True)
        n, naive = naive_ingest(net.urls, work / "naive.db")
        print(f"(c) naive unverified ingest: {n / naive:,.0f} records/s  -> (a)/(c) = {(total / secs) / (n / naive):.2f}", flush=True)
        again, summary, _ = timed_harvest(net.registry, work / "full.db", **settings)
        print(f"unchanged re-harvest of {args.nodes} nodes: {again * 1000:.0f} ms; {summary['nodes']}", flush=True)
        changed = change_share(copies, 0.01)
        inc, summary, _ = timed_harvest(net.registry, work / "full.db", **settings)
        print(f"after {changed} records (1 %) changed: {inc:.2f} s = {inc / secs:.1%} of the full harvest; {summary['nodes']}", flush=True)
        # (b) and (c) read and wrote about 2 GB since the catalogue was last touched, and this
        # machine's kernel reclaims cold page cache (DAMON): the run above reads many of its
        # pages back from disk. The same change again, right after it, finds them cached.
        changed = change_share(copies, 0.01)
        inc, summary, _ = timed_harvest(net.registry, work / "full.db", **settings)
        print(f"after another {changed} records (1 %) changed, catalogue pages cached: {inc:.2f} s = {inc / secs:.1%} "
              f"of the full harvest; {summary['nodes']}", flush=True)
    finally:
        net.close()
    print(f"memory: peak RSS (VmHWM) {rss_small / 1024:.0f} MiB for {args.records} records, {rss_full / 1024:.0f} MiB for {total}: ratio {rss_full / rss_small:.2f}", flush=True)
    tiny = node_dirs(args.unchanged_nodes, 20, prefix="u")
    many = Network(tiny, work)
    try:
        timed_harvest(many.registry, work / "many.db", **settings)
        secs, summary, _ = timed_harvest(many.registry, work / "many.db", **settings)
        print(f"unchanged re-harvest of {args.unchanged_nodes} nodes: {secs * 1000:.0f} ms wall; {summary['nodes']}", flush=True)
    finally:
        many.close()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
