"""Harvest against real nodes and real hostile servers on loopback.

In every case: nothing wrong accepted, nothing good lost, other nodes unaffected.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone

import pytest
from support.hostile import (
    LogServer,
    actor,
    key_entry,
    registry_node,
    serve,
    sign_record,
)
from support.network import FAST, content, signed_leaves

from biofed.aggregator.harvest import harvest
from biofed.aggregator.registry_source import RegistryRefused
from biofed.node.app import create_app
from biofed.trust.canonical import canonicalize
from biofed.trust.keys import SigningKey


def test_first_incremental_updates_deletes(net):
    alpha, _ = net.real_node("alpha", 5)
    beta, _ = net.real_node("beta", 3)
    report = net.harvest()
    assert {k: v.status for k, v in report.nodes.items()} == {"alpha": "ok", "beta": "ok"}
    assert len(net.records("alpha")) == 5 and len(net.records("beta")) == 3
    row = net.node_row("alpha")
    assert (row["health"], row["records"], row["cursor"], row["tree_size"]) == ("ok", 5, 5, 5)
    # The stored bytes are exactly the node's signed bytes.
    assert net.records("alpha")["alpha/actor/a1"]["signed_json"].encode() == alpha.get("alpha/actor/a1")
    assert net.query("SELECT count(*) AS n FROM actors")[0]["n"] == 8

    again = net.harvest()
    assert {k: v.status for k, v in again.nodes.items()} == {"alpha": "unchanged", "beta": "unchanged"}

    alpha.put(content("a1", "Renamed GmbH"))
    alpha.delete("alpha/actor/a2")
    alpha.put(content("a9"))
    report = net.harvest()
    assert report.nodes["alpha"].status == "ok" and report.nodes["beta"].status == "unchanged"
    assert (report.nodes["alpha"].accepted, report.nodes["alpha"].deleted) == (2, 1)
    records = net.records("alpha")
    assert set(records) == {f"alpha/actor/a{i}" for i in (0, 1, 3, 4, 9)}
    assert records["alpha/actor/a1"]["version"] == 2 and "Renamed GmbH" in records["alpha/actor/a1"]["signed_json"]
    assert net.query("SELECT count(*) AS n FROM actors WHERE node_id = 'alpha'")[0]["n"] == 5
    ops = [(r["record_id"], r["op"]) for r in net.query("SELECT * FROM changes WHERE node_id = 'alpha' ORDER BY seq")][-3:]
    assert ops == [("alpha/actor/a1", "put"), ("alpha/actor/a2", "delete"), ("alpha/actor/a9", "put")]
    assert net.rejections("alpha") == []


def test_node_down_keeps_records_stale_and_recovers(net):
    net.real_node("alpha", 3)
    _, beta_server = net.real_node("beta", 3)
    net.harvest()
    port = int(beta_server.url.rsplit(":", 1)[1])
    beta_server.stop()
    report = net.harvest()
    assert report.nodes["alpha"].status == "unchanged"
    assert report.nodes["beta"].status == "error" and "connect" in report.nodes["beta"].error
    beta = net.node_row("beta")
    assert beta["health"] == "error" and beta["stale_since"]
    assert all(r["stale"] == 1 for r in net.records("beta").values()) and len(net.records("beta")) == 3
    assert all(r["stale"] == 0 for r in net.records("alpha").values())
    assert net.query("SELECT count(*) AS n FROM actors WHERE node_id = 'beta' AND stale = 1")[0]["n"] == 3
    net.servers.append(serve(create_app(net.tmp / "beta", checkpoint_interval=3600), port=port))
    report = net.harvest()
    assert report.nodes["beta"].status == "unchanged"
    assert net.node_row("beta")["health"] == "ok" and net.node_row("beta")["stale_since"] is None
    assert all(r["stale"] == 0 for r in net.records("beta").values())


@pytest.mark.parametrize("mode,reason", [("500", "HTTP 500"), ("malformed", "duplicate key"), ("oversized", "limit"),
                                         ("slow", "slower than"), ("redirect", "outside the registered origin")])
def test_misbehaving_node(net, mode, reason):
    net.real_node("alpha", 2)
    key = SigningKey.generate()
    other = serve(LogServer("elsewhere", key, []).app())
    net.servers.append(other)
    bad, _ = net.log_server("bad", signed_leaves("bad", key, 3), key, redirect_to=other.url)
    net.harvest()
    assert len(net.records("bad")) == 3
    bad.leaves += signed_leaves("bad", key, 2, start=3)
    bad.mode = mode
    report = net.harvest()
    assert report.nodes["alpha"].status == "unchanged"
    assert report.nodes["bad"].status == "error" and reason in report.nodes["bad"].error
    row = net.node_row("bad")
    assert row["health"] == "error" and reason in row["error"] and row["cursor"] == 3
    records = net.records("bad")
    assert len(records) == 3 and all(r["stale"] == 1 for r in records.values())
    run = net.query("SELECT * FROM harvest_runs WHERE node_id = 'bad' ORDER BY id DESC LIMIT 1")[0]
    assert run["status"] == "error" and reason in run["error"]
    bad.mode = "honest"
    assert net.harvest().nodes["bad"].status == "ok" and len(net.records("bad")) == 5


def test_bad_records_rejected_good_ones_kept(net):
    """Tampered, other node's key, outside namespace, replayed version: rejected one by one."""
    key, foreign = SigningKey.generate(), SigningKey.generate()
    net.log_server("foreign", signed_leaves("foreign", foreign, 1), foreign)
    leaves = signed_leaves("bad", key, 3)
    tampered = json.loads(sign_record(actor("bad", "t"), key, "bad"))
    tampered["names"][0]["value"] = "Forged AG"
    v1 = sign_record(actor("bad", "r", 1, "Old name"), key, "bad")
    v2 = sign_record(actor("bad", "r", 2, "New name"), key, "bad")
    leaves += [
        canonicalize(tampered),
        sign_record(actor("bad", "x"), foreign, "foreign"),  # signed by another node's key
        sign_record(actor("foreign", "y"), key, "bad"),  # outside bad's namespace
        v1, v2, v1,  # the old version replayed
        v2,  # the same bytes again: harmless
    ]
    net.log_server("bad", leaves, key)
    report = net.harvest()
    assert report.nodes["bad"].status == "ok", report.nodes["bad"].error
    assert report.nodes["foreign"].status == "ok"
    assert net.rejections("bad") == [("bad/actor/t", "bad-signature"), ("bad/actor/x", "wrong-key"),
                                     ("foreign/actor/y", "namespace"), ("bad/actor/r", "replayed-version")]
    records = net.records("bad")
    assert set(records) == {"bad/actor/h0", "bad/actor/h1", "bad/actor/h2", "bad/actor/r"}
    assert records["bad/actor/r"]["version"] == 2 and "New name" in records["bad/actor/r"]["signed_json"]
    assert set(net.records("foreign")) == {"foreign/actor/h0"}


