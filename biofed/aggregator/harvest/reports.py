"""What a harvest reports: per node and for the run, and its progress while it runs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from biofed.progress import log_event


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


class Reporter:
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