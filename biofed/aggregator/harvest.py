"""Harvest every node of the registry into the catalogue database, verified and incrementally.

    report = harvest("registry.json", "catalogue.db", settings=HarvestSettings())

Per node (concurrently, at most `settings.concurrency` at a time):

1. GET /checkpoint, verify it with a key the registry pins for the node, refuse
   it when stale, smaller than the last verified size, or when the same size
   has a different root. An unchanged node costs this one request.
2. GET /log pages after the cursor. Each page is parsed under the strict
   profile, its leaves are appended to a copy of the node's Merkle frontier,
   and the frontier root is proved consistent with the signed checkpoint
   before anything from the page is used. Records are verified (proof, key,
   namespace, schema) in worker processes when there is enough to do.
3. Verified pages are spooled to a temporary file (memory stays flat). When
   the run is complete its deletions are counted: a run deleting more than
   `max_delete_share` of the node's records is quarantined, nothing of it
   committed, until an operator accepts it.
4. Each page is committed in ONE transaction: records and catalogue rows,
   changes, rejections, cursor, frontier. A crash leaves the catalogue
   consistent and the next run continues from the cursor.

A failing node (down, slow, 5xx, malformed, oversized, tampered log) gets its
error recorded and its records marked stale; the other nodes are unaffected.
A node that uses up its budget for the run (`node_seconds` waiting for its
answers, `node_bytes` received) is stopped after its last committed page and
marked `slow`; the next run continues from its cursor.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import concurrent.futures
import json
import multiprocessing
import os
import pickle
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

from biofed.aggregator import catalogue, state
from biofed.aggregator.checks import CONTENT_TYPES, NodeKey, PageError, check_page
from biofed.aggregator.fetch import BudgetExceeded, FetchError, FetchLimits, NodeBudget, NodeClient, shared_client
from biofed.aggregator.lock import HarvestLock
from biofed.aggregator.registry_source import RegistryRefused, RegistryView, load_registry, read_source
from biofed.errors import NodeRefused
from biofed.progress import log_event
from biofed.trust import checkpoint as checkpoints
from biofed.trust import jsonprofile
from biofed.trust.keys import PublicKey
from biofed.trust.merkle import CompactRange, ProofFailed, verify_consistency

DEFAULT_LICENCES = ("CC-BY-4.0", "CC0-1.0", "CC-BY-SA-4.0", "ODbL-1.0")


@dataclass(frozen=True)
class HarvestSettings:
    """How a harvest behaves. Defaults suit an hourly harvest of a few hundred nodes."""

    # Nodes whose log pages are harvested at the same time; None = as many as pages in flight.
    # More would not fetch more (every page holds one of those slots) but each node in progress
    # holds its own buffers: 20 x 10,000 records peaked at 110 MiB with 8, 99 MiB with 4, as fast.
    concurrency: int | None = None
    checkpoint_concurrency: int = 64  # small GET /checkpoint requests in flight at the same time
    page_size: int = 1000  # log entries per request (the protocol's maximum)
    max_age: timedelta = timedelta(hours=1)  # oldest acceptable checkpoint
    max_delete_share: float = 0.20  # a run deleting more of a node's records is quarantined
    mass_delete_min: int = 5  # ...unless it deletes fewer records than this
    licences: tuple[str, ...] = DEFAULT_LICENCES  # allow-list
    max_page_bytes: int = 16 * 1024 * 1024
    max_checkpoint_bytes: int = 16 * 1024
    max_proof_bytes: int = 64 * 1024
    connect_timeout: float = 5.0
    page_deadline: float = 120.0  # whole request: body, redirects, retries and back-off included
    small_deadline: float = 15.0  # the same for checkpoint and proofs
    min_rate: int = 20_000  # bytes/s a node must sustain after a 2 s grace
    retries: int = 2  # on connection errors and 5xx (never on a timeout), within the request's deadline
    backoff: float = 0.25  # first retry delay in seconds, doubled each time
    # What one node may cost one run (then it is `slow` and continues next run). A log entry is ~1.7 KB,
    # so 256 MiB is a first harvest of ~150,000 records (15 x the 10,000-record benchmark node) and 120 s
    # of waiting lets it arrive at >= 2.2 MB/s; an hourly run of a node is far smaller than either.
    node_seconds: float = 120.0  # time with a request to the node in flight (our verifying and writing excluded)
    node_bytes: int = 256 * 1024 * 1024  # bytes received from the node (after gzip decoding)
    workers: int | None = None  # verifying processes; None = one per CPU, 0 = verify in-process
    parallel_threshold: int = 4000  # a node with fewer new entries than this is verified in-process...
    network_parallel_threshold: int = 1000  # ...unless the checkpoints seen in the run announce this many in all
    pages_ahead: int = 3  # log pages of one node fetched/verified ahead of the one being committed
    pages_in_flight: int | None = None  # pages held in the whole run (memory bound); None = workers + 2
    bulk_load: bool = True  # into empty catalogue tables: build indexes and FTS once at the end, not per row


@dataclass
class NodeReport:
    node_id: str
    status: str  # ok | unchanged | error | quarantined | slow | skipped
    entries: int = 0
    accepted: int = 0
    rejected: int = 0
    deleted: int = 0
    error: str | None = None
    reason: str | None = None
    seconds: float = 0.0  # wall-clock time of this node's harvest (waits for a free slot included)


@dataclass
class HarvestReport:
    registry_version: int | None
    nodes: dict[str, NodeReport] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.status in ("ok", "unchanged") for r in self.nodes.values())

    def summary(self) -> dict:
        counts: dict[str, int] = {}
        for report in self.nodes.values():
            counts[report.status] = counts.get(report.status, 0) + 1
        return {"registry_version": self.registry_version, "nodes": counts, "seconds": round(self.seconds, 3),
                "accepted": sum(r.accepted for r in self.nodes.values()),
                "rejected": sum(r.rejected for r in self.nodes.values()),
                "deleted": sum(r.deleted for r in self.nodes.values())}


class NodeFailure(NodeRefused):
    """A node failed this run; its last verified records stay, marked stale."""


def harvest(registry_source: str | Path, db_path: str | Path, *, settings: HarvestSettings | None = None,
            registry_keys: list[PublicKey] | None = None, accept_mass_delete=(), progress: bool = False,
            now: datetime | None = None) -> HarvestReport:
    """Harvest once. Raises RegistryRefused (nothing harvested) if the registry is not acceptable."""
    return asyncio.run(harvest_async(registry_source, db_path, settings=settings, registry_keys=registry_keys,
                                     accept_mass_delete=accept_mass_delete, progress=progress, now=now))


async def harvest_async(registry_source, db_path, *, settings=None, registry_keys=None, accept_mass_delete=(),
                        progress=False, now=None) -> HarvestReport:
    settings = settings or HarvestSettings()
    started = time.monotonic()
    with HarvestLock(db_path):
        conn = state.connect(db_path)
        try:
            # A bulk load a crashed run left unfinished stays one: no indexes built on its partial tables.
            bulk = state.bulk_pending(conn)
            catalogue.ensure_schema(conn, bulk=bulk)
            registry = _accept_registry(conn, registry_source, registry_keys, now)
            if bulk or (settings.bulk_load and catalogue.public_tables_empty(conn)):
                # Into empty public tables: no secondary indexes or FTS triggers while inserting; the flag
                # is committed with their DROP, so a crash anywhere is finished by the next run.
                with state.transaction(conn):
                    catalogue.bulk_begin(conn)
                    state.set_bulk_pending(conn, True)
                bulk = True
            report = HarvestReport(registry.version)
            run = _Run(conn, catalogue, registry, settings, set(accept_mass_delete), _Reporter(progress), now)
            try:
                await run.all_nodes(report)
            finally:
                await run.aclose()
            if bulk:
                # Indexes (sorted builds), FTS ('rebuild'), triggers; the flag is cleared only afterwards.
                catalogue.bulk_finish(conn)
                state.set_bulk_pending(conn, False)
            # Partner resolution, region profiles, FTS optimise and ANALYZE are
            # whole-catalogue work: done when a run changed the catalogue (or a
            # crashed run left it pending), skipped when nothing changed.
            if state.finalise_pending(conn):
                # ANALYZE samples at most this many rows per index: planner statistics
                # stay good and the cost no longer grows with the catalogue.
                conn.execute("PRAGMA analysis_limit=1000")
                catalogue.finalise(conn)
                state.set_finalise_pending(conn, False)
            report.seconds = time.monotonic() - started
            if progress:
                log_event("harvest-done", **report.summary())
            return report
        finally:
            conn.close()


def _accept_registry(conn, source, pinned, now) -> RegistryView:
    previous = state.registry_state(conn)
    keys = list(pinned) if pinned else None
    if keys is None and previous is not None and previous["registry_keys"]:
        keys = [PublicKey.from_jwk(jwk) for jwk in json.loads(previous["registry_keys"])]
    try:
        registry = load_registry(read_source(source), keys, last_version=previous["version"] if previous else None, now=now)
    except RegistryRefused as exc:
        with state.transaction(conn):
            conn.execute("INSERT INTO registry_state (id, error) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET error = excluded.error",
                         (f"{state.utc_now()}: {exc}",))
        raise
    stored_keys = keys if pinned else (registry.keys or keys or [])
    with state.transaction(conn):
        conn.execute(
            "INSERT INTO registry_state (id, version, accepted_at, registry_keys, error) VALUES (1, ?, ?, ?, NULL)"
            " ON CONFLICT(id) DO UPDATE SET version = excluded.version, accepted_at = excluded.accepted_at,"
            " registry_keys = excluded.registry_keys, error = NULL",
            (registry.version, state.utc_now(), json.dumps([k.jwk() for k in stored_keys])),
        )
    return registry


class _Reporter:
    """A progress bar per node on a terminal, JSON lines elsewhere, nothing when quiet."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None
        self.tasks: dict[str, int] = {}
        if enabled and os.isatty(2):
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"))
            self.bar.start()

    def start(self, node_id: str, total: int) -> None:
        if self.bar is not None:
            self.tasks[node_id] = self.bar.add_task(node_id, total=total or 1, status="")
        elif self.enabled:
            log_event("node-start", node=node_id, entries=total)

    def advance(self, node_id: str, n: int) -> None:
        if self.bar is not None and node_id in self.tasks:
            self.bar.advance(self.tasks[node_id], n)

    def done(self, report: NodeReport) -> None:
        if self.bar is not None:
            task = self.tasks.get(report.node_id)
            if task is None:
                task = self.tasks[report.node_id] = self.bar.add_task(report.node_id, total=1, status="")
            self.bar.update(task, status=report.status + (f": {report.error}" if report.error else ""))
        elif self.enabled:
            log_event("node-done", node=report.node_id, status=report.status, entries=report.entries,
                      accepted=report.accepted, rejected=report.rejected, deleted=report.deleted,
                      seconds=round(report.seconds, 3), error=report.error)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _attribution(node: dict) -> str:
    return node.get("attribution") or f"{node.get('name') or node['id']} ({node.get('licence')})"


