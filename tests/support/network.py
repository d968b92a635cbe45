"""A small network for harvest tests: real node apps and hostile log servers on loopback, a registry file, a catalogue."""

from __future__ import annotations

import json
import sqlite3

from biofed.aggregator.harvest import HarvestSettings, harvest
from biofed.node.app import create_app
from biofed.node.store import init_node
from biofed.trust.keys import SigningKey
from support.hostile import (
    LogServer,
    actor,
    free_port,
    key_entry,
    registry_document,
    registry_node,
    serve,
    sign_record,
)

FAST = HarvestSettings(retries=1, backoff=0.05, connect_timeout=2.0, page_deadline=5.0, small_deadline=3.0,
                       min_rate=2_000, max_page_bytes=1024 * 1024, workers=0)


def content(local: str, name: str | None = None) -> dict:
    return {"id": f"actor/{local}", "type": "Actor", "names": [{"value": name or f"Actor {local}", "preferred": True}],
            "actorType": "sme", "country": "DE"}


class Network:
    """Real nodes and hostile servers, a registry file, a catalogue path."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.registry_key = SigningKey.generate()
        self.registry_path = tmp_path / "registry.json"
        self.db = tmp_path / "catalogue.db"
        self.entries: dict[str, dict] = {}
        self.servers = []
        self.version = 0

    def real_node(self, node_id: str, count: int = 5):
        port = free_port()
        node, _ = init_node(self.tmp / node_id, node_id=node_id, name=node_id.title(), country="DE",
                            base_url=f"http://127.0.0.1:{port}")
        if count:
            node.put_many([content(f"a{i}") for i in range(count)])
        served = serve(create_app(self.tmp / node_id, checkpoint_interval=3600), port=port)
        self.servers.append(served)
        self.entries[node_id] = registry_node(node_id, served.url, node.keys())
        return node, served

    def log_server(self, node_id: str, leaves: list[bytes], key: SigningKey, keys: list[dict] | None = None, **kw):
        server = LogServer(node_id, key, list(leaves), **kw)
        served = serve(server.app())
        self.servers.append(served)
        self.entries[node_id] = registry_node(node_id, served.url, keys or [key_entry(key)])
        return server, served

    def publish(self, **kw):
        self.version += 1
        doc = registry_document(self.registry_key, list(self.entries.values()), version=kw.pop("version", self.version), **kw)
        self.registry_path.write_bytes(json.dumps(doc).encode())
        return doc

    def harvest(self, settings=FAST, **kw):
        if not kw.pop("keep_registry", False):
            self.publish()
        return harvest(self.registry_path, self.db, settings=settings, **kw)

    def query(self, sql, params=()):
        conn = sqlite3.connect(self.db)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(sql, params).fetchall()]
        finally:
            conn.close()

    def node_row(self, node_id):
        return self.query("SELECT * FROM nodes WHERE id = ?", (node_id,))[0]

    def records(self, node_id):
        return {r["id"]: r for r in self.query("SELECT * FROM records WHERE node_id = ?", (node_id,))}

    def rejections(self, node_id):
        return [(r["record_id"], r["reason"]) for r in self.query("SELECT * FROM rejections WHERE node_id = ? ORDER BY id", (node_id,))]

    def close(self):
        for served in self.servers:
            served.stop()


def signed_leaves(node_id, key, count, start=0):
    return [sign_record(actor(node_id, f"h{i}"), key, node_id) for i in range(start, start + count)]


