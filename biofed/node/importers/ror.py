"""ROR (Research Organization Registry) schema v2 records as Actors.

One JSON Lines record per organisation, as in ROR's data dumps. The local id
is the ROR id suffix (`https://ror.org/0001h1y25` -> `<node>/actor/0001h1y25`),
so other nodes can refer to the actor without asking. ROR data is CC0-1.0.
"""

from __future__ import annotations

import json
import unicodedata
from decimal import Decimal
from pathlib import Path
from typing import Iterator

from biofed.node.importers import ImportRow, RowError
from biofed.node.importers import values as v
from biofed.node.importers.regions import (iso_country, missing_region_warning, region_for_city, region_for_point,
                                          region_for_subdivision, region_within)

# The first matching ROR type decides; order = how specific a type is for a cluster directory.
TYPE_ORDER = [("education", "university"), ("healthcare", "hospital"), ("company", "company"),
              ("government", "public-body"), ("nonprofit", "non-profit"), ("facility", "research-institute"),
              ("funder", "investor"), ("archive", "other"), ("other", "other")]
STATUSES = {"active", "inactive", "withdrawn"}


def actor_type(ror_types: list[str]) -> str:
    for ror_type, code in TYPE_ORDER:
        if ror_type in ror_types:
            return code
    return "other"


def _degrees(value) -> Decimal:
    # parsed as Decimal already; a float (a caller's own dict) goes through repr, never float formatting
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))


def ror_region(record: dict) -> str | None:
    """The NUTS region of the first location: its coordinates, else its city, else its subdivision."""
    place = (record.get("locations") or [{}])[0].get("geonames_details") or {}
    country = place.get("country_code") or ""
    by_point = None
    if place.get("lat") is not None and place.get("lng") is not None:
        try:
            by_point = region_for_point(_degrees(place["lat"]), _degrees(place["lng"]), country)
        except (ArithmeticError, ValueError):
            by_point = None  # bad coordinates are reported by actor_from_ror
    return (by_point or region_for_city(place.get("name") or "", country)
            or region_for_subdivision(country, place.get("country_subdivision_code")))


def actor_from_ror(record: dict, *, node_id: str, node_region: str | None = None) -> tuple[dict | None, list[RowError]]:
    """Actor content from one ROR v2 record, or None and the reasons."""
    errors: list[RowError] = []
    ror_id = record.get("id") or ""
    suffix = ror_id.removeprefix("https://ror.org/")
    if not ror_id.startswith("https://ror.org/") or not suffix:
        return None, [RowError("/id", f"{ror_id!r} is not a ROR id")]
    names, acronyms = [], []
    for name in record.get("names") or []:
        value = unicodedata.normalize("NFC", (name.get("value") or "").strip())
        types, lang = name.get("types") or [], name.get("lang")
        if not value:
            continue
        if "acronym" in types:
            if value not in acronyms:
                acronyms.append(value)
            continue
        entry = {"value": value}
        if lang:
            entry["lang"] = lang
        if "ror_display" in types:
            entry["preferred"] = True
        if not any(existing["value"] == value and existing.get("lang") == lang for existing in names):
            names.append(entry)
    names.sort(key=lambda n: not n.get("preferred"))  # the display name first
    if not any(n.get("preferred") for n in names):
        errors.append(RowError("/names", "no name has the type ror_display"))
    locations = record.get("locations") or []
    place = locations[0].get("geonames_details") or {} if locations else {}
    country = iso_country(place.get("country_code") or "")
    if not country:
        errors.append(RowError("/locations/0/geonames_details/country_code", "no country"))
    if errors:
        return None, errors
    content: dict = {"id": f"{node_id}/actor/{suffix}", "type": "Actor", "names": names}
    if acronyms:
        content["acronyms"] = acronyms
    content["actorType"] = actor_type(record.get("types") or [])
    websites = [link["value"] for link in record.get("links") or [] if link.get("type") == "website"]
    if websites and websites[0].lower().startswith(("http://", "https://")):
        content["website"] = websites[0]
    if place.get("name"):
        content["address"] = {"locality": unicodedata.normalize("NFC", place["name"]), "country": country}
    content["country"] = country
    region = ror_region(record)
    if region is None and node_region and not place.get("country_subdivision_code") \
            and iso_country(node_region[:2]) == country:
        region = node_region  # no subdivision at all: the node's region is the best we know
    if region:
        content["region"] = region
    if place.get("lat") is not None and place.get("lng") is not None:
        try:
            content["geo"] = {"lat": v.coordinate(_degrees(place["lat"]), limit=90, what="latitude"),
                              "lon": v.coordinate(_degrees(place["lng"]), limit=180, what="longitude")}
        except ValueError as exc:
            return None, [RowError("/locations/0/geonames_details", str(exc))]
    identifiers = {"ror": ror_id}
    for external in record.get("external_ids") or []:
        kind = external.get("type")
        value = external.get("preferred") or (external.get("all") or [None])[0]
        if kind in ("wikidata", "grid", "isni") and value:
            identifiers[kind] = value
    content["identifiers"] = identifiers
    if isinstance(record.get("established"), int):
        content["foundingYear"] = record["established"]
    if record.get("status") in STATUSES:
        content["status"] = record["status"]
    content["sources"] = [{"name": "ROR", "url": ror_id, "licence": "CC0-1.0"}]
    return content, []


def read_ror(path: Path, *, node_id: str, node_region: str | None = None, within: str | None = None,
             scope: str | None = None, evidence: Path | None = None, **_ignored) -> Iterator[ImportRow]:
    """Actors from a ROR v2 JSON Lines file.

    within: keep only records in that NUTS region.
    scope: `life-science` keeps only the records the scope rules keep (scope.py).
    evidence: a CORDIS folder; an organisation that takes part in its (kept)
        projects counts as evidence for the scope, and gets the sectors and
        stages those projects are evidence of, marked as derived (evidence.py).
    """
    from biofed.node.importers import evidence as derivation
    from biofed.node.importers import scope as scopes

    partners = scopes.cordis_participants(Path(evidence), scope) if evidence is not None else {}
    keys = frozenset(partners)
    for number, line in enumerate(Path(path).read_bytes().split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            record = _loads_ror(line)
        except ValueError as exc:
            yield ImportRow(f"line {number}", None, [RowError("/", str(exc))])
            continue
        if within is not None and not region_within(ror_region(record), within):
            continue
        if scope is not None and not scopes.ror_decision(record, scope, keys)[0]:
            continue
        content, errors = actor_from_ror(record, node_id=node_id, node_region=node_region)
        if content is not None and partners:
            matched = {(project.reference, org.org_id): (project, org)
                       for name in content["names"]
                       for project, org in partners.get((content["country"], scopes.name_key(name["value"])), [])}
            derivation.add_derived(content, list(matched.values()))
        locality = ((content or {}).get("address") or {}).get("locality")
        warnings = missing_region_warning(content, f"{locality!r}" if locality else "this place")
        yield ImportRow(f"ror {record.get('id') or f'line {number}'}", content, errors, warnings)


def _loads_ror(line: bytes) -> dict:
    """ROR lines carry JSON numbers with fractions (coordinates): read them as exact Decimals."""
    try:
        record = json.loads(line, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"malformed JSON: {exc}") from None
    if not isinstance(record, dict):
        raise ValueError("a ROR record is a JSON object")
    return record
