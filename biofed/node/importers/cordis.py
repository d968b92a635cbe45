"""CORDIS Horizon 2020 projects and participants as Projects and Actors.

Reads the tab-separated CORDIS extract (projects.tsv, participations.tsv,
organisations.tsv, organisations-details.tsv; see biofed/data/README.md):
no quoting, decimal commas, CORDIS country codes. Upstream text is used as
it is except for two mappings: mojibake (UTF-8 read as Mac Roman) is undone
where that round-trips, and strings are NFC-normalised. Names in which
CORDIS lost characters (U+FFFD) are kept as they are: the organisation is
real and its PIC identifies it; the name is replaced by the details file's
name when that one is clean.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from biofed.errors import BiofedError
from biofed.node.importers import ImportRow, RowError
from biofed.node.importers import values as v
from biofed.node.importers.regions import (iso_country, missing_region_warning, region_for_city, region_within,
                                          repair_mojibake)

HEALTH_PREFIX = "H2020-EU.3.1."
FILES = ("projects.tsv", "participations.tsv", "organisations.tsv", "organisations-details.tsv")
ACTOR_TYPES = {"HES": "university", "REC": "research-institute", "PRC": "company", "PUB": "public-body",
               "OTH": "other"}
STATUSES = {"SIGNED": "signed", "ONGOING": "ongoing", "CLOSED": "closed", "TERMINATED": "terminated"}
# CORDIS data: Commission Decision 2011/833/EU (reuse with attribution); no SPDX id exists for it.
LICENCE = "LicenseRef-EC-Decision-2011-833"
SOURCE_NAME = "CORDIS"


@dataclass
class Organisation:
    """A CORDIS participant, joined from organisations.tsv and organisations-details.tsv."""

    org_id: str  # a 9-digit PIC or a 32-hex hash
    name: str
    short_name: str
    country: str  # ISO 3166-1 (GB, GR)
    activity_type: str
    street: str
    city: str
    region: str | None

    @property
    def pic(self) -> str | None:
        return self.org_id if re.fullmatch(r"[0-9]{9}", self.org_id) else None

    @property
    def local_id(self) -> str:
        """`pic-999854661`, or `org-<first 12 hex digits>` for organisations without a PIC."""
        if self.pic:
            return f"pic-{self.pic}"
        return f"org-{self.org_id.lower()[:12]}"


def read_tsv(path: Path) -> list[dict]:
    """Rows of a CORDIS TSV file: no quoting, CRLF or LF line ends, UTF-8."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BiofedError(f"{path.name}: not UTF-8 at byte {exc.start}") from None
    lines = text.split("\n")
    header = lines[0].rstrip("\r").split("\t")
    rows = []
    for number, line in enumerate(lines[1:], 2):
        line = line.rstrip("\r")
        if not line:
            continue
        values = line.split("\t")
        if len(values) != len(header):
            raise BiofedError(f"{path.name} line {number}: {len(values)} fields, the header has {len(header)}")
        rows.append(dict(zip(header, values)))
    return rows


def _clean(text: str) -> str:
    return unicodedata.normalize("NFC", repair_mojibake(text or "").strip())


def _name_key(name: str) -> str:
    return re.sub(r"\s+", " ", _clean(name)).upper()


def coordinator_of(project: dict, organisations: list[dict]) -> dict | None:
    """The participant whose name is the project's `coordinator` (CORDIS gives only the name)."""
    wanted = _name_key(project.get("coordinator", ""))
    if not wanted:
        return None
    matches = [org for org in organisations if _name_key(org["name"]) == wanted]
    same_country = [org for org in matches if org.get("country") == project.get("coordinatorCountry")]
    return (same_country or matches or [None])[0]


def organisation_region(org: dict, details: dict | None) -> str | None:
    """NUTS region of a CORDIS organisation: by country for one-region countries, else by city."""
    city = details.get("city", "") if details else ""
    return region_for_city(city, org.get("country", ""))


