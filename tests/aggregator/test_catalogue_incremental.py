"""An incremental finalise (touched projects, maintained profile_counts) equals a full recompute."""

from __future__ import annotations

import random
import sqlite3

from biofed.aggregator import catalogue

NODE = {"id": "n", "name": "N", "licence": "CC-BY-4.0", "base_url": "https://n.example"}
REGIONS = ["DE11", "DE14", "FR10", "DK01", None]
SECTORS = ["red-biotech", "medtech", "pharma", "diagnostics"]
STAGES = ["training", "production", "research-development"]


def _actor(rng: random.Random, i: int, version: int) -> dict:
    region = rng.choice(REGIONS)
    record = {"id": f"n/actor/{i}", "type": "Actor", "version": version,
              "names": [{"value": f"Actor {i} v{version}", "preferred": True}],
              "actorType": rng.choice(["sme", "university"]), "country": region[:2] if region else "DE",
              "sectors": rng.sample(SECTORS, rng.randint(0, 3)), "valueChainStages": rng.sample(STAGES, rng.randint(0, 2)),
              "identifiers": {}}
    if region:
        record["region"] = region
    if rng.random() < 0.5:
        record["identifiers"]["ror"] = f"https://ror.org/0{rng.randint(0, 5)}"
    if rng.random() < 0.5:
        record["identifiers"]["pic"] = str(999000000 + rng.randint(0, 5))
    return record


def _project(rng: random.Random, i: int, version: int, actors: int) -> dict:
    partners = []
    for _ in range(rng.randint(1, 4)):
        partner = {"name": "P", "country": rng.choice(["DE", "FR"]), "role": rng.choice(["coordinator", "partner"])}
        if rng.random() < 0.4:
            partner["actor"] = f"n/actor/{rng.randrange(actors)}"
        if rng.random() < 0.4:
            partner["identifiers"] = {"ror": f"https://ror.org/0{rng.randint(0, 5)}"}
        elif rng.random() < 0.4:
            partner["identifiers"] = {"pic": str(999000000 + rng.randint(0, 5))}
        partners.append(partner)
    return {"id": f"n/project/{i}", "type": "Project", "version": version, "title": f"Project {i}", "partners": partners}


def _snapshot(conn) -> dict:
    return {
        "region_profiles": conn.execute("SELECT * FROM region_profiles ORDER BY region, dimension, value").fetchall(),
        "participations": conn.execute("SELECT * FROM participations ORDER BY project_id, position").fetchall(),
        "projects": conn.execute("SELECT id, regions FROM projects ORDER BY id").fetchall(),
    }


def _full(conn) -> dict:
    """Forget the incremental state and recompute everything (profile_counts rebuilt from the actor tables)."""
    counts = conn.execute("SELECT * FROM profile_counts WHERE actors != 0 ORDER BY 1, 2, 3").fetchall()
    conn.execute("DELETE FROM catalogue_state WHERE name = 'incremental'")
    catalogue.finalise(conn)
    assert conn.execute("SELECT * FROM profile_counts ORDER BY 1, 2, 3").fetchall() == counts
    return _snapshot(conn)


def test_incremental_finalise_equals_a_full_recompute():
    rng = random.Random(7)
    conn = sqlite3.connect(":memory:", isolation_level=None)
    catalogue.ensure_schema(conn)
    versions: dict[str, int] = {}
    actors, projects = 30, 15
    for i in range(actors):
        versions[f"a{i}"] = 1
        catalogue.upsert_record(conn, _actor(rng, i, 1), node=NODE, verified_at="2026-01-01T00:00:00Z")
    for i in range(projects):
        catalogue.upsert_record(conn, _project(rng, i, 1, actors), node=NODE, verified_at="2026-01-01T00:00:00Z")
    catalogue.finalise(conn)  # the first finalise is a full one
    assert conn.execute("SELECT value FROM catalogue_state WHERE name = 'incremental'").fetchone() == (1,)
    assert conn.execute("SELECT count(*) FROM region_profiles").fetchone()[0] > 0
    for step in range(40):
        for _ in range(rng.randint(1, 4)):
            action = rng.random()
            if action < 0.45:
                i = rng.randrange(actors)
                versions[f"a{i}"] = versions.get(f"a{i}", 0) + 1
                flats = [catalogue.flatten(_actor(rng, i, versions[f"a{i}"]))]
                catalogue.upsert_flat(conn, flats, node=NODE, verified_at=f"2026-02-{step % 28 + 1:02d}T00:00:00Z")
            elif action < 0.65:
                catalogue.delete_records(conn, [f"n/actor/{rng.randrange(actors)}"])
            elif action < 0.85:
                i = rng.randrange(projects)
                catalogue.upsert_record(conn, _project(rng, i, step + 2, actors), node=NODE, verified_at="2026-03-01T00:00:00Z")
            elif action < 0.92:
                catalogue.delete_record(conn, f"n/project/{rng.randrange(projects)}")
            else:
                catalogue.set_node_stale(conn, "n", "2026-04-01T00:00:00Z" if rng.random() < 0.5 else None)
        catalogue.finalise(conn)
        incremental = _snapshot(conn)
        assert conn.execute("SELECT count(*) FROM finalise_touched").fetchone()[0] == 0
        assert _full(conn) == incremental, f"step {step}"