class _Run:
    """One harvest of the whole network."""

    def __init__(self, conn, catalogue, registry: RegistryView, settings: HarvestSettings, accept: set[str],
                 reporter: _Reporter, now: datetime | None):
        self.conn = conn
        self.catalogue = catalogue
        self.registry = registry
        self.settings = settings
        self.accept = accept
        self.reporter = reporter
        self.now = now
        self.pool: concurrent.futures.ProcessPoolExecutor | None = None
        self.http = None  # one httpx client (connection pool) for every node
        self.pending = 0  # new log entries announced by the checkpoints seen so far in this run

    async def aclose(self) -> None:
        self.reporter.close()
        if self.http is not None:
            await self.http.aclose()
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    async def all_nodes(self, report: HarvestReport) -> None:
        nodes = self.registry.nodes()
        self._sync_nodes(nodes)
        s = self.settings
        workers = s.workers if s.workers is not None else (os.cpu_count() or 1)
        pages_in_flight = max(2, s.pages_in_flight or (max(workers, 1) + 2))
        concurrency = max(1, s.concurrency or pages_in_flight)
        self.http = shared_client(s.connect_timeout, connections=max(s.checkpoint_concurrency, concurrency))
        self.checkpoint_slots = asyncio.Semaphore(max(1, s.checkpoint_concurrency))
        self.node_slots = asyncio.Semaphore(concurrency)
        self.page_slots = asyncio.Semaphore(pages_in_flight)

        async def one(node):
            result = await self.node(node)
            report.nodes[node["id"]] = result
            self.reporter.done(result)

        await asyncio.gather(*(one(node) for node in nodes))

    def _sync_nodes(self, nodes: list[dict]) -> None:
        """Copy the registry's view of each node into `nodes`; a node no longer listed is 'removed'."""
        listed = {n["id"] for n in nodes}
        with state.transaction(self.conn):
            for node in nodes:
                self.conn.execute(
                    "INSERT INTO nodes (id, name, country, region, base_url, licence, attribution, status)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name,"
                    " country = excluded.country, region = excluded.region, base_url = excluded.base_url,"
                    " licence = excluded.licence, attribution = excluded.attribution, status = excluded.status",
                    (node["id"], node.get("name"), node.get("country"), node.get("region"), node.get("baseUrl"),
                     node.get("licence"), _attribution(node), node.get("status", "active")),
                )
                self.conn.execute("INSERT OR IGNORE INTO node_state (node_id) VALUES (?)", (node["id"],))
                self.conn.execute("UPDATE node_state SET registry_version = ? WHERE node_id = ?", (self.registry.version, node["id"]))
            for row in self.conn.execute("SELECT id FROM nodes").fetchall():
                if row["id"] not in listed:
                    self.conn.execute("UPDATE nodes SET status = 'removed' WHERE id = ?", (row["id"],))
                    self._mark_stale(row["id"], state.utc_now())

    # -- one node -----------------------------------------------------------

    async def node(self, node: dict) -> NodeReport:
        node_id = node["id"]
        started = state.utc_now()
        report = NodeReport(node_id, "ok")
        run = _NodeRun(started)
        clock = time.monotonic()
        try:
            await self._harvest_node(node, run, report)
        except BudgetExceeded as exc:  # stopped after its last committed page: the next run continues there
            cursor = state.node_row(self.conn, node_id)["cursor"]
            report.status, report.reason = "slow", exc.reason
            report.error = (f"{exc}; stopped at log entry {cursor} ({report.entries} committed in this run),"
                            " the next run continues from there")
        except (NodeFailure, FetchError, PageError, checkpoints.CheckpointError) as exc:
            report.status, report.error, report.reason = "error", str(exc), getattr(exc, "reason", "error")
        except Exception as exc:  # a bug or an unforeseen answer must not stop the other nodes
            report.status, report.error, report.reason = "error", f"internal error: {exc!r}", "internal"
        report.seconds = time.monotonic() - clock
        self._finish(node, run, report)
        return report

    def _start_run(self, node_id: str, run: "_NodeRun") -> None:
        """Before the first page: the run row ('interrupted' until finished) and the checkpoint cache."""
        with state.transaction(self.conn):
            run.id = self.conn.execute(
                "INSERT INTO harvest_runs (node_id, started, status, error) VALUES (?, ?, 'error', 'interrupted')",
                (node_id, run.started)).lastrowid
            self._store_note(node_id, run)

    def _store_note(self, node_id: str, run: "_NodeRun") -> None:
        if run.note is not None:
            self.conn.execute("UPDATE node_state SET checkpoint_etag = ?, checkpoint_note = ? WHERE node_id = ?",
                              (*run.note, node_id))
            run.note = None

    def _finish(self, node: dict, run: "_NodeRun", report: NodeReport) -> None:
        now = state.utc_now()
        node_id = node["id"]
        with state.transaction(self.conn):
            self._store_note(node_id, run)
            if run.checkpoint is not None:
                self._set_checkpoint(node_id, run.checkpoint)
            if run.id is None:
                self.conn.execute(
                    "INSERT INTO harvest_runs (node_id, started, finished, status, entries, accepted, rejected, deleted, error)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (node_id, run.started, now, report.status, report.entries, report.accepted, report.rejected,
                     report.deleted, report.error))
            else:
                self.conn.execute(
                    "UPDATE harvest_runs SET finished = ?, status = ?, entries = ?, accepted = ?, rejected = ?, deleted = ?,"
                    " error = ? WHERE id = ?",
                    (now, report.status, report.entries, report.accepted, report.rejected, report.deleted, report.error, run.id))
            if report.status in ("ok", "unchanged"):
                self.conn.execute(
                    "UPDATE nodes SET health = 'ok', error = NULL, last_attempt = ?, last_success = ?, stale_since = NULL,"
                    " mass_delete_pending = 0 WHERE id = ?", (now, now, node_id))
                if self.conn.execute("SELECT 1 FROM records WHERE node_id = ? AND stale = 1 LIMIT 1", (node_id,)).fetchone():
                    self.conn.execute("UPDATE records SET stale = 0, stale_since = NULL WHERE node_id = ? AND stale = 1", (node_id,))
                    self.catalogue.set_node_stale(self.conn, node_id, None)
                    state.set_finalise_pending(self.conn, True)
            else:
                health = report.status if report.status in ("quarantined", "slow") else "error"
                self.conn.execute(
                    "UPDATE nodes SET health = ?, error = ?, last_attempt = ?, mass_delete_pending = ?,"
                    " stale_since = COALESCE(stale_since, ?) WHERE id = ?",
                    (health, report.error, now, 1 if report.status == "quarantined" else 0, now, node_id))
                self._mark_stale(node_id, now)

    def _mark_stale(self, node_id: str, since: str) -> None:
        if self.conn.execute("UPDATE records SET stale = 1, stale_since = ? WHERE node_id = ? AND stale = 0", (since, node_id)).rowcount:
            state.set_finalise_pending(self.conn, True)
        row = self.conn.execute("SELECT stale_since FROM nodes WHERE id = ?", (node_id,)).fetchone()
        self.catalogue.set_node_stale(self.conn, node_id, (row["stale_since"] if row and row["stale_since"] else since))

    async def _harvest_node(self, node: dict, run: "_NodeRun", report: NodeReport) -> None:
        node_id = node["id"]
        s = self.settings
        if node.get("status", "active") != "active":
            raise NodeFailure("inactive", f"node {node_id} is {node.get('status')} in the registry")
        if node.get("licence") not in s.licences:
            raise NodeFailure("licence", f"licence {node.get('licence')!r} of node {node_id} is not on the allow-list ({', '.join(s.licences)})")
        base_url = node.get("baseUrl")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise NodeFailure("registry", f"node {node_id} has no http(s) baseUrl in the registry")
        keys = RegistryView.node_keys(node)
        if not keys:
            raise NodeFailure("registry", f"the registry pins no usable key for node {node_id}")
        async with NodeClient(base_url, connect_timeout=s.connect_timeout, retries=s.retries, backoff=s.backoff,
                              client=self.http, budget=NodeBudget(s.node_seconds, s.node_bytes)) as client:
            row = state.node_row(self.conn, node_id)
            st = state.node_state_row(self.conn, node_id)
            async with self.checkpoint_slots:
                cp = await self._checkpoint(client, node_id, keys, row, st, run)
            cursor = row["cursor"]
            frontier = CompactRange.from_bytes(st["frontier_size"], st["frontier"] or b"")
            if frontier.size != cursor:
                raise NodeFailure("state", f"stored frontier size {frontier.size} differs from cursor {cursor}; reset the node")
            self.pending += cp.size - cursor
            if cp.size == cursor:
                if frontier.root() != cp.root:
                    raise NodeFailure("rewritten", f"checkpoint of size {cp.size} has a different root than the verified log: history was rewritten")
                report.status = "unchanged"
                run.checkpoint = cp  # written with the run's one transaction in _finish
                return
            async with self.node_slots:
                self._start_run(node_id, run)
                self.reporter.start(node_id, cp.size - cursor)
                await self._pages(client, node, keys, run.id, cp, cursor, frontier, report)

    async def _checkpoint(self, client: NodeClient, node_id: str, keys: list[NodeKey], row, st, run) -> checkpoints.Checkpoint:
        s = self.settings
        headers = {"If-None-Match": st["checkpoint_etag"]} if st["checkpoint_etag"] and st["checkpoint_note"] else {}
        response = await client.get("/checkpoint", FetchLimits(s.max_checkpoint_bytes, s.small_deadline, s.min_rate), headers=headers)
        if response.status == 304 and headers:
            note = st["checkpoint_note"].encode("utf-8")
        elif response.status == 200:
            note = response.body
        else:
            raise FetchError("http-status", f"GET /checkpoint answered HTTP {response.status}")
        # Only keys never reported compromised may vouch for the current state of a log.
        trusted = [PublicKey(k.raw) for k in keys if k.status != "revoked" and not k.compromised_since]
        cp = checkpoints.verify(note, trusted, origin=f"biofed/node/{node_id}")
        checkpoints.check_fresh(cp, self.settings.max_age, self.now)
        if cp.size < row["tree_size"] or cp.size < row["cursor"]:
            raise checkpoints.CheckpointError(
                "rollback", f"checkpoint size {cp.size} is smaller than the verified size {max(row['tree_size'], row['cursor'])}: rollback")
        if row["root_hash"] and cp.size == row["tree_size"] and cp.root.hex() != row["root_hash"]:
            raise checkpoints.CheckpointError("rewritten", f"checkpoint of size {cp.size} has a different root than the one verified before: history was rewritten")
        etag = response.headers.get("etag") if response.status == 200 else st["checkpoint_etag"]
        note_text = note.decode("utf-8")
        if (etag, note_text) != (st["checkpoint_etag"], st["checkpoint_note"]):
            run.note = (etag, note_text)  # stored with the run's first transaction
        return cp

    def _set_checkpoint(self, node_id: str, cp: checkpoints.Checkpoint) -> None:
        self.conn.execute("UPDATE nodes SET tree_size = ?, root_hash = ?, checkpoint_timestamp = ? WHERE id = ?",
                          (cp.size, cp.root.hex(), cp.timestamp, node_id))

    def _pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self.pool is None:
            s = self.settings
            workers = s.workers if s.workers is not None else (os.cpu_count() or 1)
            # fork is cheapest; when threads are running (e.g. servers in tests) forkserver is the safe choice.
            method = "fork" if threading.active_count() == 1 else "forkserver"
            self.pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))
        return self.pool

    async def _fetch_check(self, client, node_id, keys, position, limit, parallel, slot, checkpoint_time):
        """One page: GET it, then parse + canonicalise + verify it (in a worker process when `parallel`)."""
        s = self.settings
        await self.page_slots.acquire()
        slot.held = True
        response = await client.get(f"/log?after={position}&limit={limit}", FetchLimits(s.max_page_bytes, s.page_deadline, s.min_rate))
        if response.status != 200:
            raise FetchError("http-status", f"GET /log?after={position} answered HTTP {response.status}")
        if parallel:
            # Only the raw bytes go to the worker and only leaf bytes + verdicts come back.
            return await asyncio.get_running_loop().run_in_executor(
                self._pool(), _check_page_compact, node_id, keys, response.body, position, s.max_page_bytes,
                checkpoint_time)
        return check_page(node_id, keys, response.body, position, s.max_page_bytes, checkpoint_time=checkpoint_time)

    async def _pages(self, client, node, keys, run_id, cp, cursor, frontier, report) -> None:
        s = self.settings
        node_id = node["id"]
        held_count = state.node_row(self.conn, node_id)["records"]
        pending = cp.size - cursor
        workers = s.workers if s.workers is not None else (os.cpu_count() or 1)
        # Worker processes pay off for a big node, or for many small changes across
        # the network (their checkpoints arrive together, before any page is fetched).
        parallel = workers > 0 and (pending >= s.parallel_threshold or self.pending >= s.network_parallel_threshold)
        # A run is quarantined when it deletes too many HELD records; it cannot
        # delete more than it has entries nor more than the node has records.
        # Only when the bound allows a quarantine are verified pages spooled until
        # the run is complete; otherwise each page is committed as it is verified.
        may_quarantine = (node_id not in self.accept and pending >= s.mass_delete_min
                          and pending > s.max_delete_share * held_count)
        if may_quarantine:  # only then is the count (a scan of the node's index) worth it
            held_rows = self.conn.execute("SELECT count(*) FROM records WHERE node_id = ?", (node_id,)).fetchone()[0]
            most = min(pending, held_rows)
            may_quarantine = most >= s.mass_delete_min and most > s.max_delete_share * held_count
        deleting: set[str] = set()
        failure: Exception | None = None
        pages = _PageStream(self, client, node_id, keys, cp, cursor, frontier, parallel)
        spool = tempfile.TemporaryFile(prefix="biofed-harvest-") if may_quarantine else None
        try:
            spooled = 0
            while True:
                try:
                    page = await pages.next()
                except (FetchError, PageError, NodeFailure) as exc:
                    failure = exc
                    break
                if page is None:
                    break
                end, size, frontier_bytes, entries, slot = page
                try:
                    if spool is not None:
                        for entry in entries:
                            if entry.type == "Tombstone" and entry.reason is None and entry.record_id not in deleting:
                                if self.conn.execute("SELECT 1 FROM records WHERE id = ? AND node_id = ?", (entry.record_id, node_id)).fetchone():
                                    deleting.add(entry.record_id)
                                # (a tombstone for an id put earlier in this run is not a loss of held data)
                            entry.record = None  # re-read from the leaf when committed
                        pickle.dump((end, size, frontier_bytes, entries), spool, protocol=pickle.HIGHEST_PROTOCOL)
                        spooled += 1
                    else:
                        with state.transaction(self.conn):
                            self._commit_page(node, run_id, entries, end, size, frontier_bytes, cp, report)
                finally:
                    pages.release(slot)
                self.reporter.advance(node_id, len(entries))
            if spool is not None:
                if (len(deleting) >= s.mass_delete_min and len(deleting) > s.max_delete_share * held_count
                        and node_id not in self.accept):
                    share = len(deleting) / held_count if held_count else 1.0
                    report.status, report.reason = "quarantined", "mass-delete"
                    report.error = (f"this run would delete {len(deleting)} of {held_count} records ({share:.0%}, more than"
                                    f" {s.max_delete_share:.0%}): quarantined; accept with --accept-mass-delete {node_id}")
                    return
                spool.seek(0)
                for _ in range(spooled):
                    end, size, frontier_bytes, entries = pickle.load(spool)
                    with state.transaction(self.conn):
                        self._commit_page(node, run_id, entries, end, size, frontier_bytes, cp, report)
        finally:
            await pages.close()
            if spool is not None:
                spool.close()
        if failure is not None:
            raise failure

    async def _prove_page(self, client, cp, position, entries, frontier):
        """Append a verified page's leaves to a copy of the frontier and prove it consistent with the checkpoint."""
        s = self.settings
        if not entries:
            raise PageError("truncated", f"log page after {position} is empty, but the checkpoint says the log has {cp.size} entries: truncated log")
        entries = entries[: cp.size - position]  # entries appended after the checkpoint wait for the next run
        candidate = frontier.copy()
        for entry in entries:
            candidate.append(entry.hash)
        end = position + len(entries)
        if end == cp.size:
            if candidate.root() != cp.root:
                raise PageError("rewritten", f"log entries 1..{end} do not hash to the signed checkpoint root: the log was rewritten or tampered with")
        else:
            proof = await client.get(f"/log/proof/consistency?first={end}&second={cp.size}",
                                     FetchLimits(s.max_proof_bytes, s.small_deadline, s.min_rate))
            if proof.status != 200:
                raise FetchError("http-status", f"GET /log/proof/consistency?first={end}&second={cp.size} answered HTTP {proof.status}")
            try:
                doc = jsonprofile.loads(proof.body, max_bytes=s.max_proof_bytes)
                hashes = [base64.b64decode(h, validate=True) for h in doc["hashes"]]
            except (jsonprofile.ProfileError, KeyError, TypeError, ValueError) as exc:
                raise PageError("malformed", f"consistency proof {end}..{cp.size} is malformed: {exc}") from None
            try:
                verify_consistency(end, cp.size, candidate.root(), cp.root, hashes)
            except ProofFailed as exc:
                raise PageError("rewritten", f"log entries 1..{end} are not consistent with the signed checkpoint of size {cp.size}: {exc}") from None
        frontier.size, frontier.hashes = candidate.size, candidate.hashes
        return end, entries

    def _commit_page(self, node, run_id, entries, end, size, frontier_bytes, cp, report) -> None:
        conn = self.conn
        node_id = node["id"]
        now = state.utc_now()
        base_url = node["baseUrl"].rstrip("/")
        cat_node = {"id": node_id, "name": node.get("name"), "licence": node.get("licence"),
                    "attribution": _attribution(node), "base_url": base_url}
        ids = list({e.record_id for e in entries if e.reason is None})
        held: dict[str, tuple[int, str, str]] = {}
        tombs: dict[str, int] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(f"SELECT id, version, signed_json, type FROM records WHERE id IN ({marks})", chunk):
                held[row[0]] = (row[1], row[2], row[3])
            for row in conn.execute(f"SELECT id, version FROM tombstones WHERE id IN ({marks})", chunk):
                tombs[row[0]] = row[1]
        rejections, changes = [], []
        accepted = rejected = deleted = 0
        content_delta = 0  # change of the node's content record count (nodes.records)
        # The page's writes, batched: one executemany / DELETE ... IN per table. An id
        # seen twice in a page flushes the batch first, so writes keep their order.
        batch = _PageBatch(conn, self.catalogue, cat_node, now)
        for entry in entries:
            if entry.reason is None:
                current = held.get(entry.record_id)
                top = max(current[0] if current else 0, tombs.get(entry.record_id, 0))
                if entry.version <= top:
                    if current and entry.version == current[0] and entry.leaf.decode("utf-8") == current[1]:
                        continue  # the same signed bytes again: nothing to do
                    if entry.type == "Tombstone" and tombs.get(entry.record_id) == entry.version:
                        continue
                    entry.reason, entry.message = "replayed-version", f"version {entry.version} of {entry.record_id} is not higher than the held version {top}"
            if entry.reason is not None:
                rejections.append((run_id, node_id, entry.seq, entry.record_id, entry.reason, entry.message, now))
                rejected += 1
                continue
            rid = entry.record_id
            batch.claim(rid)
            if entry.type == "Tombstone":
                batch.tomb_put.append((rid, node_id, entry.version, now))
                tombs[rid] = entry.version
                if rid in held:
                    batch.record_del.append(rid)
                    batch.cat_del.append(rid)
                    if held[rid][2] in CONTENT_TYPES:
                        content_delta -= 1
                    del held[rid]
                    changes.append((rid, node_id, "delete", entry.version, now))
                    deleted += 1
                continue
            leaf_text = entry.leaf.decode("utf-8")
            batch.record_put.append((rid, node_id, entry.type, entry.version, entry.date_modified, now, leaf_text,
                                     f"{base_url}/records/{rid}"))
            if rid in tombs:
                batch.tomb_del.append(rid)
                del tombs[rid]
            old = held.get(rid)
            content_delta += (entry.type in CONTENT_TYPES) - (old is not None and old[2] in CONTENT_TYPES)
            if entry.type in CONTENT_TYPES:
                # Worker processes send only the leaf: the canonical bytes of the verified record.
                record = entry.record if entry.record is not None else orjson.loads(entry.leaf)
                batch.cat_put.append(self.catalogue.flatten(record))
            else:  # key statements: verified and kept; the registry stays the source of truth for keys
                log_event("key-statement", node=node_id, id=rid, type=entry.type)
            held[rid] = (entry.version, leaf_text, entry.type)
            changes.append((rid, node_id, "put", entry.version, now))
            accepted += 1
        batch.flush()
        if accepted or deleted:
            state.set_finalise_pending(conn, True)
        if rejections:
            conn.executemany("INSERT INTO rejections (run_id, node_id, seq, record_id, reason, message, at) VALUES (?, ?, ?, ?, ?, ?, ?)", rejections)
        if changes:
            conn.executemany("INSERT INTO changes (record_id, node_id, op, version, at) VALUES (?, ?, ?, ?, ?)", changes)
        conn.execute("UPDATE node_state SET frontier = ?, frontier_size = ? WHERE node_id = ?", (frontier_bytes, size, node_id))
        # records is kept by delta (not a count over the node's records on every page).
        conn.execute("UPDATE nodes SET cursor = ?, records = records + ? WHERE id = ?", (end, content_delta, node_id))
        if end == cp.size:
            self._set_checkpoint(node_id, cp)
        report.entries += len(entries)
        report.accepted += accepted
        report.rejected += rejected
        report.deleted += deleted
        conn.execute("UPDATE harvest_runs SET entries = ?, accepted = ?, rejected = ?, deleted = ? WHERE id = ?",
                     (report.entries, report.accepted, report.rejected, report.deleted, run_id))