def _organisation(org: dict, details: dict | None) -> Organisation:
    name = _clean(org["name"])
    short_name = _clean(org.get("shortName", ""))
    if details:
        detail_name = _clean(details.get("name", ""))
        if detail_name and "\ufffd" in name and "\ufffd" not in detail_name:
            name = detail_name
        detail_short = _clean(details.get("shortName", ""))
        if detail_short and (not short_name or "\ufffd" in short_name) and "\ufffd" not in detail_short:
            short_name = detail_short
    return Organisation(
        org_id=org["new_org_id"], name=name, short_name=short_name, country=iso_country(org.get("country", "")),
        activity_type=(details or {}).get("activityType", ""), street=_clean((details or {}).get("street", "")),
        city=_clean((details or {}).get("city", "")), region=organisation_region(org, details))


def actor_from_organisation(org: Organisation, *, node_id: str) -> tuple[dict | None, list[RowError]]:
    if not org.name:
        return None, [RowError("name", "organisation without a name")]
    if not re.fullmatch(r"[A-Z]{2}", org.country):
        return None, [RowError("country", f"{org.country!r} is not a country code")]
    content: dict = {"id": f"{node_id}/actor/{org.local_id}", "type": "Actor",
                     "names": [{"value": org.name, "preferred": True}]}
    short = org.short_name
    if short and short.upper() != org.name.upper():
        if " " not in short and len(short) <= 20:
            content["acronyms"] = [short]
        else:
            content["names"].append({"value": short})
    content["actorType"] = ACTOR_TYPES.get(org.activity_type, "other")
    address = {}
    if org.street:
        address["street"] = org.street
    if org.city:
        address["locality"] = org.city
    if address:
        address["country"] = org.country
        content["address"] = address
    content["country"] = org.country
    if org.region:
        content["region"] = org.region
    if org.pic:
        content["identifiers"] = {"pic": org.pic}
    content["sources"] = [{"name": SOURCE_NAME, "licence": LICENCE}]
    return content, []


def _date(value: str, field: str, errors: list[RowError]) -> str | None:
    value = value.strip()
    if not value:
        return None  # 767 projects upstream have no start date: omitted, not invented
    try:
        return datetime.date.fromisoformat(value).isoformat()
    except ValueError:
        errors.append(RowError(field, f"{value!r} is not a date (YYYY-MM-DD)"))
        return None


def project_from_row(project: dict, participants: list[Organisation], coordinator: Organisation | None, *,
                     node_id: str, actor_id_for: Callable[[Organisation], str | None]) -> tuple[dict | None, list[RowError]]:
    errors: list[RowError] = []
    reference = project.get("reference", "").strip()
    if not re.fullmatch(r"[0-9A-Za-z._-]+", reference):
        return None, [RowError("reference", f"{reference!r} is not a grant reference")]
    acronym = _clean(project.get("acronym", ""))
    content: dict = {"id": f"{node_id}/project/h2020-{reference.lower()}", "type": "Project",
                     "title": acronym or f"H2020 grant {reference}"}  # the extract has no titles
    if acronym:
        content["acronym"] = acronym
    content["programme"] = "H2020"
    codes = v.split_list(project.get("programme"))
    if codes:
        content["programmeCodes"] = codes
    for field, key in (("fundingScheme", "fundingScheme"), ("call", "call")):
        if project.get(field, "").strip():
            content[key] = project[field].strip()
    content["grantId"] = reference
    start = _date(project.get("startDate", ""), "startDate", errors)
    end = _date(project.get("endDate", ""), "endDate", errors)
    if start:
        content["startDate"] = start
    if end:
        content["endDate"] = end
    status = project.get("status", "").strip().upper()
    if status:
        if status in STATUSES:
            content["status"] = STATUSES[status]
        else:
            errors.append(RowError("status", f"unknown CORDIS status {status!r}"))
    for field, key in (("totalCost", "totalBudgetCents"), ("ecMaxContribution", "euContributionCents")):
        if project.get(field, "").strip():
            try:
                content[key] = v.cents(project[field])
            except ValueError as exc:
                errors.append(RowError(field, str(exc)))
    topics = v.split_list(project.get("topics"))
    if topics:
        content["topics"] = topics
    partners = []
    ordered = ([coordinator] if coordinator else []) + [p for p in participants if p is not coordinator]
    for org in ordered:
        partner: dict = {}
        actor = actor_id_for(org)
        if actor:
            partner["actor"] = actor
        partner.update(name=org.name, country=org.country, role="coordinator" if org is coordinator else "partner")
        if org.pic:
            partner["identifiers"] = {"pic": org.pic}
        partners.append(partner)
    if partners:
        content["partners"] = partners
    content["sources"] = [{"name": SOURCE_NAME, "url": f"https://cordis.europa.eu/project/id/{reference}",
                           "licence": LICENCE}]
    if errors:
        return None, errors
    return content, []


