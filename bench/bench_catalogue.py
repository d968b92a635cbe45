"""Catalogue at scale: build time, size, and Datasette response times.

    python -m bench.bench_catalogue --rows 1000000 --repeat 31 --db cat1m.db
    python -m bench.bench_catalogue --db cat1m.db --reuse --repeat 31   # time again, no rebuild

The real sample of the tests (signed records, harvested the aggregator's way) goes
in first; then synthetic actors are written straight into the catalogue tables in batches
(signing a million records would measure the signer, not the catalogue); the
flattening path itself (upsert_record) is timed separately on real-shaped
records. Datasette then serves the file the way production does: immutable,
with an inspect file, in-process, on the published snapshot (`publish()`:
VACUUM INTO, as `biofed aggregator publish` makes it). Every request is a real one: Datasette has no
response cache, and none is added here (a CDN in front would be one).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import tempfile
import time
from array import array
from pathlib import Path

from biofed.aggregator import catalogue
from biofed.aggregator.publish import publish
from biofed.aggregator.serve import load_metadata, make_datasette

SECTORS = ["red-biotech", "green-biotech", "white-biotech", "blue-biotech", "medtech", "biomaterials",
           "digital-health", "biomanufacturing", "pharma", "diagnostics", "nutrition-health", "environment"]
STAGES = ["training", "research-development", "process-industrialisation", "production", "market-access"]
TYPES = ["sme"] * 6 + ["large-company", "company", "university", "research-institute", "hospital",
                       "cluster-organisation", "training-provider", "investor", "public-body", "non-profit"]
SYLLABLES = ["bio", "gen", "vita", "med", "cell", "thera", "nova", "zym", "lux", "pharm", "syn", "neo", "cura",
             "omni", "helix", "prot", "immu", "derm", "cardi", "neuro", "onco", "vax", "lab", "tek"]
TECHNOLOGIES = ["mRNA", "CRISPR", "AAV vectors", "cell therapy", "biosensors", "microfluidics", "fermentation",
                "bioprinting", "proteomics", "machine learning", "antibodies", "enzymes", "organoids", "vaccines"]
WORDS = ("develops manufactures researches provides platform services for clinical diagnostic industrial "
         "partners europe therapies process scale quality analytics").split()
MEDIUM_TERM = "organoid"  # put in ~1% of descriptions: a medium-frequency search term
PROGRAMMES = ["HORIZON-EUROPE", "H2020", "INTERREG", "EU4HEALTH", "REGIONAL", "IHI"]
OFFER_TYPES = ["service", "facility", "technology", "licence", "training"]
ROLES = ["partner"] * 5 + ["associated-partner", "third-party"]
# The front door's realistic questions: a technology word, and the same with a country and a stage.
FRONT_DOOR_QUERY = "cell therapy"


def synthetic_actors(n: int, regions: list[tuple[str, str, str, float, float]], seed: int = 7):
    rng = random.Random(seed)
    for i in range(n):
        code, name, country, lat, lon = rng.choice(regions)
        stem = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
        actor_type = rng.choice(TYPES)
        words = rng.sample(WORDS, 8)
        if rng.random() < 0.01:
            words.append(MEDIUM_TERM)
        technologies = rng.sample(TECHNOLOGIES, rng.randint(0, 3))
        node = f"node-{i % 40:02d}"
        yield {
            "id": f"{node}/actor/a{i:07d}", "name": f"{stem} {rng.choice(['GmbH', 'SA', 'AB', 'BV', 'SpA', 'Ltd'])}",
            "actor_type": actor_type, "country": country, "region": code, "region_name": name,
            "latitude": lat + rng.uniform(-0.3, 0.3), "longitude": lon + rng.uniform(-0.3, 0.3),
            "geo_precision": "exact", "description": " ".join(words).capitalize() + ".",
            "technologies": ", ".join(technologies) or None, "node_id": node, "licence": "CC-BY-4.0",
            "version": 1, "verified_at": "2026-11-23T12:00:00Z", "first_seen": "2026-11-23T12:00:00Z", "stale": 0,
            "record_url": f"https://{node}.example/records/{node}/actor/a{i:07d}", "status": "active",
            "_sectors": rng.sample(SECTORS, rng.randint(1, 3)), "_stages": rng.sample(STAGES, rng.randint(1, 2)),
            "_technologies": technologies,
        }


PARTICIPATION_COLUMNS = ("project_id", "position", "actor_ref", "partner_name", "partner_country", "role",
                         "contribution_eur", "ror", "pic", "stated_region")


def synthetic_projects(n: int, actor_regions, regions, seed: int = 11):
    """Projects with 2 to 12 partners (mean ~5, as in CORDIS): rows for projects and participations.

    actor_regions[i] is the index in regions of synthetic actor i. Four partners in five name
    an actor record (resolved at finalise); the others are on no node and state their region.
    """
    rng = random.Random(seed)
    actors = len(actor_regions)
    for j in range(n):
        node = f"node-{j % 40:02d}"
        project_id = f"{node}/project/p{j:06d}"
        partners = []
        for position in range(1, min(12, 2 + int(rng.expovariate(1 / 3))) + 1):
            role = "coordinator" if position == 1 else rng.choice(ROLES)
            if rng.random() < 0.8:
                i = rng.randrange(actors)
                code, _, country, _, _ = regions[actor_regions[i]]
                partners.append((project_id, position, f"node-{i % 40:02d}/actor/a{i:07d}", f"Partner {i}",
                                 country, role, None, None, None, None))
            else:
                code, _, country, _, _ = rng.choice(regions)
                partners.append((project_id, position, None, f"Unlisted partner {j}-{position}", country, role,
                                 None, None, None, code))
        countries = {p[4] for p in partners}
        acronym = "".join(rng.choice(SYLLABLES) for _ in range(2)).upper()
        words = rng.sample(WORDS, 6) + rng.sample(TECHNOLOGIES, 1)
        start = f"{rng.randint(2014, 2026)}-{rng.randint(1, 12):02d}-01"
        project = {
            "id": project_id, "title": " ".join(words).capitalize(), "acronym": acronym,
            "description": " ".join(rng.sample(WORDS, 10)), "programme": rng.choice(PROGRAMMES),
            "start_date": start, "end_date": f"{int(start[:4]) + 3}{start[4:]}",
            "total_budget_eur": rng.randint(2, 120) * 50_000.0, "eu_contribution_eur": rng.randint(1, 100) * 50_000.0,
            "coordinator_name": partners[0][3], "coordinator_country": partners[0][4], "partners": len(partners),
            "countries": len(countries), "cross_border": int(len(countries) > 1), "title_stated": 1,
            "node_id": node, "licence": "CC-BY-4.0", "version": 1, "verified_at": "2026-11-23T12:00:00Z",
            "first_seen": "2026-11-23T12:00:00Z", "stale": 0,
            "record_url": f"https://{node}.example/records/{project_id}",
        }
        yield project, partners


def synthetic_offers(n: int, actor_regions, regions, seed: int = 13):
    rng = random.Random(seed)
    for k in range(n):
        i = rng.randrange(len(actor_regions))
        node = f"node-{i % 40:02d}"
        code, _, country, _, _ = regions[actor_regions[i]]
        technologies = rng.sample(TECHNOLOGIES, rng.randint(1, 2))
        offer_id = f"{node}/offer/o{k:06d}"
        yield {
            "id": offer_id, "title": f"{technologies[0]} {rng.choice(['service', 'platform', 'facility', 'training'])}",
            "offer_type": rng.choice(OFFER_TYPES), "provider_id": f"{node}/actor/a{i:07d}",
            "description": " ".join(rng.sample(WORDS, 8)), "technologies": ", ".join(technologies),
            "sectors": ", ".join(rng.sample(SECTORS, 1)), "value_chain_stages": ", ".join(rng.sample(STAGES, 1)),
            "country": country, "region": code, "node_id": node, "licence": "CC-BY-4.0", "version": 1,
            "verified_at": "2026-11-23T12:00:00Z", "first_seen": "2026-11-23T12:00:00Z", "stale": 0,
            "record_url": f"https://{node}.example/records/{offer_id}",
        }, [(offer_id, t) for t in technologies]


def _insert_sql(table: str, columns) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def build(db_path: Path, rows: int, batch: int = 20_000, projects: int | None = None,
          offers: int | None = None) -> dict:
    """rows synthetic actors, projects (default rows / 10) with their partners, offers (default rows / 50)."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS nodes (id TEXT PRIMARY KEY, name TEXT)")
    catalogue.ensure_schema(conn)
    regions = [tuple(r) for r in conn.execute(
        "SELECT code, name, country, latitude, longitude FROM regions WHERE level = 2 AND latitude IS NOT NULL")]
    if not regions:  # no NUTS code list in this checkout
        regions = [(f"{c}{k}", f"Region {c}{k}", c, 45.0 + k, 5.0 + k) for c in ("DE", "FR", "DK", "IT", "ES")
                   for k in range(1, 9)]
    columns = [c for c in next(synthetic_actors(1, regions)) if not c.startswith("_")]
    insert_actor = f"INSERT INTO actors ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    started = time.perf_counter()
    actors, sectors, stages, techs = [], [], [], []

    def flush():
        conn.execute("BEGIN")
        conn.executemany(insert_actor, actors)
        conn.executemany("INSERT INTO actor_sectors VALUES (?, ?, ?, ?, ?)", sectors)
        conn.executemany("INSERT INTO actor_value_chain VALUES (?, ?, ?, ?, ?)", stages)
        conn.executemany("INSERT INTO actor_technologies VALUES (?, ?)", techs)
        conn.execute("COMMIT")
        for rows_ in (actors, sectors, stages, techs):
            rows_.clear()

    region_index = {r[0]: k for k, r in enumerate(regions)}
    actor_regions = array("H")
    for actor in synthetic_actors(rows, regions):
        actor_regions.append(region_index[actor["region"]])
        actors.append(tuple(actor[c] for c in columns))
        key = (actor["country"], actor["region"], actor["actor_type"])
        sectors += [(actor["id"], s, *key) for s in actor["_sectors"]]
        stages += [(actor["id"], s, *key) for s in actor["_stages"]]
        techs += [(actor["id"], t) for t in actor["_technologies"]]
        if len(actors) >= batch:
            flush()
    flush()
    project_rows, partner_rows = [], []
    project_columns = None

    def flush_projects():
        conn.execute("BEGIN")
        conn.executemany(_insert_sql("projects", project_columns), project_rows)
        conn.executemany(_insert_sql("participations", PARTICIPATION_COLUMNS), partner_rows)
        conn.execute("COMMIT")
        project_rows.clear()
        partner_rows.clear()

    for project, partners in synthetic_projects(rows // 10 if projects is None else projects, actor_regions, regions):
        project_columns = project_columns or list(project)
        project_rows.append(tuple(project.values()))
        partner_rows.extend(partners)
        if len(partner_rows) >= batch:
            flush_projects()
    if project_rows:
        flush_projects()
    offer_rows, offer_tech, offer_columns = [], [], None
    for offer, technologies in synthetic_offers(rows // 50 if offers is None else offers, actor_regions, regions):
        offer_columns = offer_columns or list(offer)
        offer_rows.append(tuple(offer.values()))
        offer_tech.extend(technologies)
    if offer_rows:
        conn.execute("BEGIN")
        conn.executemany(_insert_sql("offers", offer_columns), offer_rows)
        conn.executemany("INSERT INTO offer_technologies VALUES (?, ?)", offer_tech)
        conn.execute("COMMIT")
    insert_seconds = time.perf_counter() - started
    started = time.perf_counter()
    conn.execute("BEGIN")
    # These rows were written directly, not through upsert_flat, so nothing tracked them: a full
    # finalise (ANALYZE, partner resolution, FTS merge), as after a harvest's bulk load. An
    # incremental one would keep the sample's planner statistics (a 7-row actors table).
    conn.execute("DELETE FROM catalogue_state WHERE name = 'incremental'")
    catalogue.finalise(conn)
    conn.execute("COMMIT")
    finalise_seconds = time.perf_counter() - started
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    started = time.perf_counter()
    catalogue.build_inspect_file(db_path)
    return {"insert_s": insert_seconds, "finalise_s": finalise_seconds,
            "inspect_s": time.perf_counter() - started, "size_mb": db_path.stat().st_size / 1e6}


def with_real_sample(db_path: Path) -> int:
    """The tests' real catalogue (three nodes, signed records, a tombstone, a stale node) in db_path first."""
    from tests.support.catalogue_sample import build_sample_catalogue  # run from the repository root

    return len(build_sample_catalogue(db_path)["signed"])


def flattening_rate(n: int = 20_000) -> float:
    """upsert_record on real-shaped (unsigned) records, one transaction: records/s."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "f.db", isolation_level=None)
        catalogue.ensure_schema(conn)
        node = {"id": "n", "name": "N", "base_url": "https://n.example", "licence": "CC0-1.0"}
        record = {"type": "Actor", "version": 1, "dateModified": "2026-01-01T00:00:00Z", "actorType": "sme",
                  "country": "DE", "region": "DE11", "names": [{"value": "Beispiel Biotech GmbH", "preferred": True}],
                  "sectors": ["red-biotech", "medtech"], "valueChainStages": ["production"],
                  "technologies": ["mRNA", "CRISPR"], "geo": {"lat": "48.1", "lon": "9.2"},
                  "identifiers": {"ror": "https://ror.org/03a1kwz48"}, "description": {"en": "A company."}}
        records = [{**record, "id": f"n/actor/a{i}"} for i in range(n)]
        conn.execute("BEGIN")
        started = time.perf_counter()
        for r in records:
            catalogue.upsert_record(conn, r, node=node, verified_at="2026-01-01T00:00:00Z")
        rate = n / (time.perf_counter() - started)
        conn.execute("COMMIT")
        conn.close()
        return rate


async def timings(db_path: Path, repeat: int) -> dict:
    ds = make_datasette(db_path)
    await ds.invoke_startup()
    conn = sqlite3.connect(db_path)
    some_id = conn.execute("SELECT id FROM actors WHERE rowid = (SELECT max(rowid) / 2 FROM actors)").fetchone()[0]
    country = conn.execute("SELECT country FROM actors WHERE id = ?", (some_id,)).fetchone()[0]
    conn.close()
    from datasette.utils import tilde_encode

    largest = conn_largest_country(db_path)
    pages = {
        f"FTS search '{MEDIUM_TERM}' (canned, ranked)": f"/catalogue/search.json?q={MEDIUM_TERM}&country=&region=",
        f"FTS search '{MEDIUM_TERM}' (table _search)": f"/catalogue/actors.json?_search={MEDIUM_TERM}",
        # The actors table's default facets are country and actor_type (metadata.yml): asking for them
        # again with ?_facet= computes each once (the biofed_catalogue plugin drops the duplicate).
        "table page, 2 facets (country, actor_type)": "/catalogue/actors.json?_facet=country&_facet=actor_type",
        "table HTML page, 2 facets (the default /catalogue/actors)": "/catalogue/actors",
        f"table page country={largest} (largest), facets region + actor_type":
            f"/catalogue/actors.json?country={largest}&_facet=region&_facet=actor_type",
        f"table page country={country} (middle row), facets region + actor_type":
            f"/catalogue/actors.json?country={country}&_facet=region&_facet=actor_type",
        "table page actor_type=university (a facet click)": "/catalogue/actors.json?actor_type=university",
        f"junction facet: sectors in country={largest}": f"/catalogue/actor_sectors.json?country={largest}&_facet=sector",
        "row page (HTML)": f"/catalogue/actors/{tilde_encode(some_id)}",
        "row JSON": f"/catalogue/actors/{tilde_encode(some_id)}.json",
        "region_strengths, one NUTS 2 region": "/catalogue/region_strengths.json?region=" + some_region(db_path),
        **people_pages(db_path, largest),
    }
    defaults = load_metadata()["databases"]["catalogue"]["tables"]
    results = {}
    for label, path in pages.items():
        response = await ds.client.get(path)  # warm the page cache
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        if path.split("?")[0].endswith(".json") and "facet_results" in response.json():
            # A facet over facet_time_limit_ms is dropped and the page still answers: a fast page
            # that lost a facet is not a result. Every facet asked for must be there, none timed out.
            # Datasette's JSON does not list timed-out facets (only the HTML does): check that every
            # default facet of the table and every ?_facet= asked for came back.
            data = response.json()
            table = path.split("?")[0].rsplit("/", 1)[1].removesuffix(".json")
            wanted = set(defaults.get(table, {}).get("facets", []))
            if "?" in path:
                wanted |= {v for k, v in (p.split("=", 1) for p in path.split("?", 1)[1].split("&")) if k == "_facet"}
            assert wanted <= set(data["facet_results"]), (path, sorted(wanted), sorted(data["facet_results"]))
            label += f" [{len(data['facet_results'])} facets: {', '.join(data['facet_results'])}]"
        assert 'class="facets-timed-out"' not in response.text, (path, "a facet timed out")
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            response = await ds.client.get(path)
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        samples.sort()
        results[label] = (statistics.median(samples), samples[int(0.95 * (len(samples) - 1))])
    return results


def people_pages(db_path: Path, largest: str) -> dict[str, str]:
    """The pages for people (biofed/aggregator/datasette/pages.py), each on a typical and a heavy case."""
    conn = sqlite3.connect(db_path)
    one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
    middle_actor = one("SELECT actor_id FROM participations WHERE actor_id IS NOT NULL"
                       " AND rowid >= (SELECT max(rowid) / 2 FROM participations) LIMIT 1")
    busiest_actor = one("SELECT actor_id FROM participations WHERE actor_id IS NOT NULL"
                        " GROUP BY actor_id ORDER BY count(*) DESC LIMIT 1")
    middle_project = one("SELECT id FROM projects WHERE rowid >= (SELECT max(rowid) / 2 FROM projects) LIMIT 1")
    largest_project = one("SELECT id FROM projects ORDER BY partners DESC, id LIMIT 1")
    busiest_region = one("SELECT region FROM actors WHERE region IS NOT NULL GROUP BY region ORDER BY count(*) DESC"
                         " LIMIT 1")
    conn.close()
    q = FRONT_DOOR_QUERY.replace(" ", "+")
    return {
        "front door /": "/",
        f"front-door search /find?q={q}": f"/find?q={q}",
        f"front-door search q={q}, where={largest}, stage=production": f"/find?q={q}&where={largest}&stage=production",
        f"front-door search, no words: where={largest}, stage=production": f"/find?where={largest}&stage=production",
        f"front-door search q={q}, NUTS 2 where={busiest_region}, sector=pharma":
            f"/find?q={q}&where={busiest_region}&sector=pharma",
        f"front-door search, no words: where={busiest_region}, technology=mRNA":
            f"/find?where={busiest_region}&technology=mRNA",
        "front-door search, no words: where=MT, stage=production, sector=pharma (a small set)":
            "/find?where=MT&stage=production&sector=pharma",
        "actor profile (an actor with projects)": "/" + middle_actor,
        "actor profile (the actor in most projects)": "/" + busiest_actor,
        "project page (a project of the middle row)": "/" + middle_project,
        "project page (most partners)": "/" + largest_project,
        f"region page /region/{busiest_region} (most actors)": f"/region/{busiest_region}",
        "regions index /regions": "/regions",
        f"regions index /regions?country={largest}": f"/regions?country={largest}",
        "collaborations_between_regions, both fields empty":
            "/catalogue/collaborations_between_regions.json?region=&partner_region=",
    }


def conn_largest_country(db_path: Path) -> str:
    conn = sqlite3.connect(db_path)
    country = conn.execute("SELECT country FROM actors GROUP BY country ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    conn.close()
    return country


def some_region(db_path: Path) -> str:
    conn = sqlite3.connect(db_path)
    region = conn.execute("SELECT region FROM actors WHERE rowid = 1").fetchone()[0]
    conn.close()
    return region


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="synthetic actors (default 200000)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--db", type=Path, help="keep the database here (default: a temporary directory)")
    parser.add_argument("--no-sample", dest="sample", action="store_false",
                        help="synthetic actors only (default: the real signed sample of tests/ first, then them)")
    parser.add_argument("--reuse", action="store_true",
                        help="time requests against an existing --db built by this script (no rebuild)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db_path = args.db or Path(tmp) / "catalogue.db"
        if args.reuse:
            if not db_path.exists():
                parser.error(f"--reuse: no database at {db_path}")
            print(f"reusing {db_path}: {db_path.stat().st_size / 1e6:,.0f} MB")
        else:
            if db_path.exists():
                db_path.unlink()
            rate = flattening_rate()
            print(f"upsert_record flattening: {rate:,.0f} records/s")
            if args.sample:
                print(f"real sample: {with_real_sample(db_path)} signed records through the aggregator's tables")
            built = build(db_path, args.rows)
            print(f"{args.rows:,} actors: insert {built['insert_s']:.1f} s ({args.rows / built['insert_s']:,.0f} rows/s), "
                  f"finalise {built['finalise_s']:.1f} s, inspect {built['inspect_s']:.1f} s, "
                  f"size {built['size_mb']:,.0f} MB")
        # Production serves a snapshot, not the harvested file: `biofed aggregator publish` (VACUUM INTO,
        # then the inspect file). The copy is compact, its indexes contiguous: time that file.
        snapshot = db_path.with_name(db_path.stem + "-public.db")
        if not (args.reuse and snapshot.exists() and snapshot.stat().st_mtime >= db_path.stat().st_mtime):
            started = time.perf_counter()
            publish(db_path, snapshot)
            print(f"publish (VACUUM INTO + inspect) {time.perf_counter() - started:.1f} s")
        print(f"serving {snapshot.name}: {snapshot.stat().st_size / 1e6:,.0f} MB")
        print("| request | p50 ms | p95 ms |\n|---|---|---|")
        for label, (p50, p95) in asyncio.run(timings(snapshot, args.repeat)).items():
            print(f"| {label} | {p50:.1f} | {p95:.1f} |")


if __name__ == "__main__":
    main()
