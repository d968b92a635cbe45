"""Network simulator: N real node apps on loopback, a registry, slow/down/hostile nodes, harvested and measured.

    python -m bench.bench_network --nodes 1000 --records 1000 --slow 0.05 --down 0.03 --hostile 0.01

Every node is the real node (biofed.node's store and app) over its own
directory of signed actors, projects and offers (bench.records.mixed). The
directories are generated once into a cache under the temporary directory
(keyed by the record count, so the first 100 nodes of a 1,000-node network are
the 100 nodes of a 100-node one) and copied into a work directory per run.

The trick that serves 1,000 node apps from a few processes: each serving
process runs ONE uvicorn server over many listening sockets and an ASGI
dispatcher (`Dispatcher`) in front of one node app per node. With
`--routing address` (the default) every node gets its own loopback address
(127.1.x.y; Linux routes all of 127.0.0.0/8 to the loopback interface) and
port, and the dispatcher picks the app by the address the connection came in
on (`scope["server"]`): every node is a separate origin, so the harvester pays
one connection set-up per node, as it does on the real network. With
`--routing path` all nodes of a process share one socket and the first path
segment picks the node (base URLs `http://127.0.0.1:PORT/sim0042`); the
harvester then reuses connections across nodes, which the real network
does not allow.

Each process keeps at most `--open-nodes` nodes' SQLite connections open and
closes the least recently used idle ones: a node opens one connection per
serving thread, and 500 nodes x 40 threads would otherwise hold 40,000
connections (two file descriptors each).

Behaviours (shares of the nodes, chosen with a fixed seed; the rest are honest):
  --slow     latency before every answer and a trickled body (still above the
             harvester's minimum rate: every record must arrive);
  --down     listed in the registry, nothing listening (connection refused);
  --hostile  in turn: `tampered` (a record of the first log page altered after
             signing), `rewritten` (two entries of the first page swapped: every
             record verifies, the log does not hash to the signed checkpoint),
             `tarpit` (the checkpoint is honest, a log page request is answered
             with headers and then nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import orjson

from bench.records import actor, identity_of, mixed

CACHE = Path(tempfile.gettempdir()) / "biofed-bench-network"
HOSTILE_KINDS = ("tampered", "rewritten", "tarpit")


def node_id(i: int) -> str:
    return f"sim{i:04d}"


# -- node directories ---------------------------------------------------------

def _build_one(path: str, i: int, records: int) -> None:
    from biofed.node.store import init_node

    d = Path(path)
    if (d / ".complete").exists():
        return
    shutil.rmtree(d, ignore_errors=True)
    nid = node_id(i)
    node, _ = init_node(d, node_id=nid, name=f"Cluster {i}", country="DE", checkpoint_interval=300)
    contents = mixed(nid, records, node_index=i)
    for c in contents:
        c["id"] = c["id"][len(nid) + 1:]
    for start in range(0, len(contents), 2000):
        node.put_many(contents[start : start + 2000])
    node.close()
    (d / ".complete").write_text("ok")


def node_dirs(nodes: int, records: int, processes: int = 2, cache: Path = CACHE) -> list[Path]:
    """The cached node directories (built on first use, in `processes` processes)."""
    base = cache / f"v2-r{records}"  # v2: each node its own organisations, one in 20 shared
    dirs = [base / node_id(i) for i in range(nodes)]
    missing = [(str(d), i) for i, d in enumerate(dirs) if not (d / ".complete").exists()]
    if missing:
        base.mkdir(parents=True, exist_ok=True)
        with ProcessPoolExecutor(processes) as pool:
            list(pool.map(_build_one, *zip(*missing), [records] * len(missing), chunksize=8))
    return dirs


def assign(nodes: int, slow: float, down: float, hostile: float, seed: int = 20) -> list[str]:
    """Each node's behaviour: 'honest', 'slow', 'down' or a hostile kind; at least one of each share > 0."""
    def count(share):
        return 0 if share <= 0 else max(1, round(nodes * share))

    order = list(range(nodes))
    random.Random(seed).shuffle(order)
    kinds = ["honest"] * nodes
    taken = 0
    for name, n in (("down", count(down)), ("slow", count(slow)), ("hostile", count(hostile))):
        for k, i in enumerate(order[taken : taken + n]):
            kinds[i] = HOSTILE_KINDS[k % len(HOSTILE_KINDS)] if name == "hostile" else name
        taken += n
    if taken > nodes:
        raise SystemExit(f"--slow, --down and --hostile add up to {taken} nodes, more than --nodes {nodes}")
    return kinds