class CordisData:
    """The four CORDIS files of one folder, joined."""

    def __init__(self, folder: Path, *, programme_prefix: str | None = None):
        missing = [name for name in FILES if not (folder / name).is_file()]
        if missing:
            raise BiofedError(f"{folder}: CORDIS files missing: {', '.join(missing)}")
        self.projects = [p for p in read_tsv(folder / "projects.tsv")
                         if programme_prefix is None
                         or any(code.startswith(programme_prefix) for code in p.get("programme", "").split(";"))]
        details = {row["orgId"]: row for row in read_tsv(folder / "organisations-details.tsv")}
        self.raw_organisations = {row["new_org_id"]: row for row in read_tsv(folder / "organisations.tsv")}
        self.organisations = {org_id: _organisation(row, details.get(org_id))
                              for org_id, row in self.raw_organisations.items()}
        self.members: dict[str, list[str]] = {}
        for row in read_tsv(folder / "participations.tsv"):
            if row["new_org_id"] in self.organisations:  # removed participants (GDPR) are gone from both
                self.members.setdefault(row["projectRcn"], []).append(row["new_org_id"])

    def participants(self, project: dict) -> list[Organisation]:
        return [self.organisations[org_id] for org_id in self.members.get(project["rcn"], [])]

    def coordinator(self, project: dict) -> Organisation | None:
        org_ids = self.members.get(project["rcn"], [])
        row = coordinator_of(project, [self.raw_organisations[i] for i in org_ids])
        return self.organisations[row["new_org_id"]] if row else None


def cordis_folder(path: Path) -> Path:
    """The CORDIS folder from the folder itself or any of its files."""
    path = Path(path)
    return path if path.is_dir() else path.parent


def read_cordis(path: Path, *, node_id: str, kind: str | None = None, within: str | None = None,
                actor_id_for: Callable[[Organisation], str | None] | None = None,
                programme_prefix: str | None = None, **_ignored) -> Iterator[ImportRow]:
    """Actors (participants) then Projects from a CORDIS folder.

    within: a NUTS code; only organisations in that region, and only projects
        whose coordinator is in it, are yielded (how one node takes its share).
    actor_id_for: record id of a participant's Actor, for partner references
        across nodes; by default the actors this same call yields.
    programme_prefix: keep only projects with a programme code starting with it
        (e.g. `H2020-EU.3.1.` for health).
    """
    data = CordisData(cordis_folder(path), programme_prefix=programme_prefix)
    involved: dict[str, Organisation] = {}
    for project in data.projects:
        for org in data.participants(project):
            involved.setdefault(org.org_id, org)
    mine = {org_id for org_id, org in involved.items() if region_within(org.region, within)}
    if actor_id_for is None:
        def actor_id_for(org: Organisation) -> str | None:
            return f"{node_id}/actor/{org.local_id}" if org.org_id in mine else None
    if kind in (None, "actor"):
        for org_id in sorted(mine):
            org = involved[org_id]
            content, errors = actor_from_organisation(org, node_id=node_id)
            where = f"city {org.city!r}" if org.city else "an organisation without city"
            warnings = missing_region_warning(content, where)
            yield ImportRow(f"cordis organisation {org_id}", content, errors, warnings)
    if kind in (None, "project"):
        for project in data.projects:
            coordinator = data.coordinator(project)
            if within is not None and (coordinator is None or not region_within(coordinator.region, within)):
                continue
            content, errors = project_from_row(project, data.participants(project), coordinator,
                                               node_id=node_id, actor_id_for=actor_id_for)
            yield ImportRow(f"cordis project {project.get('reference') or project.get('rcn')}", content, errors)
