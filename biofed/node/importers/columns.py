"""The spreadsheet column mapping shared by the CSV and XLSX importers.

One row is one record. Column names are case-insensitive (`Postal code`,
`postal_code` and `POSTAL-CODE` are the same column); multi-valued cells are
`;`-separated. docs/importing.md lists every column.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from biofed.node.importers import RowError
from biofed.node.importers import values as v
from biofed.node.importers.identity import local_id_from, match_keys, name_of
from biofed.node.importers.personal import personal_address
from biofed.node.importers.regions import (iso_country, nuts_countries, place_for_city, region_for_city,
                                          region_for_point)

COMMON = ("id", "type", "description", "description_lang", "website", "email", "phone", "contact_form",
          "country", "region", "sectors", "value_chain_stages", "technologies")
ACTOR = ("name", "name_lang", "other_names", "acronym", "actor_type", "services", "street", "postal_code", "city",
         "lat", "lon", "ror", "pic", "vat", "lei", "wikidata", "size_class", "founding_year", "status",
         "memberships")
PROJECT = ("title", "acronym", "programme", "programme_codes", "funding_scheme", "call", "grant_id", "start_date",
           "end_date", "status", "total_budget", "eu_contribution", "co_funding_rate", "topics", "coordinator",
           "partners", "links")
OFFER = ("title", "offer_type", "provider", "conditions", "valid_until")
COLUMNS = {"actor": set(COMMON + ACTOR), "project": set(COMMON + PROJECT) - {"technologies", "sectors",
           "value_chain_stages", "phone", "email", "contact_form", "country", "region", "website"},
           "offer": set(COMMON + OFFER)}
ALL_COLUMNS = set().union(*COLUMNS.values())
# Countries whose postcodes are all digits of one length: a number cell can only have lost leading zeros.
_POSTCODE_DIGITS = {"DE": 5, "FR": 5, "IT": 5, "ES": 5, "FI": 5, "US": 5}
_DESCRIPTION_LANG = re.compile(r"^description_([a-z]{2,3})$")


def column_name(header: Any) -> str:
    """`Postal code` -> `postal_code`."""
    return re.sub(r"[\s-]+", "_", v.text_of(header).lower())


def known_column(name: str) -> bool:
    return name in ALL_COLUMNS or bool(_DESCRIPTION_LANG.match(name))


def _code(value: str, code_list: str, column: str) -> str:
    from biofed.schema.codes import codes

    code = re.sub(r"[\s_]+", "-", value.strip().lower())
    allowed = codes(code_list)
    if code not in allowed:
        raise ValueError(f"unknown code {value!r}; use one of {', '.join(allowed)}")
    return code


def _country(value: str) -> str:
    from biofed.schema.codes import codes

    code = iso_country(value)
    if code not in codes("countries"):
        raise ValueError(f"unknown country {value!r}; use an ISO 3166-1 alpha-2 code such as DE, FR, GB")
    return code


def _region(value: str) -> str:
    from biofed.schema.codes import codes

    code = value.strip().upper()
    if code not in codes("nuts2021"):
        raise ValueError(f"unknown region {value!r}; use a NUTS 2021 code of level 1 or 2 such as DE1 or DE11")
    return code


def _email(value: str, names: list[str]) -> str:
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}", value):
        raise ValueError(f"{value!r} is not an e-mail address")
    reason = personal_address(value, names)
    if reason:
        raise ValueError(reason)
    return value


_WEB_ADDRESS = re.compile(r"^https?://[^\s/$.?#].[^\s]*$", re.IGNORECASE)
_BARE_HOST = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}(?:[/?#]\S*)?$", re.IGNORECASE)


def _url(value: str) -> str:
    if not _WEB_ADDRESS.match(value):
        raise ValueError(f"{value!r} is not a web address starting with http:// or https://")
    return value


def _partner(entry: str, role: str, node_id: str) -> dict:
    parts = [part.strip() for part in entry.split("|")]
    if len(parts) not in (2, 3) or not parts[0]:
        raise ValueError(f"{entry!r} is not a partner; write `Name | CC` or `Name | CC | actor id`")
    partner = {"name": parts[0], "country": _country(parts[1]), "role": role}
    if len(parts) == 3 and parts[2]:
        partner["actor"] = v.actor_ref(parts[2], node_id=node_id)
    return partner


class _Row:
    """Collects the mapped fields, the errors and the warnings (values converted, not refused) of one row."""

    def __init__(self, cells: dict[str, Any]):
        self.cells = cells
        self.texts = {column: v.text_of(value) for column, value in cells.items()}  # each cell as text, once
        self.errors: list[RowError] = []
        self.warnings: list[RowError] = []

    def url(self, column: str, value=None) -> str | None:
        """A web address; a bare host (`www.example.com`) gets `https://` and a warning."""
        text = v.text_of(self.cells.get(column) if value is None else value)
        if not text:
            return None
        if not _WEB_ADDRESS.match(text) and _BARE_HOST.match(text):
            self.warnings.append(RowError(column, f"{text!r} has no scheme; read as 'https://{text}'"))
            text = f"https://{text}"
        try:
            return _url(text)
        except ValueError as exc:
            self.errors.append(RowError(column, str(exc)))
            return None

    def year(self, column: str) -> int | None:
        """A year; a date cell (Excel turns `2005` into 01.01.2005 in a date column) gives its year, with a warning."""
        raw = self.cells.get(column)
        if isinstance(raw, (datetime.date, datetime.datetime)):
            self.warnings.append(RowError(column, f"a date cell ({raw:%Y-%m-%d}); read as the year {raw.year} "
                                                  "(format the column as a number)"))
            raw = raw.year
        return self.get(column, v.year_of, raw)

    def postal_code(self, country: str | None) -> str | None:
        """A postcode; a number cell that lost its leading zero (`1067` for Dresden's 01067) is padded, with a warning."""
        raw = self.cells.get("postal_code")
        width = _POSTCODE_DIGITS.get(country or "")
        if isinstance(raw, (int, float)) and not isinstance(raw, bool) and width and len(v.text_of(raw)) < width:
            padded = v.text_of(raw).zfill(width)
            self.warnings.append(RowError("postal_code", f"the number {v.text_of(raw)} lost its leading zero; "
                                                         f"read as {padded} (format the column as text)"))
            return padded
        return self.get("postal_code")

    def text(self, column: str) -> str:
        return self.texts.get(column, "")

    def get(self, column: str, parse=None, raw=None):
        """The parsed value of a column, or None when empty or unparseable (an error is recorded)."""
        text = self.texts.get(column, "") if raw is None else v.text_of(raw)
        if text == "":
            return None
        try:
            return parse(self.cells[column] if raw is None else raw) if parse else text
        except ValueError as exc:
            self.errors.append(RowError(column, str(exc)))
            return None

    def codes(self, column: str, code_list: str) -> list[str] | None:
        items = v.split_list(self.cells.get(column))
        result = []
        for item in items:
            try:
                result.append(_code(item, code_list, column))
            except ValueError as exc:
                self.errors.append(RowError(column, str(exc)))
        return result or None


def _put(content: dict, key: str, value) -> None:
    if value not in (None, "", [], {}):
        content[key] = value


def _description(row: _Row) -> dict | None:
    texts = {}
    plain = row.text("description")
    if plain:
        lang = row.text("description_lang").lower() or "und"
        if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})*", lang):
            row.errors.append(RowError("description_lang", f"{lang!r} is not a language tag such as en or de"))
        texts[lang] = plain
    for column in row.cells:
        match = _DESCRIPTION_LANG.match(column)
        if match and row.text(column):
            texts[match.group(1)] = row.text(column)
    return texts or None