def test_truncated_and_rolled_back_log(net):
    net.real_node("alpha", 2)
    key = SigningKey.generate()
    bad, _ = net.log_server("bad", signed_leaves("bad", key, 6), key)
    net.harvest()
    bad.claimed_size = 4  # the log shrank: rollback
    report = net.harvest()
    assert report.nodes["bad"].status == "error" and "rollback" in report.nodes["bad"].error
    bad.claimed_size = 9  # the checkpoint claims entries the log does not serve
    report = net.harvest()
    assert report.nodes["bad"].status == "error" and "truncated" in report.nodes["bad"].error
    assert len(net.records("bad")) == 6 and net.node_row("bad")["cursor"] == 6
    assert report.nodes["alpha"].status == "unchanged"


def test_rewritten_log_commits_nothing(net):
    key = SigningKey.generate()
    bad, _ = net.log_server("bad", signed_leaves("bad", key, 5), key)
    net.harvest()
    before = net.records("bad")
    bad.leaves[1] = sign_record(actor("bad", "h1", 1, "Rewritten"), key, "bad")
    bad.leaves += signed_leaves("bad", key, 3, start=5)
    report = net.harvest()
    assert report.nodes["bad"].status == "error" and "rewritten" in report.nodes["bad"].error
    after = net.records("bad")
    assert set(after) == set(before) and all(after[i]["signed_json"] == before[i]["signed_json"] for i in before)
    assert net.node_row("bad")["cursor"] == 5