# -- serving ------------------------------------------------------------------

class Behaviour:
    """ASGI middleware in front of one node app: slow, tampered, rewritten or tarpit (see the module doc)."""

    def __init__(self, app, kind: str, *, latency: float, rate: int):
        self.app, self.kind, self.latency, self.rate = app, kind, latency, rate

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if self.kind == "slow":
            await asyncio.sleep(self.latency)
            return await self.app(scope, receive, self._trickle(send))
        if path != "/log":
            return await self.app(scope, receive, send)
        if self.kind == "tarpit":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": b'{"node":', "more_body": True})
            while True:  # until the harvester gives up and hangs up
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
        if "after=0&" not in scope.get("query_string", b"").decode() + "&":
            return await self.app(scope, receive, send)
        # The first page, uncompressed (no Accept-Encoding to the app), altered, sent whole.
        inner = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"accept-encoding"]}
        start, chunks = {}, []

        async def collect(message):
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                chunks.append(message.get("body", b""))

        await self.app(inner, receive, collect)
        body = b"".join(chunks)
        if start.get("status") == 200:
            page = orjson.loads(body)
            entries = page["entries"]
            if self.kind == "tampered" and entries:
                record = entries[-1]["record"]
                if record.get("names"):
                    record["names"][0]["value"] += " (altered)"
                else:
                    record["title"] = record.get("title", "") + " (altered)"
            elif self.kind == "rewritten" and len(entries) > 1:
                entries[0]["record"], entries[1]["record"] = entries[1]["record"], entries[0]["record"]
            body = orjson.dumps(page)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await send({**start, "headers": headers + [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _trickle(self, send):
        step = max(1, self.rate // 20)  # 20 writes a second

        async def trickled(message):
            if message["type"] != "http.response.body" or len(message.get("body", b"")) <= step:
                return await send(message)
            body, more = message["body"], message.get("more_body", False)
            for i in range(0, len(body), step):
                await send({"type": "http.response.body", "body": body[i : i + step], "more_body": True})
                await asyncio.sleep(0.05)
            await send({"type": "http.response.body", "body": b"", "more_body": more})

        return trickled


class Dispatcher:
    """One ASGI app in front of many node apps: by local address (`routing='address'`) or first path segment.

    Keeps at most `open_nodes` nodes' SQLite connections open (closing the least
    recently used node that has no request in flight) and re-signs every
    node's checkpoint every `resign_every` seconds (the node app's own task,
    one per node, is replaced by this one loop).
    """

    def __init__(self, nodes: dict[str, tuple], routing: str, *, open_nodes: int, resign_every: float):
        self.routing, self.open_nodes, self.resign_every = routing, open_nodes, resign_every
        self.apps = {key: app for key, (app, _node) in nodes.items()}
        self.nodes = {key: node for key, (_app, node) in nodes.items()}
        self.busy: dict[str, int] = {}
        self.recent: OrderedDict[str, None] = OrderedDict()  # keys of nodes with connections, least recent first

    def _enter(self, key: str) -> None:
        self.busy[key] = self.busy.get(key, 0) + 1
        self.recent[key] = None
        self.recent.move_to_end(key)

    def _leave(self, key: str) -> None:
        self.busy[key] -= 1
        if len(self.recent) > self.open_nodes:
            for old in list(self.recent):
                if len(self.recent) <= self.open_nodes:
                    break
                if not self.busy.get(old):
                    self.nodes[old].close()  # connections are reopened lazily by the next request
                    del self.recent[old]

    async def _resign_forever(self) -> None:
        from starlette.concurrency import run_in_threadpool

        while True:
            await asyncio.sleep(self.resign_every)
            for key, node in self.nodes.items():
                self._enter(key)
                try:
                    await run_in_threadpool(node.resign_checkpoint)
                finally:
                    self._leave(key)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            task = None
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    task = asyncio.create_task(self._resign_forever())
                    await send({"type": "lifespan.startup.complete"})
                else:
                    if task:
                        task.cancel()
                    for node in self.nodes.values():
                        node.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if self.routing == "address":
            key = scope["server"][0]
        else:
            key = scope["path"].split("/", 2)[1]
            prefix = "/" + key
            scope = {**scope, "root_path": scope.get("root_path", "") + prefix,
                     "path": scope["path"][len(prefix):] or "/",
                     "raw_path": scope.get("raw_path", b"")[len(prefix):] or b"/"}
        app = self.apps.get(key)
        if app is None:
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"no such node"})
            return
        self._enter(key)
        try:
            await app(scope, receive, send)
        finally:
            self._leave(key)


def serve_part(spec_path: str) -> None:
    """Serving process: the nodes of one part of the network; prints {key: port} as JSON, runs until killed."""
    import uvicorn

    from biofed.node.app import create_app

    spec = json.loads(Path(spec_path).read_text())
    sockets, nodes, ports = [], {}, {}
    shared = None
    for item in spec["nodes"]:
        app = create_app(item["dir"], checkpoint_interval=300)
        node = app.state.node
        node.resign_checkpoint()  # fresh: the cache may be days old, the harvest accepts one hour
        node.close()
        if item["kind"] != "honest":
            app = Behaviour(app, item["kind"], latency=spec["latency"], rate=spec["rate"])
        if spec["routing"] == "address":
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((item["key"], 0))
            sockets.append(sock)
            ports[item["key"]] = sock.getsockname()[1]
        else:
            if shared is None:
                shared = socket.socket()
                shared.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                shared.bind(("127.0.0.1", 0))
                sockets.append(shared)
            ports[item["key"]] = shared.getsockname()[1]
        nodes[item["key"]] = (app, node)
    dispatcher = Dispatcher(nodes, spec["routing"], open_nodes=spec["open_nodes"], resign_every=spec["resign_every"])
    # backlog: a harvest opens up to 64 connections at once, each to another socket; the default suffices.
    server = uvicorn.Server(uvicorn.Config(dispatcher, log_level="error", access_log=False, lifespan="on",
                                           limit_concurrency=None, timeout_keep_alive=30))
    for sock in sockets:
        sock.listen(2048)

    def announce():
        while not server.started:
            time.sleep(0.05)
        print(json.dumps(ports), flush=True)

    threading.Thread(target=announce, daemon=True).start()
    asyncio.run(server.serve(sockets=sockets))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once closed: connection refused


class SimNetwork:
    """The serving processes and the signed registry of one simulated network."""

    def __init__(self, dirs: list[Path], kinds: list[str], workdir: Path, *, processes: int = 2, routing: str = "address",
                 open_nodes: int = 32, latency: float = 0.2, rate: int = 64 * 1024, resign_every: float = 1200.0):
        from biofed.node.store import Node

        self.dirs, self.kinds, self.routing = dirs, kinds, routing
        keys = []
        for i, d in enumerate(dirs):
            if routing == "address":
                keys.append(f"127.1.{i // 250}.{i % 250 + 1}")
            else:
                keys.append(node_id(i))
        served = [i for i, kind in enumerate(kinds) if kind != "down"]
        self.processes: list[subprocess.Popen] = []
        ports: dict[str, int] = {}
        for p in range(processes):
            part = served[p::processes]
            if not part:
                continue
            spec = workdir / f"serve-{p}.json"
            spec.write_text(json.dumps({"routing": routing, "latency": latency, "rate": rate, "open_nodes": open_nodes,
                                        "resign_every": resign_every,
                                        "nodes": [{"dir": str(dirs[i]), "key": keys[i], "kind": kinds[i]} for i in part]}))
            self.processes.append(subprocess.Popen([sys.executable, "-m", "bench.bench_network", "--serve", str(spec)],
                                                   stdout=subprocess.PIPE, text=True))
        for process in self.processes:
            line = process.stdout.readline()
            if not line:
                self.close()
                raise RuntimeError("a serving process did not start")
            ports.update(json.loads(line))
        entries = []
        for i, d in enumerate(dirs):
            node = Node.open(d)
            if kinds[i] == "down":
                host = keys[i] if routing == "address" else "127.0.0.1"
                base = f"http://{host}:{_closed_port()}" + ("" if routing == "address" else f"/{keys[i]}")
            elif routing == "address":
                base = f"http://{keys[i]}:{ports[keys[i]]}"
            else:
                base = f"http://127.0.0.1:{ports[keys[i]]}/{keys[i]}"
            entries.append({"id": node.id, "name": node.config.name, "country": "DE", "region": "DE1", "baseUrl": base,
                            "licence": "CC-BY-4.0", "status": "active", "controlVerified": True, "keys": node.keys()})
            node.close()
        self.ids = [e["id"] for e in entries]
        self.registry = workdir / "registry.json"
        self.registry.write_bytes(orjson.dumps(signed_registry(entries)))

    def usage(self) -> list[dict]:
        """Resident memory (MiB) and open file descriptors of each serving process."""
        out = []
        for process in self.processes:
            status = Path(f"/proc/{process.pid}/status").read_text()
            rss = int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])
            out.append({"pid": process.pid, "rss_mib": round(rss / 1024), "fds": len(os.listdir(f"/proc/{process.pid}/fd"))})
        return out

    def close(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait()


def signed_registry(entries: list[dict]) -> dict:
    from biofed.trust import proofs
    from biofed.trust.keys import SigningKey

    key = SigningKey.generate()
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400))
    doc = {"type": "BioFedRegistry", "name": "simulated-network", "version": 1, "issued": now, "expires": later,
           "registryKeys": [key.public.jwk()], "nodes": entries}
    return proofs.sign(doc, key, f"urn:biofed:registry:simulated-network#{key.kid}")


