"""Places of the NUTS countries with coordinates and NUTS 2021 region: GeoNames, offline.

`gazetteer.csv` beside this module (built by `python -m biofed.data.build_gazetteer`,
sources and licences in biofed/data/README.md) lists every GeoNames place of
>= 5,000 inhabitants in a NUTS country: name, coordinates, region (level 2,
or 1 where the build could not tell the level 2 region safely), population
and the keys (`city_key`) of the Latin-script alternate names (`KRAKAU|CRACOW`;
keys, not names, so loading is fast: rebuild the file when `city_key` changes).

Two questions are answered from it: which place is this city name (with its
region and coordinates), and which region is this point in (the region of the
nearest place of the same country, within MAX_KM; no boundary data ships, see
docs/importing.md for the measured error of that rule near borders).
"""

from __future__ import annotations

import csv
import functools
import math
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

GAZETTEER = Path(__file__).with_name("gazetteer.csv")
COLUMNS = ["country", "name", "lat", "lon", "region", "population", "alternate_keys"]
# Nearest-place rule: a point farther than this from every listed place of its country gets no region.
MAX_KM = 25.0
# A city name shared by places in different regions: the biggest wins only when it is this many times bigger.
DOMINANT = 5
_CELL = 0.5  # degrees, grid cell of the point index

# Letters NFKD does not decompose into a base letter and an accent.
_LETTERS = str.maketrans({"Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "Đ": "D", "đ": "d", "Æ": "AE", "æ": "ae",
                          "Œ": "OE", "œ": "oe", "ß": "ss", "ẞ": "SS", "Þ": "TH", "þ": "th", "ı": "i"})


def fold(text: str) -> str:
    """Upper case, no accents (`Łódź` -> `LODZ`), words separated by single spaces."""
    text = unicodedata.normalize("NFKD", (text or "").translate(_LETTERS))
    text = "".join(c for c in text if not unicodedata.combining(c)).upper()
    return " ".join(re.sub(r"[^A-Z0-9]+", " ", text).split())


def city_key(city: str, country: str) -> str:
    """A spelling-insensitive key: no accents, no CEDEX, upper case, single spaces."""
    from biofed.node.importers.regions import repair_mojibake

    text = repair_mojibake(city or "").upper()
    if country == "DE":  # MUENCHEN and München both become MUNCHEN
        text = text.replace("Ä", "A").replace("Ö", "O").replace("Ü", "U").replace("ß", "SS")
        text = text.replace("AE", "A").replace("OE", "O").replace("UE", "U")
    text = fold(text)
    text = re.sub(r"\bCEDEX\b.*$", "", text)  # French postal suffix: PARIS CEDEX 15
    text = re.sub(r"( [0-9]+)+$", "", text.strip())  # arrondissement numbers: PARIS 15
    return text.strip()


@dataclass(frozen=True)
class Place:
    country: str
    name: str
    lat: str  # decimal strings, as records carry them
    lon: str
    region: str | None
    population: int


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine, mean Earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(min(1.0, a)))


class GridIndex:
    """Nearest labelled point of a country, by a grid of _CELL-degree cells (no numpy needed)."""

    def __init__(self, points):  # (country, lat, lon, label)
        self.cells: dict[tuple[str, int, int], list[tuple[float, float, object]]] = {}
        for country, lat, lon, label in points:
            self.cells.setdefault((country, *self._cell(lat, lon)), []).append((lat, lon, label))

    @staticmethod
    def _cell(lat: float, lon: float) -> tuple[int, int]:
        return math.floor(lat / _CELL), math.floor(lon / _CELL)

    def nearest(self, country: str, lat: float, lon: float, *, max_km: float, min_km: float = -1.0):
        """(label, km) of the nearest point within max_km (and farther than min_km), or None."""
        row, col = self._cell(lat, lon)
        rows = math.ceil(max_km / 111.0 / _CELL)
        cols = math.ceil(max_km / (111.0 * max(math.cos(math.radians(min(abs(lat), 89.0))), 0.01)) / _CELL)
        best = None
        for r in range(row - rows, row + rows + 1):
            for c in range(col - cols, col + cols + 1):
                for p_lat, p_lon, label in self.cells.get((country, r, c), ()):
                    d = distance_km(lat, lon, p_lat, p_lon)
                    if min_km < d <= max_km and (best is None or d < best[1]):
                        best = (label, d)
        return best


@dataclass
class _Gazetteer:
    by_name: dict[tuple[str, str], list[tuple[Place, bool]]]  # (country, key) -> [(place, by its main name)]
    points: GridIndex
    regions_of_country: dict[str, set[str]]


@functools.lru_cache(maxsize=1)
def load() -> _Gazetteer:
    by_name: dict[tuple[str, str], list[tuple[Place, bool]]] = {}
    points, regions = [], {}
    with GAZETTEER.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            place = Place(row["country"], row["name"], row["lat"], row["lon"], row["region"] or None,
                          int(row["population"]))
            own = city_key(row["name"], place.country)
            by_name.setdefault((place.country, own), []).append((place, True))
            for k in row["alternate_keys"].split("|"):
                if k and k != own:
                    by_name.setdefault((place.country, k), []).append((place, False))
            if place.region:
                points.append((place.country, float(place.lat), float(place.lon), place.region))
                regions.setdefault(place.country, set()).add(place.region)
    return _Gazetteer(by_name, GridIndex(points), regions)


def find_city(city: str, country: str, *, alternates: bool = True) -> tuple[Place | None, str | None]:
    """The place a city name means, or None and why (unknown or ambiguous).

    A place's own name beats an alternate name (`Villingen` is also an old name of Willingen);
    alternates=False looks at own names only.
    """
    candidates = load().by_name.get((country, city_key(city, country)), [])
    main = [p for p, is_main in candidates if is_main] or ([p for p, _ in candidates] if alternates else [])
    if not main:
        return None, "not in the gazetteer"
    main.sort(key=lambda p: -p.population)
    first = main[0]
    rivals = [p for p in main[1:] if p.region != first.region]
    if not rivals or first.population >= DOMINANT * rivals[0].population:
        return first, None
    return None, f"ambiguous: {first.name} ({first.region}) or {rivals[0].name} ({rivals[0].region})"


def region_at(lat, lon, country: str, *, max_km: float = MAX_KM) -> str | None:
    """NUTS region of the nearest gazetteer place of `country` within max_km; None when too far."""
    data = load()
    only = data.regions_of_country.get(country, set())
    if len(only) == 1 and len(next(iter(only))) == 4:
        return next(iter(only))  # one level 2 region covers the country
    hit = data.points.nearest(country, float(lat), float(lon), max_km=max_km)
    return hit[0] if hit else None
