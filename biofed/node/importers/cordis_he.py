"""CORDIS's current open-data export (Horizon Europe) as CordisProjects.

The folder of `cordis-HORIZONprojects-csv`: `project.csv`, `organization.csv`
(both required), `euroSciVoc.csv`, `legalBasis.csv`, `topics.csv` (read when
present); the other files of the export are ignored. The official files are
`;`-separated with `"`-quoted fields that may hold line breaks; re-exports
are `,`-separated: the separator is read from each header line. Money has a
decimal point; `geolocation` is `lat,lon` in one field; `nutsCode` is a NUTS 3
code of some vintage (`PL22A`) or a bare country code (`NL`); countries are
CORDIS codes (`UK`, `EL`). The records are made by cordis.py, shared with the
Horizon 2020 extract.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
from decimal import Decimal
from pathlib import Path

from biofed.errors import BiofedError
from biofed.node.importers import values as v
from biofed.node.importers.cordis import CordisProject, Organisation, Participation, _clean
from biofed.node.importers.regions import iso_country, region_for_city, region_for_point

PROJECTS, ORGANISATIONS = "project.csv", "organization.csv"
FILES = (PROJECTS, ORGANISATIONS, "euroSciVoc.csv", "legalBasis.csv", "topics.csv")
REQUIRED_COLUMNS = {PROJECTS: ("id",), ORGANISATIONS: ("projectID", "organisationID", "name", "country", "role")}
ROLES = {"coordinator": "coordinator", "participant": "partner", "partner": "partner", "beneficiary": "partner",
         "associatedpartner": "associated", "thirdparty": "third-party"}


def read_table(path: Path) -> list[dict]:
    """Rows of one export file: `;` or `,` separated (from the header line), `"`-quoted, UTF-8."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BiofedError(f"{path.name}: not UTF-8 at byte {exc.start}") from None
    header = text.split("\n", 1)[0]
    delimiter = ";" if header.count(";") > header.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', strict=True)
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise BiofedError(f"{path.name} line {reader.line_num}: {exc}") from None
    if not rows:
        raise BiofedError(f"{path.name}: empty file")
    columns = [name.strip() for name in rows[0]]
    missing = [name for name in REQUIRED_COLUMNS.get(path.name, ()) if name not in columns]
    if missing:
        raise BiofedError(f"{path.name}: column(s) missing: {', '.join(missing)} (separator {delimiter!r})")
    records = []
    for number, values in enumerate(rows[1:], 2):
        if not any(value.strip() for value in values):
            continue
        if len(values) != len(columns):
            raise BiofedError(f"{path.name} record {number}: {len(values)} fields, the header has {len(columns)}")
        records.append(dict(zip(columns, values)))
    return records


@functools.cache
def _nuts_codes() -> frozenset[str]:
    from biofed.schema.codes import codes

    return frozenset(codes("nuts2021"))


def nuts_region(nuts_code: str, city: str, country: str, geo: tuple[str, str] | None = None) -> str | None:
    """The NUTS 2021 region (level 2, else 1) containing a NUTS 3 code; for a bare country code (or a code
    NUTS 2021 lacks), from the coordinates, else the city (regions.py)."""
    code = nuts_code.strip().upper()
    if len(code) >= 3:
        for candidate in (code[:4], code[:3]):
            if len(candidate) >= 3 and candidate in _nuts_codes() and iso_country(candidate[:2]) == iso_country(country):
                return candidate
    if geo is not None:
        region = region_for_point(Decimal(geo[0]), Decimal(geo[1]), iso_country(country))
        if region:
            return region
    return region_for_city(city, country)


def _geo(value: str) -> tuple[str, str] | None:
    """`"52.2296756,21.0122287"` as 6-decimal strings; None when empty or not a point."""
    parts = [part.strip() for part in (value or "").split(",")]
    if len(parts) != 2 or not all(parts):
        return None
    try:
        return (v.coordinate(parts[0], limit=90, what="latitude"), v.coordinate(parts[1], limit=180, what="longitude"))
    except ValueError:
        return None


