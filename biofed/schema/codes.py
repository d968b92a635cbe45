"""Code lists: the single source of every enumerated value in the standard.

Each list is a CSV file in `codes/` whose first column is `code`. A schema
node names its list in a `$comment` ("code list <name> ..."); `generate.py`
writes the list's codes into that node's `enum` in the schema files.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

from biofed.errors import BiofedError

CODES_DIR = Path(__file__).parent / "codes"
NUTS_LIST = "nuts2021"

# What a reader should use instead of a code that is common in the source data
# but not ISO 3166-1 (CORDIS and Eurostat write UK and EL).
COUNTRY_HINTS = {"UK": "GB", "EL": "GR"}


def code_list_names() -> list[str]:
    return sorted(path.stem for path in CODES_DIR.glob("*.csv"))


@functools.cache
def _rows(name: str) -> tuple[dict, ...]:
    path = CODES_DIR / f"{name}.csv"
    if not path.is_file():
        raise BiofedError(f"no code list {name!r}; known: {', '.join(code_list_names())}")
    with path.open(encoding="utf-8", newline="") as fh:
        return tuple(dict(row) for row in csv.DictReader(fh))


def code_list(name: str) -> list[dict]:
    """The rows of one code list, e.g. code_list("sectors") -> [{"code": "red-biotech", "label": ...}, ...]."""
    return [dict(row) for row in _rows(name)]


@functools.cache
def codes(name: str) -> tuple[str, ...]:
    """Just the codes of a list, in file order."""
    return tuple(row["code"] for row in _rows(name))


@functools.cache
def _nuts() -> dict[str, dict]:
    return {
        row["code"]: {"name": row["name"], "level": int(row["level"]), "lat": row["lat"], "lon": row["lon"]}
        for row in _rows(NUTS_LIST)
    }


def nuts_regions() -> dict[str, dict]:
    """NUTS 2021 regions (levels 1 and 2): code -> {name, level, lat, lon}; lat/lon are decimal strings."""
    return {code: dict(region) for code, region in _nuts().items()}


def nuts_country(code: str) -> str:
    """The ISO 3166-1 country of a NUTS code (NUTS writes EL for GR and UK for GB)."""
    return COUNTRY_HINTS.get(code[:2], code[:2])
