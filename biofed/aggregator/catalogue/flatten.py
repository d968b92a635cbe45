"""Pure flattening: one verified record -> its catalogue rows (no database).

The one place that changes when the data standard changes (with the table
definitions in tables.py). Worker processes run `flatten` next to verification;
writes.py inserts what it returns.
"""

from __future__ import annotations

from typing import Any

from biofed.aggregator.catalogue.organisations import organisation_keys
from biofed.aggregator.catalogue.regions import _float, _regions

def _text(language_map: Any, prefer: str | None = None) -> str | None:
    """One string from a language map: English, else the preferred name's language, else any."""
    if isinstance(language_map, str):
        return language_map
    if not isinstance(language_map, dict) or not language_map:
        return None
    for lang in ("en", prefer, "und"):
        if lang and language_map.get(lang):
            return language_map[lang]
    return next(iter(language_map.values()))


def _joined(values: Any) -> str | None:
    if not values:
        return None
    return ", ".join(map(str, values))


def _eur(cents: Any) -> float | None:
    return cents / 100 if isinstance(cents, int) else None


def _ror(value: Any) -> str | None:
    """ROR ids compare as https://ror.org/<id>, lower case."""
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip().lower().rstrip("/")
    return value if value.startswith("https://ror.org/") else "https://ror.org/" + value.rsplit("/", 1)[-1]


