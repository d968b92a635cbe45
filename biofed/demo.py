"""`biofed demo`: a real network of six regional nodes on loopback, from real data.

Every step is the real one: each node is created and filled by its own
importers from the data shipped in `biofed/data` (ROR organisations, CORDIS
Horizon 2020 health projects), served by `biofed node serve`; a registry admits
each node through the join flow (the registry fetches the node's descriptor);
the aggregator harvests and verifies everything; Datasette serves the
catalogue. Running it again reuses the directory: nothing is re-signed that
did not change, and the harvest is incremental.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click
import httpx

from biofed.errors import BiofedError
from biofed.serving import check_ports_free, run_server

REGISTRY_NAME = "biofed-demo"
IMPORT_REASON = "refused-at-import"  # rejections the nodes' importers made, shown in the catalogue


@dataclass
class DemoNode:
    id: str
    name: str
    country: str
    region: str
    licence: str
    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _say(message: str, quiet: bool = False) -> None:
    if not quiet:
        click.echo(message, err=True)


def plan(directory: Path, base_port: int) -> list[DemoNode]:
    from biofed.data import demo_nodes

    return [DemoNode(n["id"], n["name"], n["country"], n["region"], n["licence"],
                     directory / "nodes" / n["id"], base_port + 1 + i)
            for i, n in enumerate(demo_nodes())]


def fill_node(node: DemoNode, *, quiet: bool) -> dict:
    """Create the node on first run, then import its share of the shipped data (idempotent)."""
    from biofed.data import demo_rows
    from biofed.node.importing import import_rows
    from biofed.node.store import Node, init_node

    if (node.directory / "node.json").exists():
        opened = Node.open(node.directory)
        if opened.config.baseUrl != node.url:
            opened.close()
            raise BiofedError(f"{node.directory} was created for {opened.config.baseUrl}, not {node.url}: "
                              "use the --base-port of the first run, or a new --dir")
    else:
        opened, _token = init_node(node.directory, node_id=node.id, name=node.name, country=node.country,
                                   region=node.region, base_url=node.url, licence=node.licence)
    try:
        outcome = import_rows(opened, demo_rows(node.id), skip_invalid=True)
    finally:
        opened.close()
    rejects_path = node.directory / "import-rejects.jsonl"
    with rejects_path.open("w", encoding="utf-8") as out:
        for item in outcome.rejected:
            out.write(json.dumps(item.as_dict(), ensure_ascii=False) + "\n")
    result = outcome.result
    _say(f"  {node.id:<13} {result.created:>4} created, {result.updated:>3} updated, {result.unchanged:>4} unchanged, "
         f"{len(outcome.rejected):>3} refused by validation" + (f" (see {rejects_path})" if outcome.rejected else ""), quiet)
    return {"node": node.id, **result.as_dict(), "rejected": [r.as_dict() for r in outcome.rejected]}


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the demo itself is killed, so no node outlives it (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Processes:
    """Child processes (nodes, registry) that are always stopped on exit, Ctrl-C included."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("ab")
        # Own session: a Ctrl-C reaches only the demo, which stops the children in order.
        process = subprocess.Popen([sys.executable, "-m", "biofed", *args], stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)
        self.children.append((name, process))
        return process

    def wait_ready(self, name: str, process: subprocess.Popen, url: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = (self.log_dir / f"{name}.log").read_text(errors="replace").strip().splitlines()[-3:]
                raise BiofedError(f"{name} stopped at start-up (exit {process.returncode}): {' | '.join(tail)}")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise BiofedError(f"{name} did not answer at {url} within {timeout:.0f} s (log: {self.log_dir / name}.log)")

    def stop(self) -> None:
        for _, process in self.children:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _, process in self.children:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.children.clear()


def admit_nodes(registry_dir: Path, nodes: list[DemoNode], *, quiet: bool):
    """Create the registry on first run; admit each node not yet in it through the real join flow."""
    from biofed.node.join import make_join_request
    from biofed.registry.store import RegistryStore

    if (registry_dir / "registry.json").exists():
        store = RegistryStore.open(registry_dir)
        store.sign()  # a fresh version with a fresh expiry, so a rerun days later is not refused as frozen
    else:
        store = RegistryStore.init(registry_dir, name=REGISTRY_NAME)
    known = {entry["id"] for entry in store.document()["nodes"]}
    for node in nodes:
        if node.id not in known:
            store.add_node(make_join_request(node.directory))  # online: checks the node serves its key
            _say(f"  admitted {node.id} (control of {node.url} verified)", quiet)
    return store


def record_import_rejections(db_path: Path, outcomes: list[dict]) -> None:
    """Show in the catalogue what each node refused to publish, and why (replaces the last run's rows)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    conn = sqlite3.connect(db_path)
    try:
        with conn:
            conn.execute("DELETE FROM rejections WHERE reason = ?", (IMPORT_REASON,))
            conn.executemany(
                "INSERT INTO rejections (run_id, node_id, seq, record_id, reason, message, at) "
                "VALUES (NULL, ?, NULL, ?, ?, ?, ?)",
                [(outcome["node"], item["id"], IMPORT_REASON,
                  f"{item['source']}: " + "; ".join(f"{e.get('pointer') or '/'}: {e['message']}" for e in item["errors"]),
                  now)
                 for outcome in outcomes for item in outcome["rejected"]],
            )
    finally:
        conn.close()


def catalogue_counts(db_path: Path) -> dict[str, dict[str, int]]:
    conn = sqlite3.connect(db_path)
    try:
        counts: dict[str, dict[str, int]] = {}
        for table in ("actors", "projects", "offers"):
            for node_id, count in conn.execute(f"SELECT node_id, count(*) FROM {table} GROUP BY node_id"):
                counts.setdefault(node_id, {})[table] = count
        return counts
    finally:
        conn.close()


def run_demo(directory: Path, *, serve: bool = True, base_port: int = 8100, port: int = 8001,
             quiet: bool = False) -> dict:
    """Build (or refresh) the demo network in `directory`; serve the catalogue until Ctrl-C if `serve`."""
    from biofed.aggregator.harvest import harvest
    from biofed.aggregator.publish import publish

    started = time.monotonic()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    nodes = plan(directory, base_port)
    registry_url = f"http://127.0.0.1:{base_port}"
    check_ports_free([base_port] + [n.port for n in nodes] + ([port] if serve else []))

    _say(f"BioFed demo in {directory}: importing the shipped real data into {len(nodes)} regional nodes", quiet)
    outcomes = [fill_node(node, quiet=quiet) for node in nodes]

    processes = Processes(directory / "logs")
    # SIGTERM stops the network as cleanly as Ctrl-C does (the finally below runs).
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        started_nodes = [(node, processes.start(node.id, ["node", "serve", str(node.directory),
                                                          "--port", str(node.port), "--checkpoint-interval", "60"]))
                         for node in nodes]
        for node, process in started_nodes:
            processes.wait_ready(node.id, process, f"{node.url}/checkpoint")
        _say("Registry: admitting the nodes through the join flow", quiet)
        store = admit_nodes(directory / "registry", nodes, quiet=quiet)
        registry = processes.start("registry", ["registry", "serve", str(directory / "registry"),
                                                "--port", str(base_port)])
        processes.wait_ready("registry", registry, f"{registry_url}/registry.json")

        _say("Aggregator: harvesting and verifying every node", quiet)
        db_path = directory / "catalogue.db"
        report = harvest(f"{registry_url}/registry.json", db_path, registry_keys=store.public_keys())
        for node_id, node_report in sorted(report.nodes.items()):
            _say(f"  {node_id:<13} {node_report.status:<10} {node_report.accepted:>4} accepted, "
                 f"{node_report.rejected} rejected" + (f": {node_report.error}" if node_report.error else ""), quiet)
        if not report.ok:
            raise BiofedError("the harvest did not complete for every node; see the lines above and "
                              f"`biofed aggregator status --db {db_path}`")
        record_import_rejections(db_path, outcomes)
        public = publish(db_path, directory / "catalogue-public.db")
        counts = catalogue_counts(public)
        summary = {"directory": str(directory), "registry": f"{registry_url}/registry.json",
                   "nodes": {n.id: n.url for n in nodes}, "catalogue": f"http://127.0.0.1:{port}/" if serve else None,
                   "counts": counts, "harvest": report.summary(), "seconds": round(time.monotonic() - started, 1)}
        (directory / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        _say(f"Built in {summary['seconds']} s: "
             f"{sum(c.get('actors', 0) for c in counts.values())} actors, "
             f"{sum(c.get('projects', 0) for c in counts.values())} projects and "
             f"{sum(c.get('offers', 0) for c in counts.values())} offers from {len(counts)} nodes.", quiet)
        if not quiet:
            click.echo("\nNodes:")
            for node in nodes:
                click.echo(f"  {node.id:<13} {node.url}/.well-known/biofed-node.json")
            click.echo(f"Registry:  {registry_url}/registry.json")
        # The terminal gets text only; the machine-readable summary is summary.json (no JSON log line here).
        _say(f"Summary: {directory / 'summary.json'}", quiet)
        if serve:
            _serve_catalogue(public, port, quiet=quiet)
        return summary
    finally:
        processes.stop()
        signal.signal(signal.SIGTERM, previous)


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def _serve_catalogue(public: Path, port: int, *, quiet: bool) -> None:
    from biofed.aggregator.serve import ReloadOnPublish, make_datasette

    ds = make_datasette(public)
    click.echo(f"Catalogue: http://127.0.0.1:{port}/   (Ctrl-C stops the whole network)")
    run_server(ReloadOnPublish(ds, public), host="127.0.0.1", port=port, log_level="warning" if quiet else "info", lifespan="on")


@click.command()
@click.option("--dir", "directory", default="biofed-demo", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Working directory; reused by later runs.")
@click.option("--no-serve", is_flag=True, help="Build the network and the catalogue, then stop everything and exit.")
@click.option("--port", default=8001, show_default=True, help="Port of the catalogue.")
@click.option("--base-port", default=8100, show_default=True,
              help="Registry port; the six nodes take the next six.")
@click.option("--quiet", is_flag=True, help="Only the URLs and errors.")
def demo(directory, no_serve, port, base_port, quiet):
    """Run a real network on loopback: six regional nodes filled from real data
    (ROR, CORDIS), a registry that admits them, a verified harvest, and the
    Datasette catalogue at http://127.0.0.1:8001/."""
    run_demo(directory, serve=not no_serve, base_port=base_port, port=port, quiet=quiet)
