"""Generated, realistic-looking records for tests, benchmarks and demos.

Organisations only (no private persons); names are invented.
"""

from __future__ import annotations

import random

SECTORS = ["red-biotech", "green-biotech", "white-biotech", "medtech", "biomaterials", "digital-health",
           "diagnostics", "pharma", "biomanufacturing"]
STAGES = ["training", "research-development", "process-industrialisation", "production", "market-access"]
TECHNOLOGIES = ["mRNA", "CRISPR", "monoclonal antibodies", "cell therapy", "organoids", "microfluidics",
                "bioprinting", "mass spectrometry", "single-cell sequencing", "fermentation", "AI drug design"]
TOWNS = [("Stuttgart", "70173", "DE11", "48.775800", "9.182900"), ("Tübingen", "72072", "DE14", "48.521600", "9.057600"),
         ("Reutlingen", "72764", "DE14", "48.491400", "9.211400"), ("Esslingen", "73728", "DE11", "48.740600", "9.310800")]
TYPES = ["sme", "sme", "sme", "large-company", "university", "research-institute", "hospital", "investor"]


def sample_actor(index: int, *, seed: int = 0) -> dict:
    """An Actor content dict (no version/dateModified/proof) with a short id `actor/...`."""
    rng = random.Random(seed * 1_000_003 + index)
    town, postcode, region, lat, lon = rng.choice(TOWNS)
    name = f"{rng.choice(['Neckar', 'Alb', 'Stern', 'Schwaben', 'Filder'])} {rng.choice(['Bio', 'Gen', 'Cell', 'Med'])}" \
           f"{rng.choice(['tec', 'logics', 'pharm', 'vation'])} {index}"
    return {
        "id": f"actor/org-{index}",
        "type": "Actor",
        "names": [{"value": f"{name} GmbH", "lang": "de", "preferred": True}],
        "actorType": rng.choice(TYPES),
        "valueChainStages": sorted(rng.sample(STAGES, 2)),
        "sectors": sorted(rng.sample(SECTORS, 2)),
        "technologies": sorted(rng.sample(TECHNOLOGIES, 3)),
        "description": {
            "en": f"{name} develops {rng.choice(TECHNOLOGIES)} platforms for partners in research and industry "
                  f"and offers contract services from its site in {town}.",
            "de": f"{name} entwickelt Plattformen für Partner aus Forschung und Industrie in {town}.",
        },
        "website": f"https://org-{index}.example.org",
        "contact": {"email": f"info@org-{index}.example.org"},
        "address": {"street": f"Industriestraße {index % 200 + 1}", "postalCode": postcode, "locality": town,
                    "country": "DE"},
        "country": "DE",
        "region": region,
        "geo": {"lat": lat, "lon": lon},
        "foundingYear": 1950 + index % 70,
        "sources": [{"name": "BioRegio STERN member directory", "licence": "CC-BY-4.0"}],
    }
