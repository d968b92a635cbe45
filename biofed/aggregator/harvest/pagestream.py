"""A node's log pages, fetched, verified and proved consistent with its signed checkpoint.

PageStream hands out a node's pages in order, fetching and verifying up to
`pages_ahead` of them ahead of the one being committed. Each page is parsed
under the strict profile and its records verified (proof, key, namespace,
schema) by checks.check_page, in WorkerPool's processes when there is enough
to do; then its leaves are appended to a copy of the node's Merkle frontier
(a CompactRange) and that root is proved consistent with the checkpoint before
anything from the page is used.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import concurrent.futures
import multiprocessing
import threading

from biofed.aggregator.checks import PageError, check_page
from biofed.aggregator.fetch import FetchError, FetchLimits
from biofed.aggregator.harvest.settings import HarvestSettings
from biofed.trust import jsonprofile
from biofed.trust.merkle import ProofFailed, verify_consistency


class WorkerPool:
    """The run's verifying processes, started when the first page needs them."""

    def __init__(self, workers: int):
        self.workers = workers
        self.pool: concurrent.futures.ProcessPoolExecutor | None = None

    def executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self.pool is None:
            # fork is cheapest; when threads are running (e.g. servers in tests) forkserver is the safe choice.
            method = "fork" if threading.active_count() == 1 else "forkserver"
            self.pool = concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(method))
        return self.pool

    def shutdown(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


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


class PageStream:
    """A node's verified log pages, in order, with up to `pages_ahead` fetched and verified ahead.

    Pages ahead are requested assuming each page is full (the node's page
    size); when one is shorter, everything ahead is dropped and requested again
    from where it really ended. A page is only handed out after its leaves were
    proved consistent with the signed checkpoint. The run-wide `page_slots`
    bound the pages held in memory across all nodes.
    """

    def __init__(self, settings: HarvestSettings, page_slots: asyncio.Semaphore, workers: WorkerPool, client, node_id, keys, cp,
                 cursor, frontier, parallel):
        self.settings, self.page_slots, self.workers = settings, page_slots, workers
        self.client, self.node_id, self.keys, self.cp = client, node_id, keys, cp
        self.position = self.ahead = cursor
        self.frontier = frontier
        self.parallel = parallel
        self.depth = max(1, settings.pages_ahead) if parallel else 1
        self.queue: collections.deque = collections.deque()

    def _launch(self) -> None:
        limit = min(self.settings.page_size, self.cp.size - self.ahead)
        slot = _Slot()
        task = asyncio.ensure_future(self._fetch_check(self.ahead, limit, slot))
        self.queue.append((self.ahead, task, slot))
        self.ahead += limit

    def release(self, slot: _Slot) -> None:
        if slot.held:
            slot.held = False
            self.page_slots.release()

    async def next(self):
        """(end, frontier size, frontier bytes, entries, slot) of the next page, or None at the checkpoint."""
        if self.position >= self.cp.size:
            return None
        while len(self.queue) < self.depth and self.ahead < self.cp.size:
            self._launch()
        position, task, slot = self.queue.popleft()
        try:
            _claimed, entries = await task
            end, entries = await self._prove_page(position, entries)
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

    async def _fetch_check(self, position, limit, slot):
        """One page: GET it, then parse + canonicalise + verify it (in a worker process when `parallel`)."""
        s = self.settings
        client, node_id, keys, checkpoint_time = self.client, self.node_id, self.keys, self.cp.time
        await self.page_slots.acquire()
        slot.held = True
        response = await client.get(f"/log?after={position}&limit={limit}", FetchLimits(s.max_page_bytes, s.page_deadline, s.min_rate))
        if response.status != 200:
            raise FetchError("http-status", f"GET /log?after={position} answered HTTP {response.status}")
        if self.parallel:
            # Only the raw bytes go to the worker and only leaf bytes + verdicts come back.
            return await asyncio.get_running_loop().run_in_executor(
                self.workers.executor(), _check_page_compact, node_id, keys, response.body, position, s.max_page_bytes,
                checkpoint_time)
        return check_page(node_id, keys, response.body, position, s.max_page_bytes, checkpoint_time=checkpoint_time)

    async def _prove_page(self, position, entries):
        """Append a verified page's leaves to a copy of the frontier and prove it consistent with the checkpoint."""
        s = self.settings
        client, cp, frontier = self.client, self.cp, self.frontier
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
