"""A small real catalogue for the catalogue and browser tests.

Three nodes, each with its own Ed25519 key, sign real records; the records go
through the aggregator's tables (biofed.aggregator.state) and the catalogue's
flattening exactly as a harvest would put them there.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from biofed.aggregator import catalogue, state
from biofed.trust import proofs
from biofed.trust.canonical import canonicalize
from biofed.trust.keys import SigningKey

NODES = [
    {"id": "bioregio-stern", "name": "BioRegio STERN", "country": "DE", "region": "DE1",
     "base_url": "https://bioregio-stern.example", "licence": "CC-BY-4.0", "health": "ok"},
    {"id": "genopole", "name": "Genopole", "country": "FR", "region": "FR1",
     "base_url": "https://genopole.example", "licence": "CC0-1.0", "health": "ok"},
    {"id": "dlsc", "name": "Danish Life Science Cluster", "country": "DK", "region": "DK0",
     "base_url": "https://dlsc.example", "licence": "CC-BY-4.0", "health": "stale"},
]

STALE_SINCE = "2026-11-20T08:00:00Z"
HTML_NAME = "<script>alert('x')</script> Labs GmbH"


def _actor(node, local, name, actor_type, country, region, **fields):
    return {"id": f"{node}/actor/{local}", "type": "Actor",
            "names": [{"value": name, "preferred": True}] + fields.pop("other_names", []),
            "actorType": actor_type, "country": country, "region": region, **fields}


RECORDS = [
    _actor("bioregio-stern", "uni-tuebingen", "Eberhard Karls Universität Tübingen", "university", "DE", "DE14",
           geo={"lat": "48.523300", "lon": "9.061200"}, sectors=["red-biotech", "medtech"],
           valueChainStages=["training", "research-development"], technologies=["CRISPR", "single-cell sequencing"],
           identifiers={"ror": "https://ror.org/03a1kwz48"}, address={"locality": "Tübingen"},
           description={"de": "Universität in Tübingen.", "en": "University in Tübingen."}),
    _actor("bioregio-stern", "curevac", "CureVac SE", "large-company", "DE", "DE14",
           geo={"lat": "48.536000", "lon": "9.040000"}, sectors=["red-biotech", "pharma", "biomanufacturing"],
           valueChainStages=["research-development", "production"], technologies=["mRNA"],
           identifiers={"pic": "999000001"}, address={"locality": "Tübingen"}, website="https://www.curevac.com"),
    _actor("bioregio-stern", "script-labs", HTML_NAME, "sme", "DE", "DE11",
           sectors=["diagnostics"], valueChainStages=["market-access"]),
    _actor("genopole", "genethon", "Généthon", "non-profit", "FR", "FR10",
           geo={"lat": "48.624000", "lon": "2.443000"}, sectors=["red-biotech"],
           valueChainStages=["research-development", "process-industrialisation"],
           technologies=["gene therapy", "AAV vectors"],
           description={"fr": "Laboratoire de thérapie génique.", "en": "Gene therapy laboratory."}),
    _actor("genopole", "univ-evry", "Université d'Évry-Val-d'Essonne", "university", "FR", "FR10",
           geo={"lat": "48.626000", "lon": "2.431000"}, sectors=["red-biotech"], valueChainStages=["training"]),
    _actor("dlsc", "dtu", "Danmarks Tekniske Universitet", "university", "DK", "DK01",
           other_names=[{"value": "Technical University of Denmark", "lang": "en"}],
           geo={"lat": "55.785000", "lon": "12.521000"}, sectors=["biomanufacturing", "white-biotech"],
           valueChainStages=["training", "research-development"], identifiers={"ror": "https://ror.org/04qtj9h94"}),
    _actor("dlsc", "novo", "Novo Nordisk A/S", "large-company", "DK", "DK01",
           geo={"lat": "55.731000", "lon": "12.440000"}, sectors=["pharma", "biomanufacturing"],
           valueChainStages=["production", "market-access"], identifiers={"pic": "999000002"}),
    _actor("dlsc", "closed", "Closed Biotech ApS", "sme", "DK", "DK01"),
    {"id": "genopole/project/cobioe", "type": "Project", "title": "Growing connection for bio ecosystems",
     "acronym": "COBIOE", "programme": "HORIZON-EUROPE", "startDate": "2023-03-01", "endDate": "2025-02-28",
     "totalBudgetCents": 123456789, "euContributionCents": 100000000, "topics": ["biomanufacturing"],
     "partners": [
         {"actor": "genopole/actor/genethon", "name": "Généthon", "country": "FR", "role": "coordinator"},
         {"actor": "bioregio-stern/actor/curevac", "name": "CureVac SE", "country": "DE", "role": "partner"},
         {"name": "Technical University of Denmark", "country": "DK", "role": "partner",
          "identifiers": {"ror": "04qtj9h94"}},
         {"name": "Novo Nordisk", "country": "DK", "role": "partner", "identifiers": {"pic": "999000002"}},
         {"name": "Fundación Ejemplo de Biotecnología", "country": "ES", "role": "partner"},
     ]},
    {"id": "bioregio-stern/project/local", "type": "Project", "title": "Tübingen mRNA training school",
     "programme": "REGIONAL", "startDate": "2024-01-01",
     "partners": [
         {"actor": "bioregio-stern/actor/uni-tuebingen", "name": "Universität Tübingen", "country": "DE",
          "role": "coordinator"},
         {"actor": "bioregio-stern/actor/curevac", "name": "CureVac SE", "country": "DE", "role": "partner"},
     ]},
    {"id": "bioregio-stern/offer/mrna-process", "type": "Offer", "title": "mRNA process development",
     "offerType": "service", "provider": "bioregio-stern/actor/curevac", "technologies": ["mRNA", "lipid nanoparticles"],
     "country": "DE", "region": "DE14"},
    {"id": "genopole/offer/aav", "type": "Offer", "title": "AAV vector manufacturing", "offerType": "facility",
     "provider": "genopole/actor/genethon", "technologies": ["AAV vectors", "gene therapy"], "country": "FR"},
]

DELETED = "dlsc/actor/closed"


def build_sample_catalogue(db_path: Path) -> dict:
    """Build catalogue.db at db_path; return {"keys": {node: PublicKey}, "signed": {id: bytes}}."""
    keys = {node["id"]: SigningKey.generate() for node in NODES}
    conn = sqlite3.connect(db_path, isolation_level=None)
    state.ensure_schema(conn)
    catalogue.ensure_schema(conn)
    signed_bytes = {}
    conn.execute("BEGIN")
    for node in NODES:
        conn.execute(
            "INSERT INTO nodes (id, name, country, region, base_url, licence, status, health) "
            "VALUES (?, ?, ?, ?, ?, ?, 'active', ?)",
            (node["id"], node["name"], node["country"], node["region"], node["base_url"], node["licence"],
             node["health"]),
        )
    for n, content in enumerate(RECORDS, start=1):
        node = next(node for node in NODES if content["id"].startswith(node["id"] + "/"))
        key = keys[node["id"]]
        when = f"2026-11-{10 + n:02d}T09:00:00Z"
        record = proofs.sign({**content, "version": 1, "dateModified": when}, key,
                             f"urn:biofed:{node['id']}#{key.kid}", created=when)
        data = canonicalize(record).decode("utf-8")
        signed_bytes[record["id"]] = data
        record_url = f"{node['base_url']}/records/{record['id']}"
        conn.execute(
            "INSERT INTO records (id, node_id, type, version, date_modified, verified_at, signed_json, record_url) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (record["id"], node["id"], record["type"], 1, when, when, data, record_url),
        )
        conn.execute("INSERT INTO changes (record_id, node_id, op, version, at) VALUES (?, ?, 'put', 1, ?)",
                     (record["id"], node["id"], when))
        catalogue.upsert_record(conn, record, node=node, verified_at=when)
    # A verified tombstone removes a record.
    conn.execute("DELETE FROM records WHERE id = ?", (DELETED,))
    conn.execute("INSERT INTO changes (record_id, node_id, op, version, at) VALUES (?, 'dlsc', 'delete', 2, ?)",
                 (DELETED, "2026-11-30T09:00:00Z"))
    del signed_bytes[DELETED]
    catalogue.delete_record(conn, DELETED)
    # The Danish node stopped answering: its records stay, marked stale.
    conn.execute("UPDATE nodes SET stale_since = ? WHERE id = 'dlsc'", (STALE_SINCE,))
    conn.execute("UPDATE records SET stale = 1, stale_since = ? WHERE node_id = 'dlsc'", (STALE_SINCE,))
    catalogue.set_node_stale(conn, "dlsc", STALE_SINCE)
    catalogue.finalise(conn)
    conn.execute("COMMIT")
    conn.close()
    return {"keys": {node_id: key.public for node_id, key in keys.items()}, "signed": signed_bytes}