# -- measuring ----------------------------------------------------------------

# The harvest runs in a fresh child process (no thread of ours in it: with one, the
# harvest would start its verifying workers with forkserver instead of fork, and
# their CPU would not be its children's). Peak memory is the child's own
# high-water mark (VmHWM); the parent samples its open file descriptors.
_CHILD = """
import json, os, resource, sys, time
from biofed.aggregator.harvest import harvest, HarvestSettings
settings = HarvestSettings(**json.loads(sys.argv[3]))
started, cpu = time.perf_counter(), time.process_time()
report = harvest(sys.argv[1], sys.argv[2], settings=settings)
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
workers = resource.getrusage(resource.RUSAGE_CHILDREN)  # the verifying processes, joined by the harvest
hwm = [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]
nodes = {k: [v.status, v.reason, round(v.seconds, 2)] for k, v in report.nodes.items()}
print(json.dumps({"seconds": seconds, "cpu": cpu, "workers_cpu": workers.ru_utime + workers.ru_stime,
                  "summary": report.summary(), "hwm_kib": hwm, "nodes": nodes}))
"""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _busy_cores() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def timed_harvest(registry: Path, db: Path, settings: dict, servers: list[int] = ()) -> dict:
    """One harvest in a fresh process: wall and CPU seconds (harvest, its verifying workers, the serving
    processes, and the whole machine's busy CPU, other people's work included), peak memory and fds."""
    os.sync()  # the bench's own writes (copies, changes) are not billed to the harvest
    served, machine = sum(_cpu_seconds(pid) for pid in servers), _busy_cores()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen([sys.executable, "-c", _CHILD, str(registry), str(db), json.dumps(settings)],
                                 stdout=out, stderr=err, text=True)
        peak_fds = 0
        while child.poll() is None:
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                peak_fds = max(peak_fds, len(os.listdir(f"/proc/{child.pid}/fd")))
            time.sleep(0.02)
        out.seek(0), err.seek(0)
        if child.returncode != 0:
            raise RuntimeError(f"harvest failed:\n{err.read()[-4000:]}")
        result = json.loads(out.read().strip().splitlines()[-1])
    result["peak_fds"] = peak_fds
    result["servers_cpu"] = sum(_cpu_seconds(pid) for pid in servers) - served
    result["machine_cpu"] = _busy_cores() - machine
    # On two idle cores the run could not be shorter than its CPU spread over both, nor than its main process.
    result["cpu_floor"] = max(result["cpu"], (result["cpu"] + result["workers_cpu"] + result["servers_cpu"]) / 2)
    return result