def _contact(row: _Row, names: list[str]) -> dict | None:
    contact = {}
    _put(contact, "email", row.get("email", lambda x: _email(v.text_of(x), names)))
    _put(contact, "phone", row.get("phone"))
    _put(contact, "contactForm", row.url("contact_form"))
    return contact or None


def _actor(row: _Row, content: dict, node_id: str, node_region: str | None) -> None:
    name = row.text("name")
    if not name:
        row.errors.append(RowError("name", "an actor needs a name"))
    names = [{"value": name, "preferred": True}] if name else []
    lang = row.text("name_lang").lower()
    if lang and names:
        names[0]["lang"] = lang
    names += [{"value": other} for other in v.split_list(row.cells.get("other_names")) if other != name]
    _put(content, "names", names)
    _put(content, "acronyms", v.split_list(row.cells.get("acronym")))
    actor_type = row.get("actor_type", lambda x: _code(v.text_of(x), "actor-types", "actor_type"))
    if actor_type is None and not row.text("actor_type"):
        row.errors.append(RowError("actor_type", "an actor needs a type, e.g. sme, university, hospital"))
    _put(content, "actorType", actor_type)
    _put(content, "valueChainStages", row.codes("value_chain_stages", "value-chain-stages"))
    _put(content, "sectors", row.codes("sectors", "sectors"))
    _put(content, "technologies", v.split_list(row.cells.get("technologies")))
    _put(content, "services", v.split_list(row.cells.get("services")))
    _put(content, "description", _description(row))
    _put(content, "website", row.url("website"))
    _put(content, "contact", _contact(row, [n["value"] for n in names]))
    country = row.get("country", lambda x: _country(v.text_of(x)))
    if country is None and not row.text("country") and node_region:
        country = iso_country(node_region[:2])  # a member directory is mostly the node's own country
    if country is None and not row.text("country"):
        row.errors.append(RowError("country", "an actor needs a country (ISO code such as DE)"))
    address = {}
    _put(address, "street", row.get("street"))
    _put(address, "postalCode", row.postal_code(country))
    _put(address, "locality", row.get("city"))
    if address and country:
        address["country"] = country
    _put(content, "address", address)
    _put(content, "country", country)
    region = row.get("region", lambda x: _region(v.text_of(x)))
    lat = row.get("lat", lambda x: v.coordinate(x, limit=90, what="latitude"))
    lon = row.get("lon", lambda x: v.coordinate(x, limit=180, what="longitude"))
    if (lat is None) != (lon is None) and not row.errors:
        row.errors.append(RowError("lat" if lat is None else "lon", "give both lat and lon, or neither"))
    if lat is not None and lon is not None:
        content["geo"] = {"lat": lat, "lon": lon}
    if region is None and not row.text("region") and country:
        region = _place(row, content, country)
    _put(content, "region", region)
    identifiers = {}
    _put(identifiers, "ror", row.get("ror", _ror_url))
    _put(identifiers, "pic", row.get("pic", lambda x: _pattern(x, r"[0-9]{9}", "a PIC (9 digits)",
                                                                 spaces_allowed=True)))
    _put(identifiers, "vat", row.get("vat", lambda x: _pattern(x, r"[A-Z]{2}[0-9A-Za-z+*.]{2,13}",
                                                                 "a VAT number with country prefix (DE123456789)",
                                                                 spaces_allowed=True)))
    _put(identifiers, "lei", row.get("lei", lambda x: _pattern(x, r"[A-Z0-9]{18}[0-9]{2}", "an LEI (20 characters)")))
    _put(identifiers, "wikidata", row.get("wikidata", _wikidata))
    _put(content, "identifiers", identifiers)
    _put(content, "sizeClass", row.get("size_class", lambda x: _code(v.text_of(x), "size-classes", "size_class")))
    _put(content, "foundingYear", row.year("founding_year"))
    _put(content, "status", row.get("status", lambda x: _code(v.text_of(x), "actor-statuses", "status")))
    _put(content, "memberships", [{"cluster": c} for c in v.split_list(row.cells.get("memberships"))])


