"""Publishing a snapshot while serving: the server picks up the new file without a restart."""

import asyncio
import sqlite3

import httpx
import pytest
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
