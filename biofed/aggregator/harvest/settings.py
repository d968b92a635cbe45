"""How a harvest behaves: every limit, budget and threshold of a run, in one frozen dataclass."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

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

    @property
    def worker_count(self) -> int:
        """Verifying processes this run may start (`workers`, or one per CPU)."""
        return self.workers if self.workers is not None else (os.cpu_count() or 1)