class _PageBatch:
    """A page's record, tombstone and catalogue writes, flushed as one statement per table."""

    def __init__(self, conn, catalogue, cat_node, now):
        self.conn, self.catalogue, self.cat_node, self.now = conn, catalogue, cat_node, now
        self.ids: set[str] = set()
        self.record_put, self.record_del, self.tomb_put, self.tomb_del = [], [], [], []
        self.cat_put, self.cat_del = [], []

    def claim(self, rid: str) -> None:
        if rid in self.ids:
            self.flush()
        self.ids.add(rid)

    def flush(self) -> None:
        conn = self.conn
        if self.tomb_put:
            conn.executemany("INSERT OR REPLACE INTO tombstones (id, node_id, version, deleted_at) VALUES (?, ?, ?, ?)",
                             self.tomb_put)
        for chunk in _chunks(self.record_del):
            conn.execute(f"DELETE FROM records WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        if self.cat_del:
            self.catalogue.delete_records(conn, self.cat_del)
        if self.record_put:
            # An upsert, not INSERT OR REPLACE: a held record is updated in place (same rowid), and
            # node_id, fixed by the id's namespace, is not set again, so its index is not rewritten.
            conn.executemany(
                "INSERT INTO records (id, node_id, type, version, date_modified, verified_at, signed_json,"
                " record_url, stale, stale_since) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, NULL)"
                " ON CONFLICT (id) DO UPDATE SET type = excluded.type, version = excluded.version,"
                " date_modified = excluded.date_modified, verified_at = excluded.verified_at,"
                " signed_json = excluded.signed_json, record_url = excluded.record_url, stale = 0, stale_since = NULL",
                self.record_put)
        for chunk in _chunks(self.tomb_del):
            conn.execute(f"DELETE FROM tombstones WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        if self.cat_put:
            self.catalogue.upsert_flat(conn, self.cat_put, node=self.cat_node, verified_at=self.now)
        self.ids.clear()
        self.record_put, self.record_del, self.tomb_put, self.tomb_del = [], [], [], []
        self.cat_put, self.cat_del = [], []


def _chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i : i + size]


@dataclass
class _NodeRun:
    started: str
    id: int | None = None  # harvest_runs row, written when the first page is about to be fetched
    note: tuple[str | None, str] | None = None  # verified checkpoint (etag, note) still to be stored
    checkpoint: checkpoints.Checkpoint | None = None  # an unchanged node's checkpoint, stored by _finish


class _Slot:
    __slots__ = ("held",)

    def __init__(self):
        self.held = False


def _check_page_compact(node_id, keys, body, position, max_page_bytes, checkpoint_time):
    """check_page in a worker process: bytes in, leaf bytes and verdicts out (no record dicts).

    Flattening the catalogue rows here too was measured: no faster on two cores,
    and the larger results held in flight cost ~15 MiB of peak memory.
    """
    return check_page(node_id, keys, body, position, max_page_bytes, keep_records=False,
                      checkpoint_time=checkpoint_time)


class _PageStream:
    """A node's verified log pages, in order, with up to `pages_ahead` fetched and verified ahead.

    Pages ahead are requested assuming each page is full (the node's page
    size); when one is shorter, everything ahead is dropped and requested again
    from where it really ended. A page is only handed out after its leaves were
    proved consistent with the signed checkpoint. The run-wide `page_slots`
    bound the pages held in memory across all nodes.
    """

    def __init__(self, run: _Run, client, node_id, keys, cp, cursor, frontier, parallel):
        self.run, self.client, self.node_id, self.keys, self.cp = run, client, node_id, keys, cp
        self.position = self.ahead = cursor
        self.frontier = frontier
        self.parallel = parallel
        self.depth = max(1, run.settings.pages_ahead) if parallel else 1
        self.queue: collections.deque = collections.deque()

    def _launch(self) -> None:
        limit = min(self.run.settings.page_size, self.cp.size - self.ahead)
        slot = _Slot()
        task = asyncio.ensure_future(self.run._fetch_check(self.client, self.node_id, self.keys, self.ahead, limit,
                                                           self.parallel, slot, self.cp.time))
        self.queue.append((self.ahead, task, slot))
        self.ahead += limit

    def release(self, slot: _Slot) -> None:
        if slot.held:
            slot.held = False
            self.run.page_slots.release()

    async def next(self):
        """(end, frontier size, frontier bytes, entries, slot) of the next page, or None at the checkpoint."""
        if self.position >= self.cp.size:
            return None
        while len(self.queue) < self.depth and self.ahead < self.cp.size:
            self._launch()
        position, task, slot = self.queue.popleft()
        try:
            _claimed, entries = await task
            end, entries = await self.run._prove_page(self.client, self.cp, position, entries, self.frontier)
        except BaseException:
            self.release(slot)
            raise
        self.position = end
        if self.ahead != end and (not self.queue or self.queue[0][0] != end):
            await self._drop_ahead()
            self.ahead = end
        return end, self.frontier.size, self.frontier.to_bytes(), entries, slot

    async def _drop_ahead(self) -> None:
        while self.queue:
            _, task, slot = self.queue.popleft()
            task.cancel()
            try:
                await task
            except BaseException:
                pass
            self.release(slot)

    async def close(self) -> None:
        await self._drop_ahead()