def _website(value: str) -> str:
    value = (value or "").strip()
    if value.lower().startswith(("http://", "https://")):
        return value
    return f"https://{value}" if value.lower().startswith("www.") and " " not in value else ""


def organisation(row: dict) -> Organisation:
    pic = (row.get("organisationID") or "").strip()
    name = _clean(row.get("name", ""))
    country = iso_country(row.get("country", ""))
    if not pic:  # never seen in the export; an id from name and country rather than none
        pic = hashlib.sha256(f"{name}|{country}".encode()).hexdigest()
    city = _clean(row.get("city", ""))
    geo = _geo(row.get("geolocation", ""))
    return Organisation(
        org_id=pic, name=name, short_name=_clean(row.get("shortName", "")), country=country,
        activity_type=(row.get("activityType") or "").strip().upper(), street=_clean(row.get("street", "")),
        city=city, region=nuts_region(row.get("nutsCode", ""), city, country, geo),
        postal_code=_clean(row.get("postCode", "")), website=_website(row.get("organizationURL", "")),
        vat=(row.get("vatNumber") or "").strip().upper(), geo=geo,
        sme=(row.get("SME") or "").strip().lower() in ("true", "1", "yes"))


def _role(value: str) -> str:
    return ROLES.get((value or "").strip().lower(), "partner")


def _order(row: dict) -> int:
    text = (row.get("order") or "").strip()
    return int(text) if text.isdigit() else 1_000_000


def _by_project(folder: Path, name: str) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    if (folder / name).is_file():
        for row in read_table(folder / name):
            grouped.setdefault((row.get("projectID") or "").strip(), []).append(row)
    return grouped


def read_folder(folder: Path) -> list[CordisProject]:
    """The projects of a Horizon Europe export folder, with their participants, fields and programme parts."""
    missing = [name for name in (PROJECTS, ORGANISATIONS) if not (folder / name).is_file()]
    if missing:
        raise BiofedError(f"{folder}: CORDIS Horizon Europe files missing: {', '.join(missing)} "
                          f"(looked for {', '.join(FILES)})")
    members = _by_project(folder, ORGANISATIONS)
    organisations: dict[str, Organisation] = {}
    fields, legal, topics = (_by_project(folder, name) for name in ("euroSciVoc.csv", "legalBasis.csv", "topics.csv"))
    projects = []
    for row in read_table(folder / PROJECTS):
        project_id = (row.get("id") or "").strip()
        participations = []
        rows = sorted(members.get(project_id, []), key=lambda r: (_role(r.get("role")) != "coordinator", _order(r)))
        for member in rows:
            org = organisation(member)
            org = organisations.setdefault(org.org_id, org)  # one Organisation per PIC, as first seen
            participations.append(Participation(org, _role(member.get("role"))))
        vocabulary = fields.get(project_id, [])
        projects.append(CordisProject(
            reference=project_id, programme="HORIZON-EUROPE", id_prefix="he", acronym=row.get("acronym", ""),
            title=row.get("title", ""), objective=row.get("objective", ""), status=row.get("status", ""),
            funding_scheme=row.get("fundingScheme", ""), call=row.get("subCall") or row.get("masterCall") or "",
            start=row.get("startDate", ""), end=row.get("endDate", ""), total_cost=row.get("totalCost", ""),
            ec_max=row.get("ecMaxContribution", ""),
            programme_codes=[r["legalBasis"].strip() for r in legal.get(project_id, []) if r.get("legalBasis")]
            or v.split_list(row.get("legalBasis")),
            topics=list(dict.fromkeys(v.split_list(row.get("topics"))
                                      + [r["topic"].strip() for r in topics.get(project_id, []) if r.get("topic")])),
            fields=[r["euroSciVocPath"].strip() for r in vocabulary if r.get("euroSciVocPath")],
            field_titles=[_clean(r["euroSciVocTitle"]) for r in vocabulary if r.get("euroSciVocTitle")],
            participations=participations))
    return projects
