"""Rebuild the shipped data subset from the upstream extracts.

    python -m biofed.data.build UPSTREAM_DIR

UPSTREAM_DIR holds `ror/ror-europe.jsonl` and `cordis-h2020/*.tsv` as
described in biofed/data/README.md. Lines are copied byte for byte: nothing
is repaired in the shipped copy (the importers do that). Only maintainers run
this; the package and its tests read the shipped files only. The importers'
gazetteer has its own build: `python -m biofed.data.build_gazetteer`.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

from biofed.node.importers import regions

HERE = Path(__file__).parent

# The biggest cities of each sub-national demo region, with the spellings
# CORDIS uses (local language, English, without diacritics), plus a few
# well-known life-science municipalities. Added to the ROR-derived names.
MAJOR_CITIES = {
    ("DE", "DE1"): [
        "Stuttgart", "Mannheim", "Karlsruhe", "Freiburg im Breisgau", "Freiburg", "Heidelberg", "Ulm",
        "Heilbronn", "Pforzheim", "Reutlingen", "Esslingen am Neckar", "Esslingen", "Ludwigsburg", "Tübingen",
        "Villingen-Schwenningen", "Villingen", "Konstanz", "Aalen", "Sindelfingen", "Schwäbisch Gmünd",
        "Friedrichshafen", "Offenburg", "Göppingen", "Waiblingen", "Baden-Baden", "Biberach an der Riß",
        "Biberach", "Eggenstein-Leopoldshafen", "Ravensburg", "Tuttlingen", "Ladenburg", "Walldorf",
        "Weinheim", "Böblingen", "Leinfelden-Echterdingen", "Filderstadt", "Ostfildern", "Metzingen", "Hechingen",
        "Rottenburg am Neckar", "Nürtingen", "Kirchheim unter Teck", "Schwäbisch Hall", "Heidenheim an der Brenz",
        "Lörrach", "Singen", "Rastatt", "Bruchsal", "Ettlingen", "Sigmaringen", "Weingarten",
    ],
    ("FR", "FR1"): [
        "Paris", "Boulogne-Billancourt", "Saint-Denis", "Argenteuil", "Montreuil", "Nanterre", "Vitry-sur-Seine",
        "Créteil", "Versailles", "Évry", "Evry-Courcouronnes", "Courbevoie", "Issy-les-Moulineaux", "Villejuif",
        "Ivry-sur-Seine", "Clichy", "Orsay", "Gif-sur-Yvette", "Saclay", "Palaiseau", "Massy", "Longjumeau",
        "Le Kremlin-Bicêtre", "Fontenay-aux-Roses", "Maisons-Alfort", "Vincennes", "Charenton-le-Pont",
        "Saint-Maurice", "Sarcelles", "Colombes", "Élancourt", "Cergy", "Cergy-Pontoise", "Pontoise",
        "Noisy-le-Grand", "Montigny-le-Bretonneux", "Romainville", "Neuilly-sur-Seine", "Suresnes",
        "Rueil-Malmaison", "Levallois-Perret", "Puteaux", "Aubervilliers", "Saint-Cloud", "Meudon", "Clamart",
        "Sèvres", "Champigny-sur-Marne", "Saint-Maur-des-Fossés", "Aulnay-sous-Bois", "Drancy", "Bobigny",
        "Pantin", "Bondy", "Fontainebleau", "Melun", "Meaux", "Chelles", "Le Chesnay", "Saint-Quentin-en-Yvelines",
        "Guyancourt", "Vélizy-Villacoublay", "Les Ulis", "Corbeil-Essonnes", "Marne-la-Vallée",
        "Champs-sur-Marne", "Cachan", "Gentilly", "Arcueil", "Antony", "Châtenay-Malabry", "Sceaux", "Rungis",
        "Romainville", "Boulogne", "La Plaine Saint-Denis",
    ],
    ("IT", "ITC4"): [
        "Milano", "Milan", "Brescia", "Monza", "Bergamo", "Como", "Varese", "Pavia", "Cremona", "Mantova",
        "Mantua", "Lecco", "Lodi", "Sondrio", "Busto Arsizio", "Sesto San Giovanni", "Cinisello Balsamo",
        "Legnano", "Gallarate", "Rho", "Segrate", "Rozzano", "Lissone", "Bresso", "Vimercate", "Saronno",
        "Bollate", "Cologno Monzese", "Paderno Dugnano", "Seriate", "Vigevano", "Mede", "Desio", "Seregno",
        "Pioltello", "Cernusco sul Naviglio", "San Donato Milanese", "Gerenzano", "Nerviano", "Baranzate",
        "Ispra", "Castellanza", "Crema", "Treviglio", "Abbiategrasso", "Corsico", "Assago",
    ],
    ("BE", "BE2"): [
        "Antwerpen", "Antwerp", "Anvers", "Gent", "Ghent", "Gand", "Brugge", "Bruges", "Leuven", "Louvain",
        "Mechelen", "Malines", "Aalst", "Kortrijk", "Courtrai", "Hasselt", "Genk", "Sint-Niklaas", "Oostende",
        "Ostend", "Roeselare", "Turnhout", "Diepenbeek", "Zwijnaarde", "Edegem", "Niel", "Geel", "Mol",
        "Beerse", "Zaventem", "Herent", "Heverlee", "Wilrijk", "Merelbeke", "Puurs", "Diegem", "Machelen",
        "Vilvoorde", "Grimbergen", "Westerlo", "Aalter", "Wijnegem", "Zwalm", "Sint-Martens-Latem", "Lokeren",
        "Dendermonde", "Lier", "Tienen", "Ieper", "Ypres", "Waregem", "Deinze", "Wetteren", "Zele", "Boom",
        "Kontich", "Mortsel", "Schoten", "Brasschaat", "Kapellen", "Ninove", "Halle", "Asse", "Dilbeek",
        "Tessenderlo", "Lommel", "Sint-Truiden", "Tongeren", "Maasmechelen", "Beringen",
    ],
}


def select_ror(upstream: Path) -> list[bytes]:
    """ROR lines whose first location lies in one of the demo regions, unchanged."""
    demo_regions = {node["region"] for node in json.loads((HERE / "nodes.json").read_text(encoding="utf-8"))}
    kept = []
    for line in (upstream / "ror" / "ror-europe.jsonl").read_bytes().splitlines(keepends=True):
        record = json.loads(line)
        place = record["locations"][0]["geonames_details"]
        region = regions.region_for_subdivision(place["country_code"], place.get("country_subdivision_code"))
        if region in demo_regions:
            kept.append(line)
    return kept


def write_city_table(ror_lines: list[bytes]) -> None:
    rows = set()
    for line in ror_lines:
        record = json.loads(line)
        for location in record["locations"]:
            place = location["geonames_details"]
            region = regions.SUBDIVISION_REGIONS.get((place["country_code"], place.get("country_subdivision_code")))
            if region:
                rows.add((place["country_code"], place["name"], region, "ror"))
    known = {(country, regions.city_key(city, country)) for country, city, _, _ in rows}
    for (country, region), cities in MAJOR_CITIES.items():
        for city in cities:
            if (country, regions.city_key(city, country)) not in known:
                known.add((country, regions.city_key(city, country)))
                rows.add((country, city, region, "major-city"))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["country", "city", "region", "source"])
    writer.writerows(sorted(rows))
    regions.CITY_TABLE.write_text(out.getvalue(), encoding="utf-8")  # the importers' table, beside them
    regions.city_table.cache_clear()


def _tsv(path: Path) -> tuple[bytes, list[tuple[dict, bytes]]]:
    """Header line and (row dict, raw line) pairs; raw lines keep their CRLF/LF."""
    lines = path.read_bytes().splitlines(keepends=True)
    header = lines[0].decode("utf-8").rstrip("\r\n").split("\t")
    rows = []
    for raw in lines[1:]:
        values = raw.decode("utf-8").rstrip("\r\n").split("\t")
        rows.append((dict(zip(header, values)), raw))
    return lines[0], rows


def select_cordis(upstream: Path) -> dict[str, bytes]:
    """Health projects coordinated in a demo region, their participations and organisations."""
    from biofed.node.importers.cordis import HEALTH_PREFIX, coordinator_of, organisation_region

    folder = upstream / "cordis-h2020"
    demo_regions = {node["region"] for node in json.loads((HERE / "nodes.json").read_text(encoding="utf-8"))}
    p_head, projects = _tsv(folder / "projects.tsv")
    e_head, edges = _tsv(folder / "participations.tsv")
    o_head, orgs = _tsv(folder / "organisations.tsv")
    d_head, details = _tsv(folder / "organisations-details.tsv")
    org_by_id = {row["new_org_id"]: row for row, _ in orgs}
    detail_by_id = {row["orgId"]: row for row, _ in details}
    members: dict[str, list[str]] = {}
    for row, _ in edges:
        members.setdefault(row["projectRcn"], []).append(row["new_org_id"])

    kept_projects, kept_rcns = [], set()
    for row, raw in projects:
        if not any(code.startswith(HEALTH_PREFIX) for code in row["programme"].split(";")):
            continue
        org_ids = [i for i in members.get(row["rcn"], []) if i in org_by_id]
        coordinator = coordinator_of(row, [org_by_id[i] for i in org_ids])
        if coordinator is None:
            continue
        region = organisation_region(coordinator, detail_by_id.get(coordinator["new_org_id"]))
        if region in demo_regions:
            kept_projects.append(raw)
            kept_rcns.add(row["rcn"])
    kept_edges = [raw for row, raw in edges if row["projectRcn"] in kept_rcns]
    kept_orgs = {row["new_org_id"] for row, _ in edges if row["projectRcn"] in kept_rcns}
    return {
        "projects.tsv": p_head + b"".join(kept_projects),
        "participations.tsv": e_head + b"".join(kept_edges),
        "organisations.tsv": o_head + b"".join(raw for row, raw in orgs if row["new_org_id"] in kept_orgs),
        "organisations-details.tsv": d_head + b"".join(raw for row, raw in details if row["orgId"] in kept_orgs),
        "activity-types.tsv": (folder / "activity-types.tsv").read_bytes(),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    upstream = Path(argv[0])
    ror_lines = select_ror(upstream)
    (HERE / "ror-regions.jsonl").write_bytes(b"".join(ror_lines))
    write_city_table(ror_lines)
    target = HERE / "cordis"
    target.mkdir(exist_ok=True)
    for name, data in select_cordis(upstream).items():
        (target / name).write_bytes(data)
        rows = data.count(b"\n") - 1
        print(f"{name}: {rows} rows", file=sys.stderr)
    print(f"ror-regions.jsonl: {len(ror_lines)} records", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