def test_rewritten_history_same_size(net):
    key = SigningKey.generate()
    bad, _ = net.log_server("bad", signed_leaves("bad", key, 3), key)
    net.harvest()
    bad.leaves[0] = sign_record(actor("bad", "h0", 1, "Other"), key, "bad")
    report = net.harvest()
    assert report.nodes["bad"].status == "error" and "rewritten" in report.nodes["bad"].error


def test_stale_checkpoint(net):
    key = SigningKey.generate()
    net.log_server("frozen", signed_leaves("frozen", key, 2), key, checkpoint_age=timedelta(hours=2))
    report = net.harvest()
    assert report.nodes["frozen"].status == "error" and "older than the allowed" in report.nodes["frozen"].error
    assert net.records("frozen") == {}
    relaxed = dataclasses.replace(FAST, max_age=timedelta(hours=3))
    assert net.harvest(relaxed).nodes["frozen"].status == "ok"


def test_revoked_key(net):
    old, new = SigningKey.generate(), SigningKey.generate()
    leaves = [sign_record(actor("rev", "before"), old, "rev", created="2025-01-01T00:00:00Z"),
              sign_record(actor("rev", "after"), old, "rev", created="2025-06-01T00:00:00Z"),
              sign_record(actor("rev", "fresh"), new, "rev")]
    keys = [key_entry(old, status="revoked", compromised_since="2025-03-01T00:00:00Z"), key_entry(new)]
    net.log_server("rev", leaves, new, keys=keys)
    report = net.harvest()
    assert report.nodes["rev"].status == "ok"
    assert set(net.records("rev")) == {"rev/actor/before", "rev/actor/fresh"}
    assert net.rejections("rev") == [("rev/actor/after", "revoked-key")]
    # A checkpoint signed by the compromised key is not trusted at all.
    net.log_server("rev2", leaves[:1], old, keys=[key_entry(old, status="revoked", compromised_since="2025-03-01T00:00:00Z")])
    report = net.harvest()
    assert report.nodes["rev2"].status == "error" and "not signed by a pinned key" in report.nodes["rev2"].error


def test_registry_expired_rollback_and_forged(net):
    net.real_node("alpha", 2)
    net.publish(expires=datetime.now(timezone.utc) - timedelta(minutes=1))
    with pytest.raises(RegistryRefused, match="expire"):
        harvest(net.registry_path, net.db, settings=FAST)
    assert net.query("SELECT count(*) AS n FROM records")[0]["n"] == 0
    assert "expire" in net.query("SELECT error FROM registry_state")[0]["error"]
    net.publish(version=5)
    assert harvest(net.registry_path, net.db, settings=FAST).registry_version == 5
    net.publish(version=4)
    with pytest.raises(RegistryRefused, match="rollback|lower"):
        harvest(net.registry_path, net.db, settings=FAST)
    # Trust on first use: a registry signed by another key is refused.
    net.registry_key = SigningKey.generate()
    net.publish(version=6)
    with pytest.raises(RegistryRefused):
        harvest(net.registry_path, net.db, settings=FAST)
    assert net.query("SELECT version FROM registry_state")[0]["version"] == 5