def _cpu_line(r: dict) -> str:
    ours = r["cpu"] + r["workers_cpu"] + r["servers_cpu"]
    return (f"CPU s: harvest {r['cpu']:.1f}, workers {r['workers_cpu']:.1f}, nodes {r['servers_cpu']:.1f}"
            f" (ours {ours:.1f} of the machine's {r['machine_cpu']:.1f} busy core-seconds in {r['seconds']:.1f} s wall);"
            f" floor on 2 idle cores {r['cpu_floor']:.1f} s")


def completeness(db: Path, ids: list[str], kinds: list[str], records: int) -> dict:
    """Per behaviour: nodes whose catalogue holds all `records` records (current, not stale) and nodes holding none."""
    import sqlite3

    conn = sqlite3.connect(db)
    held = dict(conn.execute("SELECT node_id, count(*) FROM records WHERE stale = 0 GROUP BY node_id").fetchall())
    conn.close()
    out: dict[str, dict] = {}
    for nid, kind in zip(ids, kinds):
        row = out.setdefault(kind, {"nodes": 0, "complete": 0, "empty": 0})
        row["nodes"] += 1
        n = held.get(nid, 0)
        row["complete"] += n == records
        row["empty"] += n == 0
    return out


def change_share(dirs: list[Path], kinds: list[str], share: float, records: int) -> int:
    """Change `share` of the actors of every served node (a new version with another name)."""
    from biofed.node.store import Node

    changed = 0
    for d, kind in zip(dirs, kinds):
        if kind == "down":
            continue
        node = Node.open(d)
        count = max(1, int(records * share))
        actors = max(1, records * 80 // 100)
        contents = []
        node_index = int(node.id.removeprefix("sim"))
        for j in range(count):
            k = j * (actors // count)
            c = actor(node.id, k, identity=identity_of(node_index, k, records))
            c["id"] = c["id"][len(node.id) + 1:]
            c["names"][0]["value"] += f" (rev {time.time_ns()})"
            contents.append(c)
        node.put_many(contents)
        changed += count
        node.close()
    return changed


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--slow", type=float, default=0.05, help="share of slow nodes (latency and a trickle)")
    parser.add_argument("--down", type=float, default=0.03, help="share of nodes that refuse connections")
    parser.add_argument("--hostile", type=float, default=0.01, help="share of hostile nodes (tampered, rewritten, tarpit)")
    parser.add_argument("--processes", type=int, default=2, help="serving processes")
    parser.add_argument("--routing", choices=("address", "path"), default="address")
    parser.add_argument("--open-nodes", type=int, default=32, help="nodes per serving process with open SQLite connections")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds before every answer of a slow node")
    parser.add_argument("--rate", type=int, default=64 * 1024, help="bytes/s (on the wire) at which a slow node sends")
    parser.add_argument("--phases", default="full,unchanged,changed", help="comma-separated: full, unchanged, changed")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                        help="A HarvestSettings field for every harvest of the run, e.g. concurrency=8.")
    parser.add_argument("--json", type=Path, help="also write the figures (per node too) to this file")
    parser.add_argument("--keep-catalogue", type=Path, metavar="PATH",
                        help="move the harvested catalogue here at the end (e.g. for bench.bench_readers)")
    parser.add_argument("--serve-only", action="store_true", help="start the network, print the registry path, wait")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve_part(args.serve)
    settings = {name: json.loads(value) for name, value in (item.split("=", 1) for item in args.setting)}
    work = Path(tempfile.mkdtemp(prefix="bench-network-"))
    started = time.perf_counter()
    cached = node_dirs(args.nodes, args.records)
    print(f"node directories ready ({args.nodes} x {args.records}) in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    dirs = []
    for d in cached:  # copies: the changes of a run do not reach the cache
        shutil.copytree(d, work / "nodes" / d.name)
        dirs.append(work / "nodes" / d.name)
    kinds = assign(args.nodes, args.slow, args.down, args.hostile)
    counts = {k: kinds.count(k) for k in sorted(set(kinds))}
    print(f"copied in {time.perf_counter() - started:.1f} s; behaviours {counts}", flush=True)
    started = time.perf_counter()
    net = SimNetwork(dirs, kinds, work, processes=args.processes, routing=args.routing, open_nodes=args.open_nodes,
                     latency=args.latency, rate=args.rate)
    try:
        print(f"network up in {time.perf_counter() - started:.1f} s ({args.routing} routing, {len(net.processes)} processes):"
              f" {net.usage()}", flush=True)
        if args.serve_only:
            print(f"registry: {net.registry}", flush=True)
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())  # a background job ignores SIGINT
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
            return
        figures = run(args, net, dirs, kinds, work / "catalogue.db", settings)
        if args.keep_catalogue:
            for suffix in ("", "-wal", "-shm"):
                if (work / f"catalogue.db{suffix}").exists():
                    shutil.move(work / f"catalogue.db{suffix}", f"{args.keep_catalogue}{suffix}")
        if args.json:
            args.json.write_text(json.dumps({"args": vars(args), "kinds": kinds, **figures}, default=str))
    finally:
        net.close()
        shutil.rmtree(work, ignore_errors=True)


def _statuses(result: dict) -> dict:
    out: dict[str, int] = {}
    for status, reason, _ in result["nodes"].values():
        key = status if status in ("ok", "unchanged") else f"{status}:{reason}"
        out[key] = out.get(key, 0) + 1
    return out


def run(args, net: SimNetwork, dirs, kinds, db: Path, settings: dict) -> dict:
    phases = args.phases.split(",")
    total = args.nodes * args.records
    figures: dict = {}
    pids = [p.pid for p in net.processes]
    full = timed_harvest(net.registry, db, settings, pids)
    figures["full"] = full
    slowest = max(full["nodes"].items(), key=lambda kv: kv[1][2])
    print(f"full harvest: {total:,} records of {args.nodes} nodes in {full['seconds']:.1f} s"
          f" ({total / full['seconds']:,.0f} records/s); peak RSS {full['hwm_kib'] / 1024:.0f} MiB,"
          f" peak open fds {full['peak_fds']}; nodes {_statuses(full)}; longest node {slowest[0]} {slowest[1]}", flush=True)
    print("  " + _cpu_line(full), flush=True)
    figures["complete"] = completeness(db, net.ids, kinds, args.records)
    print(f"catalogue per behaviour: {figures['complete']}", flush=True)
    figures["serving_after_full"] = net.usage()
    print(f"serving processes after the harvest: {figures['serving_after_full']}", flush=True)
    if "unchanged" in phases:
        again = timed_harvest(net.registry, db, settings, pids)
        figures["unchanged"] = again
        print(f"unchanged re-harvest of {args.nodes} nodes: {again['seconds']:.2f} s; peak fds {again['peak_fds']};"
              f" nodes {_statuses(again)}\n  {_cpu_line(again)}", flush=True)
    if "changed" in phases:
        changed = change_share(dirs, kinds, 0.01, args.records)
        inc = timed_harvest(net.registry, db, settings, pids)
        figures["changed"] = inc
        print(f"after {changed:,} records (1 %) changed on every node: {inc['seconds']:.2f} s ="
              f" {inc['seconds'] / full['seconds']:.1%} of the full harvest; peak RSS {inc['hwm_kib'] / 1024:.0f} MiB;"
              f" nodes {_statuses(inc)}\n  {_cpu_line(inc)}; floors: {inc['cpu_floor'] / full['cpu_floor']:.1%}"
              " of the full harvest's", flush=True)
    return figures


if __name__ == "__main__":
    main()
