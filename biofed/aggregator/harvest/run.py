"""The harvest run: every node of the registry, concurrently, each from its signed checkpoint to a committed log.

harvest() takes the lock, accepts the registry, syncs the node list and runs
one _Run: per node, the checkpoint (verified, fresh, no rollback), then its
pages from a PageStream, each committed (commit.commit_page) as soon as it is
proved -- or, when the run could be a mass deletion, spooled to a temporary
file and committed only when the run is complete and its deletions counted.
Then bulk-load indexes and whole-catalogue finalising, when anything changed.
A node's failure, budget or quarantine is recorded on it; the others go on.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from biofed.aggregator import catalogue, state
from biofed.aggregator.checks import NodeKey, PageError
from biofed.aggregator.fetch import BudgetExceeded, FetchError, FetchLimits, NodeBudget, NodeClient
from biofed.aggregator.harvest.commit import attribution, commit_page, set_checkpoint
from biofed.aggregator.harvest.pagestream import PageStream, WorkerPool
from biofed.aggregator.harvest.reports import HarvestReport, NodeReport, Reporter
from biofed.aggregator.harvest.settings import HarvestSettings
from biofed.aggregator.lock import HarvestLock
from biofed.aggregator.registry_source import RegistryRefused, RegistryView, load_registry, read_source
from biofed.errors import NodeRefused
from biofed.progress import log_event
from biofed.trust import checkpoint as checkpoints
from biofed.trust.keys import PublicKey
from biofed.trust.merkle import CompactRange


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
            run = _Run(conn, catalogue, registry, settings, set(accept_mass_delete), Reporter(progress), now)
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


class _Run:
    """One harvest of the whole network."""

    def __init__(self, conn, catalogue, registry: RegistryView, settings: HarvestSettings, accept: set[str],
                 reporter: Reporter, now: datetime | None):
        self.conn = conn
        self.catalogue = catalogue
        self.registry = registry
        self.settings = settings
        self.accept = accept
        self.reporter = reporter
        self.now = now
        self.workers = WorkerPool(settings.worker_count)  # started when a page first needs them
        self.pending = 0  # new log entries announced by the checkpoints seen so far in this run

    async def aclose(self) -> None:
        self.reporter.close()
        self.workers.shutdown()

    async def all_nodes(self, report: HarvestReport) -> None:
        nodes = self.registry.nodes()
        self._sync_nodes(nodes)
        s = self.settings
        workers = s.worker_count
        pages_in_flight = max(2, s.pages_in_flight or (max(workers, 1) + 2))
        concurrency = max(1, s.concurrency or pages_in_flight)
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
                     node.get("licence"), attribution(node), node.get("status", "active")),
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
                set_checkpoint(self.conn, node_id, run.checkpoint)
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
        # Each node its own small connection pool (see fetch.shared_client): nodes are separate origins anyway.
        async with NodeClient(base_url, connect_timeout=s.connect_timeout, retries=s.retries, backoff=s.backoff,
                              budget=NodeBudget(s.node_seconds, s.node_bytes)) as client:
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
            if self.node_slots.locked():
                await client.drop_connections()  # no idle socket held while waiting for a slot
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

    async def _pages(self, client, node, keys, run_id, cp, cursor, frontier, report) -> None:
        s = self.settings
        node_id = node["id"]
        held_count = state.node_row(self.conn, node_id)["records"]
        pending = cp.size - cursor
        workers = s.worker_count
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
        pages = PageStream(s, self.page_slots, self.workers, client, node_id, keys, cp, cursor, frontier, parallel)
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
                            commit_page(self.conn, self.catalogue, node, run_id, entries, end, size, frontier_bytes, cp, report)
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
                        commit_page(self.conn, self.catalogue, node, run_id, entries, end, size, frontier_bytes, cp, report)
        finally:
            await pages.close()
            if spool is not None:
                spool.close()
        if failure is not None:
            raise failure


@dataclass
class _NodeRun:
    started: str
    id: int | None = None  # harvest_runs row, written when the first page is about to be fetched
    note: tuple[str | None, str] | None = None  # verified checkpoint (etag, note) still to be stored
    checkpoint: checkpoints.Checkpoint | None = None  # an unchanged node's checkpoint, stored by _finish