def test_mass_deletion_quarantined_then_accepted(net):
    alpha, _ = net.real_node("alpha", 20)
    net.real_node("beta", 2)
    net.harvest()
    for i in range(12):
        alpha.delete(f"alpha/actor/a{i}")
    alpha.put(content("new"))
    report = net.harvest()
    assert report.nodes["alpha"].status == "quarantined" and "12 of 20" in report.nodes["alpha"].error
    row = net.node_row("alpha")
    assert (row["health"], row["mass_delete_pending"], row["cursor"]) == ("quarantined", 1, 20)
    assert len(net.records("alpha")) == 20  # nothing of the run committed
    assert report.nodes["beta"].status == "unchanged"
    report = net.harvest(accept_mass_delete={"alpha"})
    assert report.nodes["alpha"].status == "ok" and report.nodes["alpha"].deleted == 12
    assert len(net.records("alpha")) == 9
    row = net.node_row("alpha")
    assert (row["health"], row["mass_delete_pending"], row["records"]) == ("ok", 0, 9)


def test_licence_and_suspended_node(net):
    key = SigningKey.generate()
    net.log_server("closed", signed_leaves("closed", key, 1), key)
    net.entries["closed"]["licence"] = "proprietary"
    report = net.harvest()
    assert report.nodes["closed"].status == "error" and "allow-list" in report.nodes["closed"].error
    assert net.records("closed") == {}


class ShortPageServer(LogServer):
    """An honest log that answers at most 3 entries per page, whatever the limit asked."""

    def _page(self, after, limit):
        return super()._page(after, min(limit, 3))


@pytest.mark.parametrize("workers", [0, 2])
def test_short_pages_drop_the_pages_fetched_ahead(net, workers):
    key = SigningKey.generate()
    server = ShortPageServer("short", key, signed_leaves("short", key, 20))
    served = serve(server.app())
    net.servers.append(served)
    net.entries["short"] = registry_node("short", served.url, [key_entry(key)])
    settings = dataclasses.replace(FAST, page_size=8, workers=workers, parallel_threshold=1, pages_ahead=3)
    report = net.harvest(settings)
    assert (report.nodes["short"].status, report.nodes["short"].accepted) == ("ok", 20)
    row = net.node_row("short")
    assert (row["cursor"], row["records"], row["tree_size"]) == (20, 20, 20)
    # every page asked for starts where the previous verified one ended
    starts = [int(u.split("after=")[1].split("&")[0]) for u in server.requests if "/log?" in u]
    assert set(range(0, 20, 3)) <= set(starts)


def test_unchanged_network_costs_one_transaction_and_no_finalise(net, monkeypatch):
    from biofed.aggregator import catalogue

    net.real_node("alpha", 3)
    assert net.harvest().nodes["alpha"].status == "ok"
    calls = []
    monkeypatch.setattr(catalogue, "finalise", lambda conn: calls.append(1))
    report = net.harvest(keep_registry=True)
    assert report.nodes["alpha"].status == "unchanged" and calls == []
    runs = net.query("SELECT status, finished, error FROM harvest_runs WHERE node_id = 'alpha' ORDER BY id")
    assert [r["status"] for r in runs] == ["ok", "unchanged"] and runs[-1]["finished"] and runs[-1]["error"] is None
    assert net.query("SELECT value FROM harvest_flags WHERE name = 'finalise'") == [{"value": 0}]


def test_finalise_pending_survives_a_crash(net, monkeypatch):
    """A run that changed the catalogue but died before finalise leaves the flag set; the next run finalises."""
    from biofed.aggregator import catalogue

    alpha, _ = net.real_node("alpha", 3)
    real_finalise = catalogue.finalise

    def crash(conn):
        raise RuntimeError("killed before finalise")

    monkeypatch.setattr(catalogue, "finalise", crash)
    with pytest.raises(RuntimeError):
        net.harvest()
    assert net.query("SELECT value FROM harvest_flags WHERE name = 'finalise'") == [{"value": 1}]
    calls = []
    monkeypatch.setattr(catalogue, "finalise", lambda conn: (calls.append(1), real_finalise(conn)))
    assert net.harvest(keep_registry=True).nodes["alpha"].status == "unchanged"
    assert calls == [1]
    assert net.query("SELECT value FROM harvest_flags WHERE name = 'finalise'") == [{"value": 0}]