def _place(row: _Row, content: dict, country: str) -> str | None:
    """The region from the coordinates, else from the city (whose coordinates the record then gets)."""
    if "geo" in content:
        region = region_for_point(content["geo"]["lat"], content["geo"]["lon"], country)
        where = f"the coordinates {content['geo']['lat']}, {content['geo']['lon']}"
    elif row.text("city"):
        place, why = place_for_city(row.text("city"), country)
        region = place.region if place else None
        if place is not None:
            content["geo"] = {"lat": v.coordinate(place.lat, limit=90, what="latitude"),
                              "lon": v.coordinate(place.lon, limit=180, what="longitude")}
        region = region or region_for_city(row.text("city"), country)
        where = f"the city {row.text('city')!r} ({why})" if why else f"the city {row.text('city')!r}"
    else:
        return None
    if region is None and country in nuts_countries():
        row.warnings.append(RowError("region", f"no NUTS region found for {where}; give a region column"))
    return region


def _pattern(value, pattern: str, what: str, *, spaces_allowed: bool = False) -> str:
    """The cell's text if it matches `pattern`. `spaces_allowed`: an identifier people write in groups
    (`DE 123 456 789`), matched and kept without the spaces."""
    text = v.text_of(value).replace(" ", "") if spaces_allowed else v.text_of(value)
    if not re.fullmatch(pattern, text):
        raise ValueError(f"{value!r} is not {what}")
    return text


