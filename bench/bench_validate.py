"""Validation throughput: `python -m bench.bench_validate [--records N]`.

Realistic signed-shape Actor/Project/Offer records (fields varied), validated
one by one with `validate_record` on one core: all valid, then a mix with 10 %
invalid records (each with one or more typical mistakes).
"""

from __future__ import annotations

import argparse
import random
import time

from bench.records import actor
from biofed.schema import validate_record

PROOF = {"type": "DataIntegrityProof", "cryptosuite": "eddsa-jcs-2022", "created": "2026-11-23T12:00:00Z",
         "verificationMethod": "urn:biofed:bioregio-stern#lqqXTh9nK4SDo2Nvq1blVCUbeXQuhAIYhW4E6mVaZQs",
         "proofPurpose": "assertionMethod",
         "proofValue": "z3MvGcVxzRzzpKF1HA11EjvfPZsN8NAb7kXBRfeTm3CBg2gcJLQM5hZVmj6Ty64WbE1q8SpQmZ4qrZBGHLTo1Uxxm"}
COUNTRIES = ["DE", "FR", "CH", "DK", "IT", "AT", "GB"]


def project(node: str, i: int, rng: random.Random) -> dict:
    start = f"{rng.randint(2014, 2022)}-{rng.randint(1, 12):02d}-01"
    return {
        "id": f"{node}/project/h2020-{630000 + i}", "type": "Project",
        "title": f"Translational research programme {i} on regenerative medicine and biomaterials",
        "acronym": f"PRJ{i}", "programme": rng.choice(["H2020", "HORIZON-EUROPE", "INTERREG", "NATIONAL"]),
        "programmeCodes": ["H2020-EU.3.1.1."], "fundingScheme": rng.choice(["RIA", "CSA", "IA"]),
        "grantId": str(630000 + i), "startDate": start, "endDate": f"{int(start[:4]) + rng.randint(1, 5)}-12-31",
        "status": rng.choice(["ongoing", "closed"]), "totalBudgetCents": rng.randint(10**7, 10**10),
        "euContributionCents": rng.randint(10**7, 10**9), "coFundingRateBp": rng.choice([7000, 10000]),
        "topics": ["PHC-13-2014"],
        "partners": [{"name": f"UNIVERSITY {j} OF EXAMPLE", "country": rng.choice(COUNTRIES),
                      "role": "coordinator" if j == 0 else "partner", "identifiers": {"pic": f"{999000000 + j}"}}
                     for j in range(rng.randint(2, 8))],
        "links": [{"url": f"https://cordis.europa.eu/project/id/{630000 + i}"}],
        "sources": [{"name": "CORDIS", "licence": "CC-BY-4.0", "retrieved": "2017-06-01"}],
    }


def offer(node: str, i: int, rng: random.Random) -> dict:
    return {
        "id": f"{node}/offer/o-{i}", "type": "Offer", "title": f"Pilot-scale fermentation service {i}",
        "offerType": rng.choice(["service", "facility", "licence", "expertise"]),
        "provider": f"{node}/actor/org-{i:06d}",
        "description": {"en": "Access to 300 L pilot fermenters with downstream processing and analytics."},
        "sectors": ["white-biotech", "biomanufacturing"], "valueChainStages": ["process-industrialisation"],
        "contact": {"email": f"pilot@example-{i}.eu"}, "country": "DE", "region": "DE1", "validUntil": "2027-12-31",
    }


MISTAKES = [
    lambda r: r.update(country="UK"),
    lambda r: r.update(startDate="2014-13-45") if r["type"] == "Project" else r.update(colour="blue"),
    lambda r: r.update(contact={"email": "x@"}),
    lambda r: r.update(totalBudgetCents="230000,00") if r["type"] == "Project" else r.update(region="FR10"),
    lambda r: r.update(geo={"lat": 48.52, "lon": 9.05}) if r["type"] == "Actor" else r.pop("title"),
]


def make_records(count: int, invalid_share: float, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    records = []
    for i in range(count):
        kind = i % 10
        record = actor("bioregio-stern", i, rng) if kind < 6 else (
            project("bioregio-stern", i, rng) if kind < 9 else offer("bioregio-stern", i, rng))
        record.update(version=1 + i % 5, dateModified="2026-11-23T12:00:00Z", proof=PROOF)
        if rng.random() < invalid_share:
            for mistake in rng.sample(MISTAKES, rng.randint(1, 3)):
                mistake(record)
        records.append(record)
    return records


def measure(records: list[dict], repeat: int = 3) -> tuple[float, int]:
    best = float("inf")
    invalid = 0
    for _ in range(repeat):
        started = time.perf_counter()
        invalid = sum(1 for record in records if validate_record(record))
        best = min(best, time.perf_counter() - started)
    return len(records) / best, invalid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    args = parser.parse_args()
    validate_record(make_records(1, 0)[0])  # compile the validators outside the timing
    rows = []
    for label, share in (("all valid", 0.0), ("10 % invalid", 0.10)):
        records = make_records(args.records, share)
        rate, invalid = measure(records)
        rows.append((label, len(records), invalid, rate))
    print(f"validate_record, one core, {args.records} realistic records (60 % Actor, 30 % Project, 10 % Offer)\n")
    print("| mix | records | invalid | rate | per record |")
    print("|---|---|---|---|---|")
    for label, count, invalid, rate in rows:
        print(f"| {label} | {count:,} | {invalid:,} | {rate:,.0f}/s | {1e6 / rate:.1f} µs |")


if __name__ == "__main__":
    main()
