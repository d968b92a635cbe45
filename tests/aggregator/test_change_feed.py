"""The change feed of a real harvest of a real node, served from a published snapshot.

A page served `immutable` must be the same bytes after later harvests (a CDN
keeps it forever), and a reader following the feed must still see every update.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3

from support.catalogue_sample import DELETED, build_sample_catalogue
from support.network import content

from biofed.aggregator.publish import inspect_path_for, publish
from biofed.aggregator.serve import make_datasette

IMMUTABLE = "public, max-age=31536000, immutable"


def fetch(net, paths: list[str]) -> list[tuple[bytes, dict]]:
    """Publish the harvested catalogue and GET each path from a Datasette serving the snapshot."""
    snapshot = publish(net.db, net.tmp / "catalogue-public.db")
    ds = make_datasette(snapshot, inspect_path=inspect_path_for(snapshot))
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(ds.invoke_startup())
        responses = [loop.run_until_complete(ds.client.get(path)) for path in paths]
    finally:
        loop.close()
    for response in responses:
        assert response.status_code == 200, response.text
    return [(response.content, dict(response.headers)) for response in responses]


def follow(net, cursor: int = 0) -> dict[str, str]:
    """A mirror: read the feed from the cursor on, keep the highest version of each id, drop deleted ids."""
    held: dict[str, tuple[int, str]] = {}
    url = f"/-/biofed/changes?after={cursor}&limit=2"
    while url:
        [(body, _)] = fetch(net, [url])
        page = json.loads(body)
        for entry in page["entries"]:
            if entry["op"] == "delete":
                held.pop(entry["id"], None)
            elif entry["version"] > held.get(entry["id"], (0, ""))[0]:
                assert entry["record"]["version"] == entry["version"]
                held[entry["id"]] = (entry["version"], json.dumps(entry["record"]))
        url = page["next"]
    return {record_id: signed for record_id, (_, signed) in held.items()}


def test_an_immutable_page_keeps_its_bytes_and_a_follower_sees_the_update(net):
    alpha, _ = net.real_node("alpha", 5)
    net.harvest()
    first_a1 = alpha.get("alpha/actor/a1")
    [(page, headers), (tail, tail_headers)] = fetch(net, ["/-/biofed/changes?after=0&limit=5",
                                                          "/-/biofed/changes?after=5&limit=5"])
    assert headers["cache-control"] == IMMUTABLE
    assert "cache-control" not in tail_headers and json.loads(tail)["latest"] == 5
    before = json.loads(page)
    assert [(e["op"], e["version"]) for e in before["entries"]] == [("put", 1)] * 5
    assert "latest" not in before and before["next"].endswith("?after=5&limit=5")
    assert first_a1 in page  # the node's signed bytes, verbatim

    alpha.put(content("a1", "Renamed GmbH"))
    alpha.delete("alpha/actor/a2")
    report = net.harvest()
    assert (report.nodes["alpha"].accepted, report.nodes["alpha"].deleted) == (1, 1)
    [(again, again_headers), (tail, _)] = fetch(net, ["/-/biofed/changes?after=0&limit=5",
                                                      "/-/biofed/changes?after=5&limit=5"])
    assert again == page and again_headers == headers  # byte for byte, headers too

    # The update is the next entries of the feed, with the node's new signed bytes.
    after = json.loads(tail)
    assert [(e["op"], e["id"], e["version"]) for e in after["entries"]] == [
        ("put", "alpha/actor/a1", 2), ("delete", "alpha/actor/a2", 2)]
    assert after["latest"] == 7 and after["next"] is None
    assert alpha.get("alpha/actor/a1") in tail and b"Renamed GmbH" in alpha.get("alpha/actor/a1")

    # A reader following the feed from the start ends with exactly the catalogue's records.
    mirrored = follow(net)
    held = {r["id"]: json.dumps(json.loads(r["signed_json"])) for r in net.query("SELECT * FROM records")}
    assert mirrored == held and "alpha/actor/a2" not in mirrored and "Renamed GmbH" in mirrored["alpha/actor/a1"]


def test_a_catalogue_without_kept_versions_does_not_promise_immutable_pages(tmp_path):
    """Harvested before record_versions existed: a replaced version's bytes are gone, so no page is final."""
    db = tmp_path / "catalogue.db"
    signed = build_sample_catalogue(db)["signed"]
    conn = sqlite3.connect(db)
    conn.executescript("DROP TRIGGER records_keep_replaced; DROP TRIGGER records_keep_deleted; DROP TABLE record_versions;")
    conn.close()
    ds = make_datasette(db)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(ds.invoke_startup())
        response = loop.run_until_complete(ds.client.get("/-/biofed/changes?after=0&limit=13"))
    finally:
        loop.close()
    assert response.status_code == 200 and "cache-control" not in response.headers
    entries = response.json()["entries"]
    assert [e["id"] for e in entries if e["op"] == "put" and e["record"] is None] == [DELETED]
    assert all(signed[e["id"]] in response.text for e in entries if e["record"] is not None)
