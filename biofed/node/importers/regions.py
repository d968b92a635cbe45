"""Which NUTS region an organisation is in, from what ROR and CORDIS tell us.

Coordinates (ROR, a spreadsheet's lat/lon) give the region of the nearest
place of the GeoNames gazetteer (gazetteer.py); a city name, spelled in many
ways (`MUENCHEN`, `München`, `PARIS CEDEX 15`, `Cracow`), is looked up in the
gazetteer, then in the older city table `city-regions.csv` (CORDIS spellings;
`python -m biofed.data.build` rebuilds it), then, for countries whose whole
territory is one NUTS 1 region, the country decides. ROR's ISO 3166-2
subdivision is the last resort. A city found nowhere gives no region, never
a guess.
"""

from __future__ import annotations

import csv
import functools
import re
import unicodedata
from pathlib import Path

from biofed.node.importers import gazetteer
from biofed.node.importers.gazetteer import city_key

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


@functools.lru_cache(maxsize=1)
def city_table() -> dict[tuple[str, str], str]:
    """(country, city key) -> NUTS code, from city-regions.csv."""
    table = {}
    with CITY_TABLE.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            table[(row["country"], city_key(row["city"], row["country"]))] = row["region"]
    return table


def _city_spellings(city: str, country: str) -> list[str]:
    """The whole name, then each part ("ZWIJNAARDE - GENT", "ROZZANO-MILAN"), the most specific first."""
    parts = [city] + re.split(r"\s*[-/,(]\s*", repair_mojibake(city))
    return [part for part in dict.fromkeys(parts) if city_key(part, country)]


def place_for_city(city: str, country: str) -> tuple[gazetteer.Place | None, str | None]:
    """The gazetteer place of a city (region and coordinates), or None and why.

    Own names of places first; then the city table (CORDIS spellings); an alternate name only
    when the table does not contradict it.
    """
    country = iso_country(country)
    spellings = _city_spellings(city or "", country)
    reason = None
    for spelling in spellings:
        place, why = gazetteer.find_city(spelling, country, alternates=False)
        if place is not None:
            return place, None
        reason = why if why != "not in the gazetteer" else reason
    known = _table_region(spellings, country)
    for spelling in spellings:
        place, why = gazetteer.find_city(spelling, country)
        if place is not None and (known is None or (place.region or "").startswith(known)):
            return place, None
        reason = reason or why
    return None, reason or "no city"


def _table_region(spellings: list[str], country: str) -> str | None:
    table = city_table()
    for spelling in spellings:
        if (country, city_key(spelling, country)) in table:
            return table[(country, city_key(spelling, country))]
    return None


def region_for_city(city: str, country: str) -> str | None:
    """NUTS region of a city: gazetteer, then the city table, then the country when it is one region."""
    country = iso_country(country)
    place, _ = place_for_city(city, country)
    if place is not None and place.region:
        return place.region
    return _table_region(_city_spellings(city or "", country), country) or COUNTRY_REGIONS.get(country)


def region_for_point(lat, lon, country: str) -> str | None:
    """NUTS region of a point (decimal strings or numbers) in `country`: nearest gazetteer place."""
    return gazetteer.region_at(lat, lon, iso_country(country))


@functools.lru_cache(maxsize=1)
def nuts_countries() -> frozenset[str]:
    """ISO codes of the countries NUTS 2021 divides."""
    from biofed.schema.codes import nuts_country, nuts_regions

    return frozenset(nuts_country(code) for code in nuts_regions())


def missing_region_warning(content: dict | None, what: str) -> list:
    """A warning when a record in a NUTS country got no region (it will miss the map and the survey)."""
    from biofed.node.importers import RowError

    if not content or content.get("region") or content.get("country") not in nuts_countries():
        return []
    return [RowError("region", f"no NUTS region found for {what}; give a region column or coordinates")]


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
