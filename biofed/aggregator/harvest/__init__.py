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

Modules: run (the run over all nodes: registry, concurrency, a node's
checkpoint and page loop, the mass-deletion spool, the run's bookkeeping),
pagestream (fetching and verifying a node's pages, worker processes, the
compact-range consistency check), commit (one verified page into the raw
tables and the catalogue, in the caller's one transaction), settings, reports.
"""

from biofed.aggregator.harvest.reports import HarvestReport, NodeReport
from biofed.aggregator.harvest.run import NodeFailure, harvest, harvest_async
from biofed.aggregator.harvest.settings import DEFAULT_LICENCES, HarvestSettings

__all__ = ["DEFAULT_LICENCES", "HarvestReport", "HarvestSettings", "NodeFailure", "NodeReport", "harvest",
           "harvest_async"]
