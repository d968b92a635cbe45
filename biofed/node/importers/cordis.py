"""CORDIS projects and participants as Projects and Actors.

Two layouts are read: the Horizon 2020 extract (this module) and CORDIS's
current Horizon Europe export (`cordis_he.py`). Both become the same
`CordisProject` and `Organisation` objects, from which one set of functions
makes the records (`project_record`, `actor_from_organisation`) and applies
the options (`within`, `scope`, derived sectors and stages).

Horizon 2020: the tab-separated CORDIS extract (projects.tsv, participations.tsv,
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
from dataclasses import dataclass, field
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
    postal_code: str = ""
    website: str = ""
    vat: str = ""
    geo: tuple[str, str] | None = None  # (lat, lon) as 6-decimal strings
    sme: bool = False

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
    content["actorType"] = "sme" if org.sme and org.activity_type == "PRC" else ACTOR_TYPES.get(org.activity_type, "other")
    if org.website:
        content["website"] = org.website
    address = {}
    if org.street:
        address["street"] = org.street
    if org.postal_code:
        address["postalCode"] = org.postal_code
    if org.city:
        address["locality"] = org.city
    if address:
        address["country"] = org.country
        content["address"] = address
    content["country"] = org.country
    if org.region:
        content["region"] = org.region
    if org.geo:
        content["geo"] = {"lat": org.geo[0], "lon": org.geo[1]}
    if org.pic:
        content["identifiers"] = {"pic": org.pic}
    if org.vat and re.fullmatch(r"[A-Z]{2}[0-9A-Za-z+*.]{2,13}", org.vat):
        content.setdefault("identifiers", {})["vat"] = org.vat
    content["sources"] = [{"name": SOURCE_NAME, "licence": LICENCE}]
    return content, []


@dataclass
class Participation:
    org: Organisation
    role: str  # a partner-roles code: coordinator, partner, associated, third-party


@dataclass
class CordisProject:
    """One project of either CORDIS layout, with its participants (the coordinator first)."""

    reference: str  # the grant agreement number
    programme: str  # H2020 or HORIZON-EUROPE
    id_prefix: str  # h2020 or he: the record id is <node>/project/<prefix>-<reference>
    acronym: str = ""
    title: str = ""  # empty when the source has none (the H2020 extract)
    objective: str = ""
    status: str = ""
    funding_scheme: str = ""
    call: str = ""
    start: str = ""
    end: str = ""
    total_cost: str = ""
    ec_max: str = ""
    programme_codes: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)  # euroSciVoc paths, `/medical and health sciences/...`
    field_titles: list[str] = field(default_factory=list)  # their last segment, `vaccines`
    participations: list[Participation] = field(default_factory=list)

    @property
    def source(self) -> str:
        return f"cordis project {self.reference}"

    @property
    def coordinator(self) -> Organisation | None:
        return next((p.org for p in self.participations if p.role == "coordinator"), None)


def _date(value: str, field_name: str, errors: list[RowError]) -> str | None:
    value = value.strip()
    if not value:
        return None  # 767 projects upstream have no start date: omitted, not invented
    try:
        return datetime.date.fromisoformat(value).isoformat()
    except ValueError:
        errors.append(RowError(field_name, f"{value!r} is not a date (YYYY-MM-DD)"))
        return None


def _line(text: str) -> str:
    return re.sub(r"\s+", " ", _clean(text))


def project_record(project: CordisProject, *, node_id: str,
                   actor_id_for: Callable[[Organisation], str | None]) -> tuple[dict | None, list[RowError]]:
    """Project content from a CORDIS project of either layout, or None and the reasons."""
    errors: list[RowError] = []
    reference = project.reference.strip()
    if not re.fullmatch(r"[0-9A-Za-z._-]+", reference):
        return None, [RowError("reference", f"{reference!r} is not a grant reference")]
    title, acronym = _line(project.title), _line(project.acronym)
    if not title and not acronym:
        return None, [RowError("title", "the project has neither a title nor an acronym")]
    content: dict = {"id": f"{node_id}/project/{project.id_prefix}-{reference.lower()}", "type": "Project"}
    if title:  # no title in the source: none in the record (the acronym is not a title)
        content["title"] = title
    if acronym:
        content["acronym"] = acronym
    objective = _clean(project.objective)
    if objective:
        if len(objective) > 10000:
            errors.append(RowError("objective", f"{len(objective)} characters, over the limit of 10000"))
        content["description"] = {"en": objective}  # CORDIS publishes objectives in English
    content["programme"] = project.programme
    if project.programme_codes:
        content["programmeCodes"] = list(dict.fromkeys(project.programme_codes))
    for value, key in ((project.funding_scheme, "fundingScheme"), (project.call, "call")):
        if value.strip():
            content[key] = value.strip()
    content["grantId"] = reference
    start = _date(project.start, "startDate", errors)
    end = _date(project.end, "endDate", errors)
    if start:
        content["startDate"] = start
    if end:
        content["endDate"] = end
    status = project.status.strip().upper()
    if status:
        if status in STATUSES:
            content["status"] = STATUSES[status]
        else:
            errors.append(RowError("status", f"unknown CORDIS status {status!r}"))
    for value, column, key in ((project.total_cost, "totalCost", "totalBudgetCents"),
                               (project.ec_max, "ecMaxContribution", "euContributionCents")):
        if value.strip():
            try:
                content[key] = v.cents(value)
            except ValueError as exc:
                errors.append(RowError(column, str(exc)))
    topics = list(dict.fromkeys(t for t in project.topics + project.field_titles if t))
    if topics:
        content["topics"] = topics
    partners, seen = [], set()
    for participation in project.participations:
        org = participation.org
        if org.org_id in seen:  # one organisation, several roles: listed once, by its first (strongest) role
            continue
        seen.add(org.org_id)
        partner: dict = {}
        actor = actor_id_for(org)
        if actor:
            partner["actor"] = actor
        partner.update(name=org.name, country=org.country, role=participation.role)
        if org.region:
            partner["region"] = org.region
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
    """The four files of the Horizon 2020 extract, joined into CordisProjects."""

    def __init__(self, folder: Path, *, programme_prefix: str | None = None):
        missing = [name for name in FILES if not (folder / name).is_file()]
        if missing:
            raise BiofedError(f"{folder}: CORDIS files missing: {', '.join(missing)}")
        self.rows = [p for p in read_tsv(folder / "projects.tsv")
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
        self.projects = [self._project(row) for row in self.rows]

    def _project(self, row: dict) -> CordisProject:
        org_ids = self.members.get(row["rcn"], [])
        chosen = coordinator_of(row, [self.raw_organisations[i] for i in org_ids])
        coordinator = self.organisations[chosen["new_org_id"]] if chosen else None
        participants = [self.organisations[i] for i in org_ids]
        participations = ([Participation(coordinator, "coordinator")] if coordinator else []) + [
            Participation(org, "partner") for org in participants if org is not coordinator]
        return CordisProject(
            reference=row.get("reference", "") or row.get("rcn", ""), programme="H2020", id_prefix="h2020",
            acronym=row.get("acronym", ""), status=row.get("status", ""),
            funding_scheme=row.get("fundingScheme", ""), call=row.get("call", ""),
            start=row.get("startDate", ""), end=row.get("endDate", ""), total_cost=row.get("totalCost", ""),
            ec_max=row.get("ecMaxContribution", ""), programme_codes=v.split_list(row.get("programme")),
            topics=v.split_list(row.get("topics")), participations=participations)


def cordis_folder(path: Path) -> Path:
    """The CORDIS folder from the folder itself or any of its files."""
    path = Path(path)
    return path if path.is_dir() else path.parent


def cordis_projects(path: Path, *, programme_prefix: str | None = None) -> list[CordisProject]:
    """The projects of a CORDIS folder, Horizon 2020 or Horizon Europe, told apart by the file names."""
    from biofed.node.importers import cordis_he

    folder = cordis_folder(path)
    if (folder / "projects.tsv").is_file():
        return CordisData(folder, programme_prefix=programme_prefix).projects
    if (folder / cordis_he.PROJECTS).is_file() or (folder / cordis_he.ORGANISATIONS).is_file():
        projects = cordis_he.read_folder(folder)
        if programme_prefix is not None:
            projects = [p for p in projects if any(c.startswith(programme_prefix) for c in p.programme_codes)]
        return projects
    raise BiofedError(f"{folder}: not a CORDIS export: looked for {', '.join(FILES)} (Horizon 2020) "
                      f"and {', '.join(cordis_he.FILES)} (Horizon Europe)")


def read_cordis(path: Path, *, node_id: str, kind: str | None = None, within: str | None = None,
                actor_id_for: Callable[[Organisation], str | None] | None = None,
                programme_prefix: str | None = None, scope: str | None = None, derive: bool = True,
                **_ignored) -> Iterator[ImportRow]:
    """Actors (participants) then Projects from a CORDIS folder (Horizon 2020 or Horizon Europe).

    within: a NUTS code; only organisations in that region, and only projects
        whose coordinator is in it, are yielded (how one node takes its share).
    actor_id_for: record id of a participant's Actor, for partner references
        across nodes; by default the actors this same call yields.
    programme_prefix: keep only projects with a programme code starting with it
        (e.g. `H2020-EU.3.1.` for health).
    scope: `life-science` keeps only the projects the scope rules keep
        (scope.py, scope-life-science.csv), and their participants.
    derive: give actors the sectors and value-chain stages their projects are
        evidence of (evidence.py, derivations.csv), recorded as derived.
    """
    from biofed.node.importers import evidence, scope as scopes

    projects = cordis_projects(path, programme_prefix=programme_prefix)
    if scope is not None:
        projects = [p for p in projects if scopes.cordis_project_kept(p, scope)]
    involved: dict[str, Organisation] = {}
    projects_of: dict[str, list[CordisProject]] = {}
    for project in projects:
        for participation in project.participations:
            involved.setdefault(participation.org.org_id, participation.org)
            projects_of.setdefault(participation.org.org_id, []).append(project)
    mine = {org_id for org_id, org in involved.items() if region_within(org.region, within)}
    if actor_id_for is None:
        def actor_id_for(org: Organisation) -> str | None:
            return f"{node_id}/actor/{org.local_id}" if org.org_id in mine else None
    if kind in (None, "actor"):
        for org_id in sorted(mine):
            org = involved[org_id]
            content, errors = actor_from_organisation(org, node_id=node_id)
            if content is not None and derive:
                evidence.add_derived(content, [(p, org) for p in projects_of[org_id]])
            where = f"city {org.city!r}" if org.city else "an organisation without city"
            warnings = missing_region_warning(content, where)
            yield ImportRow(f"cordis organisation {org_id}", content, errors, warnings)
    if kind in (None, "project"):
        for project in projects:
            coordinator = project.coordinator
            if within is not None and (coordinator is None or not region_within(coordinator.region, within)):
                continue
            content, errors = project_record(project, node_id=node_id, actor_id_for=actor_id_for)
            yield ImportRow(project.source, content, errors)