def _ror_url(value) -> str:
    text = v.text_of(value)
    suffix = text.removeprefix("https://ror.org/").removeprefix("ror.org/")
    if not re.fullmatch(r"0[a-z0-9]{6}[0-9]{2}", suffix):
        raise ValueError(f"{value!r} is not a ROR id (https://ror.org/0xxxxxxxx)")
    return f"https://ror.org/{suffix}"


def _wikidata(value) -> str:
    text = v.text_of(value).removeprefix("https://www.wikidata.org/wiki/")
    if not re.fullmatch(r"Q[1-9][0-9]*", text):
        raise ValueError(f"{value!r} is not a Wikidata item (Q and digits)")
    return text


def _project(row: _Row, content: dict, node_id: str) -> None:
    title = row.text("title") or row.text("acronym")
    if not title:
        row.errors.append(RowError("title", "a project needs a title (or at least an acronym)"))
    _put(content, "title", title)
    _put(content, "acronym", row.get("acronym"))
    _put(content, "description", _description(row))
    programme = row.get("programme", lambda x: v.text_of(x).strip().upper().replace(" ", "-"))
    if programme is not None:
        from biofed.schema.codes import codes

        if programme not in codes("programmes"):
            row.errors.append(RowError("programme", f"unknown programme {row.text('programme')!r}; use one of "
                                                    f"{', '.join(codes('programmes'))}"))
            programme = None
    elif not row.text("programme"):
        row.errors.append(RowError("programme", "a project needs a programme, e.g. H2020, INTERREG, NATIONAL"))
    _put(content, "programme", programme)
    _put(content, "programmeCodes", v.split_list(row.cells.get("programme_codes")))
    _put(content, "fundingScheme", row.get("funding_scheme"))
    _put(content, "call", row.get("call"))
    _put(content, "grantId", row.get("grant_id"))
    start = row.get("start_date", v.date_of)
    end = row.get("end_date", v.date_of)
    if start and end and end < start:
        row.errors.append(RowError("end_date", f"{end} is before the start date {start}"))
    _put(content, "startDate", start)
    _put(content, "endDate", end)
    _put(content, "status", row.get("status", lambda x: _code(v.text_of(x), "project-statuses", "status")))
    _put(content, "totalBudgetCents", row.get("total_budget", v.cents))
    _put(content, "euContributionCents", row.get("eu_contribution", v.cents))
    _put(content, "coFundingRateBp", row.get("co_funding_rate", v.basis_points))
    _put(content, "topics", v.split_list(row.cells.get("topics")))
    partners = []
    for column, role in (("coordinator", "coordinator"), ("partners", "partner")):
        for entry in v.split_list(row.cells.get(column)):
            try:
                partners.append(_partner(entry, role, node_id))
            except ValueError as exc:
                row.errors.append(RowError(column, str(exc)))
    _put(content, "partners", partners)
    links = []
    for url in v.split_list(row.cells.get("links")):
        checked = row.url("links", url)
        if checked:
            links.append({"url": checked})
    _put(content, "links", links)


