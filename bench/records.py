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


def actor(node: str, i: int, rng: random.Random | None = None) -> dict:
    rng = rng or random.Random(i)
    city, region, lat, lon = rng.choice(CITIES)
    return {
        "id": f"{node}/actor/org-{i:06d}",
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
