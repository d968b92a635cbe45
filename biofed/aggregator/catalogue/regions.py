"""Reference data: the NUTS 2021 regions the catalogue's `regions` table and actors' region names come from."""

from __future__ import annotations

_REGIONS: dict[str, dict] | None = None

# NUTS uses EL and UK where ISO 3166 (and the data standard) says GR and GB.
_NUTS_TO_ISO = {"EL": "GR", "UK": "GB"}


def _regions() -> dict[str, dict]:
    """NUTS 2021 regions keyed by code: {code, name, level, country, lat, lon}."""
    global _REGIONS
    if _REGIONS is None:
        from biofed.schema import nuts_regions  # the code list is the schema package's

        _REGIONS = {
            code: {
                "code": code,
                "name": row["name"],
                "level": _int(row["level"]),
                "country": _NUTS_TO_ISO.get(code[:2], code[:2]),
                "lat": _float(row["lat"]),
                "lon": _float(row["lon"]),
            }
            for code, row in nuts_regions().items()
        }
    return _REGIONS


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