def _pic(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None

PROVENANCE_COLUMNS = (
    "node_id, licence, attribution, version, date_modified, first_seen, verified_at, stale, stale_since, record_url"
)

def _unique(values: list) -> list:
    """The values once each, in order (the junction tables' primary keys ignore repeats)."""
    try:
        return list(dict.fromkeys(values))
    except TypeError:  # unhashable values: the insert will store or ignore them as before
        return values


def flatten(record: dict):
    """The catalogue rows of one record, without provenance: a small picklable tuple, or None.

    (kind, id, version, dateModified, row, extra...): worker processes build it
    next to verification, so the harvesting process only inserts.
    """
    kind = record.get("type")
    if kind == "Actor":
        return _flatten_actor(record)
    if kind == "Project":
        return _flatten_project(record)
    if kind == "Offer":
        return _flatten_offer(record)
    return None


# How the record's fields are named when a derivation is read out ("sectors and value-chain stages").
_FIELD_NAMES = {"sectors": "sectors", "valueChainStages": "value-chain stages", "technologies": "technologies"}


def _bases(record: dict, sectors: list, stages: list) -> tuple:
    """(sectors_basis, stages_basis, derivation): 'declared' or 'derived' per dimension (None without values),
    and what a source says it derived, read out: "sectors and value-chain stages derived from 4 CORDIS projects"."""
    derived_fields, readings = set(), []
    for source in record.get("sources") or []:
        derived = source.get("derived") if isinstance(source, dict) else None
        if not isinstance(derived, dict) or not derived.get("fields"):
            continue
        fields = [f for f in derived["fields"] if isinstance(f, str)]
        derived_fields.update(fields)
        named = [_FIELD_NAMES.get(f, f) for f in fields]
        what = " and ".join([", ".join(named[:-1]), named[-1]] if len(named) > 1 else named)
        count, evidence = derived.get("count"), derived.get("evidence") or source.get("name") or "its source"
        readings.append(f"{what} derived from {count} {evidence}" if count else f"{what} derived from {evidence}")

    def basis(field: str, values: list) -> str | None:
        return None if not values else "derived" if field in derived_fields else "declared"

    return basis("sectors", sectors), basis("valueChainStages", stages), "; ".join(readings) or None


def _flatten_actor(record: dict) -> tuple:
    actor_id = record["id"]
    names = record.get("names") or []
    preferred = next((n for n in names if n.get("preferred")), names[0] if names else {})
    others = [n.get("value") for n in names if n is not preferred and n.get("value")]
    region_code = record.get("region")
    region = _regions().get(region_code) if region_code else None
    geo = record.get("geo") or {}
    latitude, longitude, precision = _float(geo.get("lat")), _float(geo.get("lon")), "exact"
    if latitude is None or longitude is None:
        # Every actor on the map: fall back to its region's centre, and say so.
        latitude, longitude = (region["lat"], region["lon"]) if region else (None, None)
        precision = "region" if latitude is not None else None
    identifiers = record.get("identifiers") or {}
    sectors = record.get("sectors") or []
    stages = record.get("valueChainStages") or []
    technologies = record.get("technologies") or []
    row = (
        actor_id,
        preferred.get("value") or actor_id,
        " · ".join(others) or None,
        _joined(record.get("acronyms")),
        record.get("actorType"),
        record.get("country"),
        region_code,
        region["name"] if region else None,
        (record.get("address") or {}).get("locality"),
        latitude,
        longitude,
        precision,
        record.get("website"),
        (record.get("contact") or {}).get("email"),
        _text(record.get("description"), preferred.get("lang")),
        _joined(sectors),
        _joined(stages),
        _joined(technologies),
        _joined(record.get("services")),
        _ror(identifiers.get("ror")),
        _pic(identifiers.get("pic")),
        identifiers.get("wikidata"),
        record.get("sizeClass"),
        record.get("foundingYear"),
        record.get("status") or "active",
        *_bases(record, sectors, stages),
    )
    return ("Actor", actor_id, record.get("version"), record.get("dateModified"), row,
            _unique(sectors), _unique(stages), technologies, organisation_keys(record))


def _flatten_project(record: dict) -> tuple:
    project_id = record["id"]
    partners = [p for p in record.get("partners") or [] if isinstance(p, dict)]
    coordinator = next((p for p in partners if p.get("role") == "coordinator"), None)
    countries = {p.get("country") for p in partners if p.get("country")}
    row = (
        project_id,
        # Shown by a name: the title, else the acronym, else the id; title_stated says which it is.
        record.get("title") or record.get("acronym") or project_id,
        record.get("acronym"),
        _text(record.get("description")),
        record.get("programme"),
        record.get("fundingScheme"),
        record.get("call"),
        record.get("grantId"),
        record.get("startDate"),
        record.get("endDate"),
        record.get("status"),
        _eur(record.get("totalBudgetCents")),
        _eur(record.get("euContributionCents")),
        _joined(record.get("topics")),
        coordinator.get("name") if coordinator else None,
        coordinator.get("country") if coordinator else None,
        len(partners),
        len(countries),
        None,  # regions: known once partners are resolved (finalise)
        1 if len(countries) > 1 else 0,
        1 if record.get("title") else 0,
    )
    participations = [
        (
            project_id, position, p.get("actor"), p.get("name"), p.get("country"), p.get("role"),
            _eur(p.get("contributionCents")),
            _ror((p.get("identifiers") or {}).get("ror")),
            _pic((p.get("identifiers") or {}).get("pic")),
            p.get("region"),
        )
        for position, p in enumerate(partners, start=1)
    ]
    return ("Project", project_id, record.get("version"), record.get("dateModified"), row, participations)


def _flatten_offer(record: dict) -> tuple:
    offer_id = record["id"]
    technologies = record.get("technologies") or []
    row = (
        offer_id,
        record.get("title") or offer_id,
        record.get("offerType"),
        record.get("provider"),
        _text(record.get("description")),
        _joined(technologies),
        _joined(record.get("sectors")),
        _joined(record.get("valueChainStages")),
        record.get("conditions"),
        record.get("website"),
        (record.get("contact") or {}).get("email"),
        record.get("country"),
        record.get("region"),
        record.get("validUntil"),
    )
    return ("Offer", offer_id, record.get("version"), record.get("dateModified"), row, technologies)


# Column names in the order of a flattened row followed by the provenance columns writes.py adds.
ACTOR_COLUMNS = (
    "id, name, other_names, acronym, actor_type, country, region, region_name, city, latitude, longitude, "
    "geo_precision, website, email, description, sectors, value_chain_stages, technologies, services, "
    "ror, pic, wikidata, size_class, founding_year, status, sectors_basis, stages_basis, derivation, "
    + PROVENANCE_COLUMNS
)
PROJECT_COLUMNS = (
    "id, title, acronym, description, programme, funding_scheme, call, grant_id, start_date, end_date, status, "
    "total_budget_eur, eu_contribution_eur, topics, coordinator_name, coordinator_country, partners, countries, "
    "regions, cross_border, title_stated, " + PROVENANCE_COLUMNS
)
OFFER_COLUMNS = (
    "id, title, offer_type, provider_id, description, technologies, sectors, value_chain_stages, conditions, "
    "website, email, country, region, valid_until, " + PROVENANCE_COLUMNS
)
