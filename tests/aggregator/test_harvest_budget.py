"""What one node may cost a run: its budget, the request deadline, and which failures are retried.

Real hostile servers on loopback (tests/support/hostile.py): a node trickling many
one-entry pages, one sending more bytes than its budget, one that accepts a
request and never answers. Budgets and deadlines are small so each test takes
seconds; the defaults are checked by computation, not by waiting for them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re

import pytest
from support import REPOSITORY
from support.network import FAST, Network, signed_leaves

from biofed.aggregator import fetch
from biofed.aggregator.harvest import HarvestSettings
from biofed.trust.keys import SigningKey

DOCS = REPOSITORY / "docs"


@pytest.fixture
def net(tmp_path):
    network = Network(tmp_path)
    yield network
    network.close()


def log_starts(requests: list[str]) -> list[int]:
    return [int(u.split("after=")[1].split("&")[0]) for u in requests if "/log?" in u]


def assert_committed_prefix(net, node_id: str, leaves: list[bytes], cursor: int) -> None:
    """Exactly the first `cursor` entries are held, byte for byte, and the Merkle frontier ends there too."""
    records = net.records(node_id)
    assert sorted(r["signed_json"].encode() for r in records.values()) == sorted(leaves[:cursor])
    state = net.query("SELECT frontier_size FROM node_state WHERE node_id = ?", (node_id,))[0]
    assert state["frontier_size"] == cursor


def test_trickling_node_is_cut_at_its_budget_then_resumed(net):
    """Many one-entry pages, each sent above the minimum rate: the node costs its budget, not the run."""
    settings = dataclasses.replace(FAST, node_seconds=2.0)
    net.real_node("alpha", 5)
    key = SigningKey.generate()
    leaves = signed_leaves("trickle", key, 30)
    # ~700-byte pages at 2,500 B/s: ~0.3 s each, every one above the 2,000 B/s minimum rate.
    server, _ = net.log_server("trickle", leaves, key, page_entries=1, trickle_rate=2_500)

    report = net.harvest(settings)
    assert report.nodes["alpha"].status == "ok" and len(net.records("alpha")) == 5
    assert net.node_row("alpha")["health"] == "ok"
    slow = report.nodes["trickle"]
    assert (slow.status, slow.reason) == ("slow", "budget"), slow
    row = net.node_row("trickle")
    cursor = row["cursor"]
    assert 1 <= cursor < len(leaves), cursor
    assert re.search(r"used its budget for this run: 2\.\d s of 2 s waiting for its answers, [\d,]+ of 268,435,456 bytes"
                     r" received, in \d+ requests; stopped at log entry \d+ \(\d+ committed in this run\)", slow.error), slow.error
    assert f"stopped at log entry {cursor} ({cursor} committed" in slow.error
    assert (row["health"], row["error"]) == ("slow", slow.error)
    assert slow.seconds < 2.0 + 1.0, slow.seconds  # the budget, plus at most our own verifying and writing
    assert_committed_prefix(net, "trickle", leaves, cursor)
    assert all(r["stale"] == 1 for r in net.records("trickle").values())  # behind the node's checkpoint
    run = net.query("SELECT * FROM harvest_runs WHERE node_id = 'trickle' ORDER BY id DESC LIMIT 1")[0]
    assert (run["status"], run["entries"], run["accepted"]) == ("slow", cursor, cursor)

    # The next run continues from the cursor: nothing fetched twice, more committed.
    seen = len(server.requests)
    again = net.harvest(settings)
    assert again.nodes["trickle"].status == "slow" and again.nodes["alpha"].status == "unchanged"
    assert log_starts(server.requests[seen:])[0] == cursor
    resumed = net.node_row("trickle")["cursor"]
    assert cursor < resumed < len(leaves)
    assert_committed_prefix(net, "trickle", leaves, resumed)

    # At full speed the rest arrives within the budget: ok, complete, no longer stale.
    server.trickle_rate = None
    done = net.harvest(settings)
    assert done.nodes["trickle"].status == "ok", done.nodes["trickle"]
    row = net.node_row("trickle")
    assert (row["health"], row["cursor"], row["tree_size"], row["error"]) == ("ok", len(leaves), len(leaves), None)
    assert_committed_prefix(net, "trickle", leaves, len(leaves))
    assert all(r["stale"] == 0 for r in net.records("trickle").values())


def test_budget_stops_a_run_held_back_for_the_mass_deletion_check(net, monkeypatch):
    """A run long enough to be a mass deletion is spooled until complete; stopped, its verified pages are committed."""
    from biofed.aggregator.harvest import run as harvest_module

    spools = []
    real_spool = harvest_module.tempfile.TemporaryFile
    monkeypatch.setattr(harvest_module.tempfile, "TemporaryFile", lambda **kw: spools.append(kw) or real_spool(**kw))
    settings = dataclasses.replace(FAST, node_seconds=1.5)
    key = SigningKey.generate()
    leaves = signed_leaves("big", key, 10)
    server, _ = net.log_server("big", leaves, key)
    assert net.harvest(settings).nodes["big"].status == "ok"
    leaves += signed_leaves("big", key, 20, start=10)  # 20 new entries for 10 held records: spooled
    server.leaves, server.page_entries, server.trickle_rate = list(leaves), 1, 2_500
    report = net.harvest(settings)
    assert len(spools) == 1  # this run was spooled
    assert report.nodes["big"].status == "slow", report.nodes["big"]
    cursor = net.node_row("big")["cursor"]
    assert 10 < cursor < len(leaves)
    assert_committed_prefix(net, "big", leaves, cursor)
    assert net.node_row("big")["mass_delete_pending"] == 0


def test_byte_budget_stops_the_node_at_a_committed_page(net):
    settings = dataclasses.replace(FAST, node_bytes=6_000)
    key = SigningKey.generate()
    leaves = signed_leaves("greedy", key, 10)
    net.real_node("alpha", 3)
    net.log_server("greedy", leaves, key, page_entries=1)
    report = net.harvest(settings)
    greedy = report.nodes["greedy"]
    assert greedy.status == "slow" and "of 6,000 bytes received" in greedy.error, greedy
    cursor = net.node_row("greedy")["cursor"]
    assert 1 <= cursor < len(leaves)
    assert_committed_prefix(net, "greedy", leaves, cursor)
    assert report.nodes["alpha"].status == "ok" and len(net.records("alpha")) == 3
    assert not report.ok  # a node that did not finish is reported (exit status 1)
    again = net.harvest(settings)
    assert again.nodes["greedy"].status in ("slow", "ok")
    assert net.node_row("greedy")["cursor"] > cursor


@pytest.mark.parametrize("limit,words", [
    ({"page_deadline": 1.0, "connect_timeout": 5.0}, "did not answer completely within 1 s"),  # the request's deadline
    ({"page_deadline": 5.0, "connect_timeout": 0.25}, "timed out"),  # the client's read timeout (2 x connect)
])
def test_a_timeout_is_not_retried(net, limit, words):
    settings = dataclasses.replace(FAST, retries=3, backoff=0.05, **limit)
    key = SigningKey.generate()
    server, _ = net.log_server("mute", signed_leaves("mute", key, 3), key, mode="silent-log")
    report = net.harvest(settings)
    mute = report.nodes["mute"]
    assert mute.status == "error" and words in mute.error, mute
    assert len(log_starts(server.requests)) == 1, server.requests  # one attempt, although 3 retries are allowed
    assert mute.seconds < min(limit["page_deadline"], 2 * limit["connect_timeout"]) + 0.75, mute.seconds


def test_5xx_is_retried_within_the_deadline(net):
    settings = dataclasses.replace(FAST, retries=3, backoff=0.05)
    key = SigningKey.generate()
    server, _ = net.log_server("flaky", signed_leaves("flaky", key, 2), key, mode="500")
    report = net.harvest(settings)
    assert report.nodes["flaky"].status == "error" and "HTTP 500" in report.nodes["flaky"].error
    assert server.requests.count("/checkpoint") == 4  # the first attempt and 3 retries
    # A back-off that would pass the deadline ends the request at the deadline.
    server.requests.clear()
    slow_retries = dataclasses.replace(settings, backoff=0.6, small_deadline=1.0)
    late = net.harvest(slow_retries).nodes["flaky"]
    assert late.status == "error" and "within 1 s" in late.error and late.seconds < 1.0 + 0.75, late
    assert server.requests.count("/checkpoint") == 2  # at 0 s and 0.6 s; the next would start at 1.8 s


def test_silent_checkpoint_costs_at_most_the_deadline(net):
    """Connection accepted, request read, no answer: the node's harvest ends at the deadline."""
    # A read timeout of 10 s per attempt and 3 retries: before, 4 x 10 s; now the deadline bounds it all.
    settings = dataclasses.replace(FAST, small_deadline=1.0, connect_timeout=5.0, retries=3, backoff=0.05)
    net.real_node("alpha", 2)
    key = SigningKey.generate()
    server, _ = net.log_server("silent", signed_leaves("silent", key, 2), key, mode="silent")
    report = net.harvest(settings)
    silent = report.nodes["silent"]
    assert silent.status == "error" and "/checkpoint did not answer completely within 1 s" in silent.error, silent
    assert 1.0 <= silent.seconds < 1.0 + 0.75, silent.seconds
    assert server.requests == ["/checkpoint"]
    assert report.nodes["alpha"].status == "ok"
    assert net.node_row("silent")["health"] == "error"


def test_default_silent_checkpoint_bound_is_the_documented_deadline():
    """Computed from the defaults, not waited for: a silent /checkpoint costs at most 15 s."""
    settings = HarvestSettings()
    documented = re.search(r"\| `small_deadline` \| (\d+) s \|", (DOCS / "aggregator.md").read_text())
    assert documented and float(documented.group(1)) == settings.small_deadline == 15.0

    async def read_timeout():
        client = fetch.shared_client(settings.connect_timeout)
        try:
            return client.timeout.read
        finally:
            await client.aclose()

    per_attempt = asyncio.run(read_timeout())  # what cuts one attempt at a silent node
    attempts = 1 + settings.retries if "timeout" in fetch.RETRIED else 1
    backoffs = sum(settings.backoff * 2 ** i for i in range(attempts - 1))
    # Retrying timeouts, as before: 3 x 10 s + 0.75 s = 30.75 s, the 31 s measured. Now one attempt,
    # and get() puts the deadline over every attempt (the silent test above measures that it holds).
    assert attempts * per_attempt + backoffs == per_attempt == 10.0
    assert min(settings.small_deadline, attempts * per_attempt + backoffs) <= 15.0
