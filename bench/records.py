"""Realistic BioFed records for benchmarks (about 1.5 KB each, organisations only)."""

from __future__ import annotations

import random

SECTORS = ["red-biotech", "medtech", "biomaterials", "digital-health", "biomanufacturing", "diagnostics", "pharma"]
STAGES = ["training", "research-development", "process-industrialisation", "production"]
TECH = ["mRNA", "CRISPR", "cell therapy", "bioprinting", "microfluidics", "mass spectrometry", "organ-on-chip",
        "biosensors", "antibody engineering", "fermentation", "AI diagnostics", "hydrogels"]
CITIES = [("Tübingen", "DE1", "48.520000", "9.053000"), ("Reutlingen", "DE1", "48.491000", "9.204000"),
          ("Évry-Courcouronnes", "FR1", "48.629000", "2.441000"), ("Lausanne", "CH0", "46.519000", "6.633000"),
          ("København", "DK0", "55.676000", "12.568000"), ("Milano", "ITC4", "45.464000", "9.190000")]


def actor(node: str, i: int, rng: random.Random | None = None, *, identity: int | None = None) -> dict:
    """Actor `i` of `node`; `identity` (default i) numbers the organisation it describes: name, PIC, website."""
    rng = rng or random.Random(i)
    city, region, lat, lon = rng.choice(CITIES)
    n = i
    i = i if identity is None else identity
    return {
        "id": f"{node}/actor/org-{n:06d}",
        "type": "Actor",
        "names": [{"value": f"Beispiel Biotech {i} GmbH", "lang": "de", "preferred": True},
                  {"value": f"Example Biotech {i}", "lang": "en"}],
        "acronyms": [f"EB{i}"],
        "actorType": rng.choice(["sme", "university", "research-institute", "hospital", "large-company"]),
        "valueChainStages": rng.sample(STAGES, 2),
        "sectors": rng.sample(SECTORS, 2),
        "technologies": rng.sample(TECH, 3),
        "services": ["contract research", "assay development"],
        "description": {"en": f"Organisation {i} develops {rng.choice(TECH)} platforms for regenerative medicine "
                              "and offers process development from laboratory scale to GMP production. " * 3},
        "website": f"https://example-{i}.eu",
        "contact": {"email": f"info@example-{i}.eu", "contactForm": f"https://example-{i}.eu/contact"},
        "address": {"street": "Innovationsstraße 1", "postalCode": "72076", "locality": city, "country": region[:2]},
        "country": region[:2],
        "region": region,
        "geo": {"lat": lat, "lon": lon},
        "identifiers": {"pic": f"{900000000 + i}"},
        "sizeClass": rng.choice(["micro", "small", "medium", "large"]),
        "foundingYear": 1950 + i % 70,
        "memberships": [{"cluster": node}],
    }


PROGRAMMES = ["HORIZON-EUROPE", "H2020", "INTERREG", "NATIONAL", "REGIONAL"]
OFFER_TYPES = ["service", "facility", "technology", "expertise", "training", "licence"]


def project(node: str, i: int, actors: int, rng: random.Random | None = None) -> dict:
    """A project of `node` (about 1 KB) whose partners are actors of the same node (0..actors-1) and two outsiders."""
    rng = rng or random.Random(1_000_003 + i)
    partners = [{"actor": f"{node}/actor/org-{a:06d}", "name": f"Beispiel Biotech {a} GmbH", "country": "DE",
                 "role": "coordinator" if n == 0 else "partner"}
                for n, a in enumerate(rng.sample(range(max(actors, 1)), min(3, max(actors, 1))))]
    partners += [{"name": f"Partner Institute {i}-{n}", "country": rng.choice(["FR", "IT", "DK", "CH"]), "role": "partner",
                  "identifiers": {"pic": f"{800000000 + i * 2 + n}"}} for n in range(2)]
    start = 2015 + i % 9
    return {
        "id": f"{node}/project/p-{i:06d}",
        "type": "Project",
        "title": f"{rng.choice(TECH)} for {rng.choice(SECTORS)}: a regional innovation project {i}",
        "acronym": f"PRJ{i}",
        "programme": rng.choice(PROGRAMMES),
        "startDate": f"{start}-0{1 + i % 9}-01",
        "endDate": f"{start + 3}-0{1 + i % 9}-01",
        "status": "closed" if start < 2021 else "ongoing",
        "totalBudgetCents": 100_000_00 * (1 + i % 50),
        "euContributionCents": 70_000_00 * (1 + i % 50),
        "topics": [rng.choice(SECTORS)],
        "partners": partners,
    }


def offer(node: str, i: int, actors: int, rng: random.Random | None = None) -> dict:
    """An offer (about 0.7 KB) provided by one of the node's actors."""
    rng = rng or random.Random(2_000_003 + i)
    city, region, _, _ = rng.choice(CITIES)
    tech = rng.sample(TECH, 2)
    return {
        "id": f"{node}/offer/o-{i:06d}",
        "type": "Offer",
        "title": f"{tech[0]} {rng.choice(['contract service', 'pilot facility', 'training course'])} in {city}",
        "offerType": rng.choice(OFFER_TYPES),
        "provider": f"{node}/actor/org-{rng.randrange(max(actors, 1)):06d}",
        "description": {"en": f"Access to {tech[0]} and {tech[1]} for companies and research groups, "
                              "from feasibility study to pilot scale."},
        "technologies": tech,
        "sectors": rng.sample(SECTORS, 2),
        "valueChainStages": rng.sample(STAGES, 1),
        "country": region[:2],
        "region": region,
    }


SHARED_ORGANISATIONS = 2000  # well-known organisations that are members of several clusters
SHARED_EVERY = 20  # one actor in 20 of a node is one of them; the others are the node's own


def identity_of(node_index: int, i: int, count: int) -> int:
    """Which organisation actor i of node `node_index` describes (the same number = the same PIC, website, name)."""
    if i % SHARED_EVERY == SHARED_EVERY - 1:
        return 10_000_000 + (i * 7919 + node_index * 104729) % SHARED_ORGANISATIONS
    return node_index * count + i


def mixed(node: str, count: int, node_index: int | None = None) -> list[dict]:
    """`count` records of one node, as a cluster's directory holds them: 80 % actors, 12 % projects, 8 % offers.

    With `node_index`, each node describes its own organisations (one actor in 20 is
    one of SHARED_ORGANISATIONS shared with other clusters); without it, actor i
    of every node is the same organisation.
    """
    actors = max(1, count * 80 // 100)
    projects = count * 12 // 100
    offers = count - actors - projects
    return ([actor(node, i, identity=None if node_index is None else identity_of(node_index, i, count))
             for i in range(actors)]
            + [project(node, i, actors) for i in range(projects)] + [offer(node, i, actors) for i in range(offers)])
