"""Node benchmark: bulk import+sign rate, feed page latency, checkpoint throughput.

    python -m bench.bench_node [--records 10000] [--pages 200] [--seconds 5]

Import runs in-process (validation, signing, one SQLite transaction); the
HTTP figures come from a real `biofed node serve` (uvicorn) on loopback,
measured with httpx.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from biofed.node.samples import sample_actor
from biofed.node.store import init_node
from biofed.trust.keys import SigningKey


def bare_sign_rate(n: int) -> float:
    key = SigningKey.generate()
    message = os.urandom(64)
    started = time.perf_counter()
    for _ in range(n):
        key.sign(message)
    return n / (time.perf_counter() - started)


def import_rate(directory: Path, n: int) -> tuple[float, float]:
    node, _ = init_node(directory, node_id="bench-node", name="Bench", country="DE", region="DE1")
    records = [sample_actor(i) for i in range(n)]
    started = time.perf_counter()
    result = node.put_many(records)
    first = time.perf_counter() - started
    assert result.created == n, result.as_dict()
    started = time.perf_counter()
    again = node.put_many(records)
    second = time.perf_counter() - started
    assert again.unchanged == n
    node.close()
    return n / first, n / second


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(directory: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "biofed", "node", "serve", str(directory), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(base + "/checkpoint", timeout=1)
            return process, base
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("node did not start")


def page_latency(base: str, size: int, pages: int) -> tuple[float, float, int]:
    timings = []
    with httpx.Client(base_url=base, headers={"Accept-Encoding": "gzip"}) as client:
        last_pages = max(1, size // 500)
        for i in range(pages):
            after = (i % last_pages) * 500
            started = time.perf_counter()
            response = client.get(f"/log?after={after}&limit=500")
            timings.append(time.perf_counter() - started)
            assert response.status_code == 200 and len(response.json()["entries"]) == 500
            wire = int(response.headers.get("content-length", 0))
    timings.sort()
    return statistics.median(timings) * 1000, timings[int(len(timings) * 0.95) - 1] * 1000, wire


def proof_latency(base: str, size: int, requests: int) -> tuple[float, float]:
    """p50 of GET /log/proof/consistency (a harvester asks one per page) and /log/proof/inclusion, in ms."""
    timings: dict[str, list[float]] = {"consistency": [], "inclusion": []}
    with httpx.Client(base_url=base) as client:
        client.get(f"/log/proof/consistency?first=1&second={size}")  # the node reads its log once
        for i in range(requests):
            for kind, query in (("consistency", f"first={1 + i * 997 % (size - 1)}&second={size}"),
                                ("inclusion", f"seq={1 + i * 997 % size}&size={size}")):
                started = time.perf_counter()
                response = client.get(f"/log/proof/{kind}?{query}")
                timings[kind].append(time.perf_counter() - started)
                assert response.status_code == 200 and response.json()["hashes"]
    return statistics.median(timings["consistency"]) * 1000, statistics.median(timings["inclusion"]) * 1000


def proof_cost_at(leaves: int) -> tuple[float, float]:
    """A consistency proof over a log of `leaves` entries from stored subtrees (us), beside rehashing the log once (ms)."""
    from biofed.trust import merkle

    hashes = [merkle.leaf_hash(i.to_bytes(8, "big")) for i in range(leaves)]
    tree = merkle.MerkleTree(hashes)
    started = time.perf_counter()
    for first in range(1, leaves, leaves // 100):
        tree.consistency_proof(first, leaves)
    stored = (time.perf_counter() - started) / 100 * 1e6
    started = time.perf_counter()
    merkle.root(hashes)  # what every proof cost before: each subtree root recomputed from the leaves
    return stored, (time.perf_counter() - started) * 1000


async def checkpoint_rate(base: str, clients: int, seconds: float) -> float:
    done = 0
    stop = time.monotonic() + seconds

    async def worker(client):
        nonlocal done
        while time.monotonic() < stop:
            response = await client.get("/checkpoint")
            assert response.status_code == 200
            done += 1

    async with httpx.AsyncClient(base_url=base, limits=httpx.Limits(max_connections=clients)) as client:
        started = time.monotonic()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        return done / (time.monotonic() - started)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--big-log", type=int, default=1_000_000, help="log size for the in-process proof cost")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "node"
        sign = bare_sign_rate(args.records)
        imported, unchanged = import_rate(directory, args.records)
        process, base = serve(directory)
        try:
            p50, p95, wire = page_latency(base, args.records, args.pages)
            checkpoints = asyncio.run(checkpoint_rate(base, args.clients, args.seconds))
            consistency, inclusion = proof_latency(base, args.records, args.pages)
        finally:
            process.terminate()
            process.wait()
    print(f"| bare Ed25519 sign (64 bytes) | {sign:,.0f}/s |")
    print(f"| import {args.records:,} actors: validate + sign + store, one transaction | {imported:,.0f} records/s |")
    print(f"| re-import of the same {args.records:,} (unchanged, no new versions) | {unchanged:,.0f} records/s |")
    print(f"| GET /log 500-entry page, gzip ({wire:,} bytes on the wire), {args.pages} requests | p50 {p50:.1f} ms, p95 {p95:.1f} ms |")
    print(f"| GET /checkpoint, {args.clients} concurrent clients, {args.seconds:g} s | {checkpoints:,.0f} requests/s |")
    print(f"| GET /log/proof/consistency and /log/proof/inclusion, {args.records:,}-entry log, {args.pages} requests each "
          f"| p50 {consistency:.2f} ms, {inclusion:.2f} ms |")
    stored, rehash = proof_cost_at(args.big_log)
    print(f"| consistency proof in a {args.big_log:,}-entry log: from stored subtree hashes, vs rehashing the log "
          f"| {stored:.0f} us vs {rehash:,.0f} ms |")


if __name__ == "__main__":
    main()
