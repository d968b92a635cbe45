"""Publishing a snapshot while serving: the server picks up the new file without a restart."""

import asyncio
import json
import re
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest
from support.hostile import free_port
from support.catalogue_sample import build_sample_catalogue

from biofed.aggregator.publish import inspect_path_for, publish
from biofed.aggregator.serve import ReloadOnPublish, make_datasette
from biofed.errors import BiofedError


def actor_count(client) -> int:
    response = asyncio.run(client.get("http://catalogue/catalogue/actors.json?_size=1"))
    assert response.status_code == 200, response.text
    return response.json()["filtered_table_rows_count"]


def test_publish_then_serve_then_republish(tmp_path):
    harvested = tmp_path / "catalogue.db"
    build_sample_catalogue(harvested)
    public = publish(harvested, tmp_path / "catalogue-public.db")
    assert inspect_path_for(public).exists() and not list(tmp_path.glob("*.tmp*"))

    ds = make_datasette(public)
    app = ReloadOnPublish(ds, public, interval=0)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    before = actor_count(client)
    assert before > 0

    with sqlite3.connect(harvested) as conn:  # the next harvest removes one actor
        conn.execute("DELETE FROM actors WHERE id = (SELECT min(id) FROM actors)")
    conn.close()
    assert actor_count(client) == before  # nothing published yet: the old snapshot is served
    publish(harvested, public)
    assert actor_count(client) == before - 1


def test_publish_refuses_to_overwrite_the_harvested_file(tmp_path):
    harvested = tmp_path / "catalogue.db"
    build_sample_catalogue(harvested)
    with pytest.raises(BiofedError, match="another file"):
        publish(harvested, harvested)
    with pytest.raises(BiofedError, match="no catalogue database"):
        publish(tmp_path / "missing.db", tmp_path / "p.db")


def _datasette_replica(folder, port):
    """`datasette serve FOLDER` (configuration directory mode) in its own process, as a replica runs it."""
    process = subprocess.Popen([sys.executable, "-m", "datasette", "serve", str(folder), "--static",
                                f"biofed-static:{folder / 'biofed-static'}", "--cors", "--host", "127.0.0.1",
                                "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"datasette exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/-/versions.json", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("datasette did not start")


def _visible_text(html: str) -> str:
    """A page's text without its tags and the absolute host (what a reader sees, wherever it is served)."""
    return " ".join(re.sub(r"<[^>]+>", " ", html.replace("http://catalogue.example", "").replace("http://localhost", "")).split())


def test_datasette_files_serve_replicas_with_a_cache_lifetime_per_page_kind(tmp_path):
    harvested = tmp_path / "harvest" / "catalogue.db"
    harvested.parent.mkdir()
    build_sample_catalogue(harvested)
    site = tmp_path / "site"
    site.mkdir()
    with pytest.raises(BiofedError, match="must be named catalogue.db"):
        publish(harvested, site / "public.db", datasette_files=True)
    publish(harvested, site / "catalogue.db", datasette_files=True)
    assert {p.name for p in site.iterdir()} >= {"catalogue.db", "inspect-data.json", "metadata.yml", "settings.json",
                                                "plugins", "templates", "biofed-static"}
    assert not list(site.rglob("*.tmp"))
    inspect = json.loads((site / "inspect-data.json").read_text())
    replicas = [_datasette_replica(site, free_port()) for _ in range(2)]
    try:
        urls = [f"http://127.0.0.1:{r.args[r.args.index('--port') + 1]}" for r in replicas]
        databases = httpx.get(urls[0] + "/-/databases.json").json()
        (catalogue,) = [d for d in databases if d["name"] == "catalogue"]
        # Immutable, with the published inspect data: no count(*) per request, and the hash names the content.
        assert catalogue["is_mutable"] is False and catalogue["hash"] == inspect["catalogue"]["hash"]
        plugins = {p["name"] for p in httpx.get(urls[0] + "/-/plugins.json").json()}
        assert {"biofed_catalogue.py", "biofed_people.py", "cache_headers.py", "csv_guard.py"} <= plugins, plugins
        # The same pages as `biofed aggregator serve`: BioFed's templates, their stylesheet, the front door.
        served = make_datasette(site / "catalogue.db")
        own = asyncio.run(served.client.get("/"))
        front = httpx.get(urls[0] + "/", headers={"Host": "catalogue.example"})
        assert front.status_code == own.status_code == 200 and "/biofed-static/biofed.css" in front.text
        assert _visible_text(front.text) == _visible_text(own.text)
        row = "/catalogue/actors/bioregio-stern~2Factor~2Fcurevac"
        pages = {  # path: the Cache-Control a CDN in front of the replicas must see
            "/": "max-age=300",  # the front door: had none
            "/catalogue": "max-age=300",
            "/catalogue/actors?_facet=country": "max-age=300",
            "/catalogue/actors.json?_facet=country&_facet=actor_type": "max-age=300",
            row: "max-age=300",
            row + ".json": "max-age=300",
            "/-/biofed/changes?limit=2": "public, max-age=31536000, immutable",  # a full feed page never changes
            "/-/biofed/changes": None,  # the last page grows with the next snapshot: not cached at all
            "/-/biofed/records.jsonl.gz": "max-age=300",
            "/biofed-static/biofed.css": "max-age=300",
        }
        for path, expected in pages.items():
            # Behind the proxy every replica sees the public host name (absolute links are built from it).
            answers = [httpx.get(url + path, headers={"Host": "catalogue.example"}) for url in urls]
            for answer in answers:
                assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
                assert answer.headers.get("cache-control") == expected, (path, answer.headers.get("cache-control"))
            if path.startswith("/-/biofed/"):
                assert answers[0].content == answers[1].content, path  # replicas are interchangeable
            elif path.split("?")[0].endswith(".json"):  # the same, but for the time each took
                same = [{k: v for k, v in a.json().items() if k != "query_ms"} for a in answers]
                assert same[0] == same[1], path
        missing = httpx.get(urls[0] + "/catalogue/no_such_table")
        assert missing.status_code == 404 and "max-age=300" not in missing.headers.get("cache-control", "")
    finally:
        for replica in replicas:
            replica.kill()
            replica.wait()