def _offer(row: _Row, content: dict, node_id: str) -> None:
    if not row.text("title"):
        row.errors.append(RowError("title", "an offer needs a title"))
    _put(content, "title", row.text("title"))
    offer_type = row.get("offer_type", lambda x: _code(v.text_of(x), "offer-types", "offer_type"))
    if offer_type is None and not row.text("offer_type"):
        row.errors.append(RowError("offer_type", "an offer needs a type, e.g. service, facility, licence"))
    _put(content, "offerType", offer_type)
    provider = row.get("provider", lambda x: v.actor_ref(v.text_of(x), node_id=node_id))
    if provider is None and not row.text("provider"):
        row.errors.append(RowError("provider", "an offer needs the id of the actor that provides it"))
    _put(content, "provider", provider)
    _put(content, "description", _description(row))
    _put(content, "technologies", v.split_list(row.cells.get("technologies")))
    _put(content, "sectors", row.codes("sectors", "sectors"))
    _put(content, "valueChainStages", row.codes("value_chain_stages", "value-chain-stages"))
    _put(content, "conditions", row.get("conditions"))
    _put(content, "website", row.url("website"))
    _put(content, "contact", _contact(row, [row.text("title")]))
    _put(content, "country", row.get("country", lambda x: _country(v.text_of(x))))
    _put(content, "region", row.get("region", lambda x: _region(v.text_of(x))))
    _put(content, "validUntil", row.get("valid_until", v.date_of))


def map_row(cells: dict[str, Any], *, kind: str | None, node_id: str,
            node_region: str | None) -> tuple[dict | None, list[RowError], list[RowError]]:
    """One spreadsheet row (column name -> cell value) as record content (or None), errors and warnings.

    Without an `id` cell the id is derived: from the strongest identifier (see identity.py), else the name.
    """
    row = _Row(cells)
    row_kind = row.text("type").lower() or kind or "actor"
    if row_kind not in COLUMNS:
        return None, [RowError("type", f"unknown type {row.text('type')!r}; use Actor, Project or Offer")], []
    for column, text in row.texts.items():
        if text and column not in COLUMNS[row_kind] and not _DESCRIPTION_LANG.match(column):
            row.errors.append(RowError(column, f"column {column} is not used for a {row_kind.capitalize()}"))
    content: dict = {"type": row_kind.capitalize()}
    if row_kind == "actor":
        _actor(row, content, node_id, node_region)
    elif row_kind == "project":
        _project(row, content, node_id)
    else:
        _offer(row, content, node_id)
    raw_id = row.text("id")
    if not raw_id:
        keys = match_keys(content)
        basis = name_of(content) or row.text("acronym")
        raw_id = local_id_from(*keys[0]) if keys else v.slug(basis) if basis else ""
    if raw_id:
        try:
            content["id"] = v.record_id(raw_id, node_id=node_id, kind=row_kind)
        except ValueError as exc:
            row.errors.append(RowError("id", str(exc)))
    else:
        row.errors.append(RowError("id", "give an id or a name to derive one from"))
    if row.errors:
        return None, row.errors, row.warnings
    return content, [], row.warnings
