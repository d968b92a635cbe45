"""Which NUTS region an organisation is in, from what ROR and CORDIS tell us.

ROR gives an ISO 3166-2 subdivision; CORDIS gives only a city name, spelled
in many ways (`MUENCHEN`, `München`, `PARIS CEDEX 15`). Both are mapped to
the NUTS 2021 region of a demo node with small tables: two below, and the
city table `city-regions.csv` beside this module (the importers' data;
`python -m biofed.data.build` rebuilds it). The city table is approximate: a
city missing from it gives no region (never a wrong guess from the country alone, except for countries
whose whole territory is one NUTS 1 region).
"""

from __future__ import annotations

import csv
import functools
import re
import unicodedata
from pathlib import Path

CITY_TABLE = Path(__file__).with_name("city-regions.csv")

# CORDIS uses Eurostat country codes; records use ISO 3166-1.
CORDIS_TO_ISO = {"UK": "GB", "EL": "GR"}

# Countries that are one NUTS 1 region: the country decides the region.
COUNTRY_REGIONS = {"DK": "DK0", "CH": "CH0", "LI": "LI0", "LU": "LU0", "CY": "CY0", "MT": "MT0", "EE": "EE0",
                   "LV": "LV0", "LT": "LT0", "IE": "IE0", "SI": "SI0", "HR": "HR0", "CZ": "CZ0", "SK": "SK0",
                   "IS": "IS0", "NO": "NO0"}

# ISO 3166-2 subdivisions (as in ROR's geonames_details) that are one NUTS region.
SUBDIVISION_REGIONS = {("DE", "BW"): "DE1", ("FR", "IDF"): "FR1", ("IT", "25"): "ITC4", ("BE", "VLG"): "BE2"}


def iso_country(code: str) -> str:
    """ISO 3166-1 alpha-2 for a CORDIS/Eurostat country code (UK -> GB, EL -> GR)."""
    code = (code or "").strip().upper()
    return CORDIS_TO_ISO.get(code, code)


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 read as Mac Roman (`M√ºnster` -> `Münster`) where that round-trips.

    Only a clean round trip is accepted: correctly encoded text does not
    survive it (its accented letters are lone continuation bytes in UTF-8).
    """
    if not text or text.isascii():
        return text
    try:
        repaired = text.encode("mac_roman").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text
    return unicodedata.normalize("NFC", repaired)


def city_key(city: str, country: str) -> str:
    """A spelling-insensitive key: no accents, no CEDEX, upper case, single spaces."""
    text = repair_mojibake(city or "").upper()
    if country == "DE":  # MUENCHEN and München both become MUNCHEN
        text = text.replace("Ä", "A").replace("Ö", "O").replace("Ü", "U").replace("ß", "SS")
        text = text.replace("AE", "A").replace("OE", "O").replace("UE", "U")
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = re.sub(r"\bCEDEX\b.*$", "", text)  # French postal suffix: PARIS CEDEX 15
    text = re.sub(r"[^A-Z0-9]+", " ", text)
    text = re.sub(r"( [0-9]+)+$", "", text.strip())  # arrondissement numbers: PARIS 15
    return text.strip()


@functools.lru_cache(maxsize=1)
def city_table() -> dict[tuple[str, str], str]:
    """(country, city key) -> NUTS code, from city-regions.csv."""
    table = {}
    with CITY_TABLE.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            table[(row["country"], city_key(row["city"], row["country"]))] = row["region"]
    return table


def region_for_city(city: str, country: str) -> str | None:
    """NUTS region of a city, or None when the city table does not know it."""
    country = iso_country(country)
    if country in COUNTRY_REGIONS:
        return COUNTRY_REGIONS[country]
    if not city:
        return None
    table = city_table()
    key = city_key(city, country)
    if (country, key) in table:
        return table[(country, key)]
    # "ZWIJNAARDE - GENT", "ROZZANO-MILAN": try each part, the most specific first
    for part in re.split(r"\s*[-/,(]\s*", repair_mojibake(city)):
        part_key = city_key(part, country)
        if part_key and (country, part_key) in table:
            return table[(country, part_key)]
    return None


def region_for_subdivision(country: str, subdivision: str | None) -> str | None:
    """NUTS region of an ISO 3166-2 subdivision (ROR), or None when not in the table."""
    country = iso_country(country)
    if country in COUNTRY_REGIONS:
        return COUNTRY_REGIONS[country]
    return SUBDIVISION_REGIONS.get((country, subdivision or ""))


def region_within(region: str | None, within: str | None) -> bool:
    """Is `region` inside the NUTS region `within` (same code or a sub-region)?"""
    if within is None:
        return True
    return region is not None and region.startswith(within)
