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
"""

from __future__ import annotations

import asyncio
import base64
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

from biofed.aggregator import state
from biofed.aggregator.checks import CONTENT_TYPES, NodeKey, PageError, check_page
from biofed.aggregator.fetch import FetchError, FetchLimits, NodeClient
from biofed.aggregator.lock import HarvestLock
from biofed.aggregator.registry_source import RegistryRefused, RegistryView, load_registry, read_source
from biofed.progress import log_event
from biofed.trust import checkpoint as checkpoints
from biofed.trust import jsonprofile
from biofed.trust.keys import PublicKey
from biofed.trust.merkle import CompactRange, ProofFailed, verify_consistency

DEFAULT_LICENCES = ("CC-BY-4.0", "CC0-1.0", "CC-BY-SA-4.0", "ODbL-1.0")


@dataclass(frozen=True)
class HarvestSettings:
    """How a harvest behaves. Defaults suit an hourly harvest of a few hundred nodes."""

    concurrency: int = 8  # nodes harvested at the same time
    page_size: int = 1000  # log entries per request (the protocol's maximum)
    max_age: timedelta = timedelta(hours=1)  # oldest acceptable checkpoint
    max_delete_share: float = 0.20  # a run deleting more of a node's records is quarantined
    mass_delete_min: int = 5  # ...unless it deletes fewer records than this
    licences: tuple[str, ...] = DEFAULT_LICENCES  # allow-list
    max_page_bytes: int = 16 * 1024 * 1024
    max_checkpoint_bytes: int = 16 * 1024
    max_proof_bytes: int = 64 * 1024
    connect_timeout: float = 5.0
    page_deadline: float = 120.0  # whole request, body included
    small_deadline: float = 15.0  # checkpoint and proofs
    min_rate: int = 20_000  # bytes/s a node must sustain after a 2 s grace
    retries: int = 2  # on connection errors and 5xx
    backoff: float = 0.25  # first retry delay in seconds, doubled each time
    workers: int | None = None  # verifying processes; None = one per CPU, 0 = verify in-process
    parallel_threshold: int = 4000  # fewer new entries in a run than this are verified in-process


@dataclass
class NodeReport:
    node_id: str
    status: str  # ok | unchanged | error | quarantined | skipped
    entries: int = 0
    accepted: int = 0
    rejected: int = 0
    deleted: int = 0
    error: str | None = None
    reason: str | None = None


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


class NodeFailure(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class _Catalogue:
    """The catalogue builder's hooks; a no-op stand-in when that module is absent."""

    def __init__(self):
        try:
            from biofed.aggregator import catalogue
        except ImportError:
            catalogue = None
        self.module = catalogue

    def __getattr__(self, name):
        if self.module is not None and hasattr(self.module, name):
            return getattr(self.module, name)
        return lambda *args, **kwargs: None


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
            catalogue = _Catalogue()
            catalogue.ensure_schema(conn)
            registry = _accept_registry(conn, registry_source, registry_keys, now)
            report = HarvestReport(registry.version)
            run = _Run(conn, catalogue, registry, settings, set(accept_mass_delete), _Reporter(progress), now)
            try:
                await run.all_nodes(report)
            finally:
                run.close()
            catalogue.finalise(conn)
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
                      accepted=report.accepted, rejected=report.rejected, deleted=report.deleted, error=report.error)

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

    def close(self) -> None:
        self.reporter.close()
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    async def all_nodes(self, report: HarvestReport) -> None:
        nodes = self.registry.nodes()
        self._sync_nodes(nodes)
        semaphore = asyncio.Semaphore(self.settings.concurrency)

        async def one(node):
            async with semaphore:
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
        with state.transaction(self.conn):
            run_id = self.conn.execute(
                "INSERT INTO harvest_runs (node_id, started, status, error) VALUES (?, ?, 'error', 'interrupted')",
                (node_id, started)).lastrowid
        report = NodeReport(node_id, "ok")
        try:
            await self._harvest_node(node, run_id, report)
        except (NodeFailure, FetchError, PageError, checkpoints.CheckpointError) as exc:
            report.status, report.error, report.reason = "error", str(exc), getattr(exc, "reason", "error")
        except Exception as exc:  # a bug or an unforeseen answer must not stop the other nodes
            report.status, report.error, report.reason = "error", f"internal error: {exc!r}", "internal"
        self._finish(node, run_id, started, report)
        return report

    def _finish(self, node: dict, run_id: int, started: str, report: NodeReport) -> None:
        now = state.utc_now()
        node_id = node["id"]
        with state.transaction(self.conn):
            self.conn.execute(
                "UPDATE harvest_runs SET finished = ?, status = ?, entries = ?, accepted = ?, rejected = ?, deleted = ?, error = ?"
                " WHERE id = ?",
                (now, report.status, report.entries, report.accepted, report.rejected, report.deleted, report.error, run_id))
            if report.status in ("ok", "unchanged"):
                self.conn.execute(
                    "UPDATE nodes SET health = 'ok', error = NULL, last_attempt = ?, last_success = ?, stale_since = NULL,"
                    " mass_delete_pending = 0 WHERE id = ?", (now, now, node_id))
                if self.conn.execute("SELECT 1 FROM records WHERE node_id = ? AND stale = 1 LIMIT 1", (node_id,)).fetchone():
                    self.conn.execute("UPDATE records SET stale = 0, stale_since = NULL WHERE node_id = ? AND stale = 1", (node_id,))
                    self.catalogue.set_node_stale(self.conn, node_id, None)
            else:
                health = "quarantined" if report.status == "quarantined" else "error"
                self.conn.execute(
                    "UPDATE nodes SET health = ?, error = ?, last_attempt = ?, mass_delete_pending = ?,"
                    " stale_since = COALESCE(stale_since, ?) WHERE id = ?",
                    (health, report.error, now, 1 if report.status == "quarantined" else 0, now, node_id))
                self._mark_stale(node_id, now)

    def _mark_stale(self, node_id: str, since: str) -> None:
        self.conn.execute("UPDATE records SET stale = 1, stale_since = ? WHERE node_id = ? AND stale = 0", (since, node_id))
        row = self.conn.execute("SELECT stale_since FROM nodes WHERE id = ?", (node_id,)).fetchone()
        self.catalogue.set_node_stale(self.conn, node_id, (row["stale_since"] if row and row["stale_since"] else since))

    async def _harvest_node(self, node: dict, run_id: int, report: NodeReport) -> None:
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
        row = state.node_row(self.conn, node_id)
        st = state.node_state_row(self.conn, node_id)
        async with NodeClient(base_url, connect_timeout=s.connect_timeout, retries=s.retries, backoff=s.backoff) as client:
            cp = await self._checkpoint(client, node_id, keys, row, st)
            cursor = row["cursor"]
            frontier = CompactRange.from_bytes(st["frontier_size"], st["frontier"] or b"")
            if frontier.size != cursor:
                raise NodeFailure("state", f"stored frontier size {frontier.size} differs from cursor {cursor}; reset the node")
            if cp.size == cursor:
                if frontier.root() != cp.root:
                    raise NodeFailure("rewritten", f"checkpoint of size {cp.size} has a different root than the verified log: history was rewritten")
                report.status = "unchanged"
                with state.transaction(self.conn):
                    self._set_checkpoint(node_id, cp)
                return
            self.reporter.start(node_id, cp.size - cursor)
            await self._pages(client, node, keys, run_id, cp, cursor, frontier, report)

    async def _checkpoint(self, client: NodeClient, node_id: str, keys: list[NodeKey], row, st) -> checkpoints.Checkpoint:
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
        cp = checkpoints.verify(note, node_id, trusted, origin=f"biofed/node/{node_id}")
        checkpoints.check_fresh(cp, self.settings.max_age, self.now)
        if cp.size < row["tree_size"] or cp.size < row["cursor"]:
            raise checkpoints.CheckpointError(
                "rollback", f"checkpoint size {cp.size} is smaller than the verified size {max(row['tree_size'], row['cursor'])}: rollback")
        if row["root_hash"] and cp.size == row["tree_size"] and cp.root.hex() != row["root_hash"]:
            raise checkpoints.CheckpointError("rewritten", f"checkpoint of size {cp.size} has a different root than the one verified before: history was rewritten")
        etag = response.headers.get("etag") if response.status == 200 else st["checkpoint_etag"]
        with state.transaction(self.conn):
            self.conn.execute("UPDATE node_state SET checkpoint_etag = ?, checkpoint_note = ? WHERE node_id = ?",
                              (etag, note.decode("utf-8"), node_id))
        return cp

    def _set_checkpoint(self, node_id: str, cp: checkpoints.Checkpoint) -> None:
        self.conn.execute("UPDATE nodes SET tree_size = ?, root_hash = ?, checkpoint_timestamp = ? WHERE id = ?",
                          (cp.size, cp.root.hex(), cp.timestamp, node_id))

    async def _verify(self, node_id, keys, body, after, pending: int):
        s = self.settings
        args = (node_id, keys, body, after, s.max_page_bytes)
        workers = s.workers if s.workers is not None else (os.cpu_count() or 1)
        if workers <= 0 or pending < s.parallel_threshold:
            return check_page(*args)
        if self.pool is None:
            # fork is cheapest; when threads are running (e.g. servers in tests) forkserver is the safe choice.
            method = "fork" if threading.active_count() == 1 else "forkserver"
            self.pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))
        return await asyncio.get_running_loop().run_in_executor(self.pool, check_page, *args)

    async def _pages(self, client, node, keys, run_id, cp, cursor, frontier, report) -> None:
        s = self.settings
        node_id = node["id"]
        held_count = state.node_row(self.conn, node_id)["records"]
        deleting: set[str] = set()
        failure: Exception | None = None
        with tempfile.TemporaryFile(prefix="biofed-harvest-") as spool:
            pages = 0
            position = cursor
            while position < cp.size:
                try:
                    end, entries = await self._page(client, node_id, keys, cp, position, frontier)
                except (FetchError, PageError, NodeFailure) as exc:
                    failure = exc
                    break
                for entry in entries:
                    if entry.type == "Tombstone" and entry.reason is None and entry.record_id not in deleting:
                        if self.conn.execute("SELECT 1 FROM records WHERE id = ? AND node_id = ?", (entry.record_id, node_id)).fetchone():
                            deleting.add(entry.record_id)
                        # (a tombstone for an id put earlier in this run is not a loss of held data)
                pickle.dump((end, frontier.size, frontier.to_bytes(), entries), spool, protocol=pickle.HIGHEST_PROTOCOL)
                pages += 1
                position = end
                self.reporter.advance(node_id, len(entries))
            if (len(deleting) >= s.mass_delete_min and len(deleting) > s.max_delete_share * held_count
                    and node_id not in self.accept):
                share = len(deleting) / held_count if held_count else 1.0
                report.status, report.reason = "quarantined", "mass-delete"
                report.error = (f"this run would delete {len(deleting)} of {held_count} records ({share:.0%}, more than"
                                f" {s.max_delete_share:.0%}): quarantined; accept with --accept-mass-delete {node_id}")
                return
            spool.seek(0)
            for _ in range(pages):
                end, size, frontier_bytes, entries = pickle.load(spool)
                with state.transaction(self.conn):
                    self._commit_page(node, run_id, entries, end, size, frontier_bytes, cp, report)
        if failure is not None:
            raise failure

    async def _page(self, client, node_id, keys, cp, position, frontier):
        s = self.settings
        limit = min(s.page_size, cp.size - position)
        response = await client.get(f"/log?after={position}&limit={limit}", FetchLimits(s.max_page_bytes, s.page_deadline, s.min_rate))
        if response.status != 200:
            raise FetchError("http-status", f"GET /log?after={position} answered HTTP {response.status}")
        _claimed, entries = await self._verify(node_id, keys, response.body, position, cp.size - position)
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
        held: dict[str, tuple[int, str]] = {}
        tombs: dict[str, int] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(f"SELECT id, version, signed_json FROM records WHERE id IN ({marks})", chunk):
                held[row["id"]] = (row["version"], row["signed_json"])
            for row in conn.execute(f"SELECT id, version FROM tombstones WHERE id IN ({marks})", chunk):
                tombs[row["id"]] = row["version"]
        rejections, changes = [], []
        accepted = rejected = deleted = 0
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
            if entry.type == "Tombstone":
                conn.execute("INSERT OR REPLACE INTO tombstones (id, node_id, version, deleted_at) VALUES (?, ?, ?, ?)",
                             (rid, node_id, entry.version, now))
                tombs[rid] = entry.version
                if rid in held:
                    conn.execute("DELETE FROM records WHERE id = ?", (rid,))
                    self.catalogue.delete_record(conn, rid)
                    del held[rid]
                    changes.append((rid, node_id, "delete", entry.version, now))
                    deleted += 1
                continue
            leaf_text = entry.leaf.decode("utf-8")
            conn.execute(
                "INSERT OR REPLACE INTO records (id, node_id, type, version, date_modified, verified_at, signed_json,"
                " record_url, stale, stale_since) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, NULL)",
                (rid, node_id, entry.type, entry.version, entry.date_modified, now, leaf_text, f"{base_url}/records/{rid}"))
            if rid in tombs:
                conn.execute("DELETE FROM tombstones WHERE id = ?", (rid,))
                del tombs[rid]
            if entry.type in CONTENT_TYPES:
                self.catalogue.upsert_record(conn, entry.record, node=cat_node, verified_at=now)
            else:  # key statements: verified and kept; the registry stays the source of truth for keys
                log_event("key-statement", node=node_id, id=rid, type=entry.type)
            held[rid] = (entry.version, leaf_text)
            changes.append((rid, node_id, "put", entry.version, now))
            accepted += 1
        if rejections:
            conn.executemany("INSERT INTO rejections (run_id, node_id, seq, record_id, reason, message, at) VALUES (?, ?, ?, ?, ?, ?, ?)", rejections)
        if changes:
            conn.executemany("INSERT INTO changes (record_id, node_id, op, version, at) VALUES (?, ?, ?, ?, ?)", changes)
        conn.execute("UPDATE node_state SET frontier = ?, frontier_size = ? WHERE node_id = ?", (frontier_bytes, size, node_id))
        placeholders = ",".join("?" * len(CONTENT_TYPES))
        count = conn.execute(f"SELECT count(*) FROM records WHERE node_id = ? AND type IN ({placeholders})", (node_id, *CONTENT_TYPES)).fetchone()[0]
        conn.execute("UPDATE nodes SET cursor = ?, records = ? WHERE id = ?", (end, count, node_id))
        if end == cp.size:
            self._set_checkpoint(node_id, cp)
        report.entries += len(entries)
        report.accepted += accepted
        report.rejected += rejected
        report.deleted += deleted
        conn.execute("UPDATE harvest_runs SET entries = ?, accepted = ?, rejected = ?, deleted = ? WHERE id = ?",
                     (report.entries, report.accepted, report.rejected, report.deleted, run_id))
