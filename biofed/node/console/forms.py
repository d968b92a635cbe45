"""The record forms, generated from the data standard: which fields, their code lists, help and
required marks come from the JSON Schemas and code lists of biofed.schema.

A form is read into record content (`read_form`), which the node then validates and signs
through the same path as the write API; a record is shown in a form with `form_values`.
Field names are the record's JSON pointer with '-' for '/' (`contact-email`,
`partners-2-country`), so a validation issue lands beside the field it is about.
Fields the form does not show (`sources`, a partner's identifiers) are kept as they are.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Callable

import orjson

from biofed.node.console.labels import LABELS, LANGUAGE
from biofed.node.importers import values as v
from biofed.protocol.types import KIND_OF_TYPE
from biofed.schema import schema_document
from biofed.schema.codes import code_list
from biofed.trust import jsonprofile

# Rows shown beyond those filled, for the repeated groups (more with the form's "Add a row" button).
SPARE_ROWS = {"names": 1, "description": 1, "partners": 1}
ACTOR_SELECT_MAX = 1000  # more of the node's actors than this: a partner or provider is typed as an id
MAX_ROWS = 200


@dataclass(frozen=True)
class Field:
    key: str  # the form field name: the JSON pointer with '-' (contact-email)
    kind: str  # text, textarea, select, checkboxes, keywords, langmap, names, partners, links, memberships,
    #            money, percent, coordinate, year, date, url, actor, localid
    code_list: str | None = None
    required: bool = False
    help: str = ""

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.key.split("-")) if self.kind not in ("langmap", "names", "partners") else (self.key,)


# (section label key, [(field key, kind, code list)]): the layout; everything else comes from the schemas.
LAYOUT = {
    "Actor": [
        ("section.identity", [("id", "localid", None), ("names", "names", None), ("acronyms", "keywords", None),
                              ("actorType", "select", "actor-types"), ("status", "select", "actor-statuses"),
                              ("sizeClass", "select", "size-classes"), ("foundingYear", "year", None)]),
        ("section.activity", [("sectors", "checkboxes", "sectors"),
                              ("valueChainStages", "checkboxes", "value-chain-stages"),
                              ("technologies", "keywords", None), ("services", "keywords", None),
                              ("description", "langmap", None)]),
        ("section.contact", [("website", "url", None), ("contact-email", "text", None),
                             ("contact-phone", "text", None), ("contact-contactForm", "url", None)]),
        ("section.place", [("address-street", "text", None), ("address-postalCode", "text", None),
                           ("address-locality", "text", None), ("country", "select", "countries"),
                           ("region", "select", "nuts2021"), ("geo-lat", "coordinate", None),
                           ("geo-lon", "coordinate", None)]),
        ("section.identifiers", [("identifiers-ror", "text", None), ("identifiers-pic", "text", None),
                                 ("identifiers-vat", "text", None), ("identifiers-lei", "text", None),
                                 ("identifiers-wikidata", "text", None)]),
        ("section.other", [("memberships", "memberships", None)]),
    ],
    "Project": [
        ("section.project", [("id", "localid", None), ("title", "text", None), ("acronym", "text", None),
                             ("description", "langmap", None), ("status", "select", "project-statuses"),
                             ("startDate", "date", None), ("endDate", "date", None), ("topics", "keywords", None),
                             ("links", "links", None)]),
        ("section.funding", [("programme", "select", "programmes"), ("programmeCodes", "keywords", None),
                             ("fundingScheme", "text", None), ("call", "text", None), ("grantId", "text", None),
                             ("totalBudgetCents", "money", None), ("euContributionCents", "money", None),
                             ("coFundingRateBp", "percent", None)]),
        ("section.partners", [("partners", "partners", None)]),
    ],
    "Offer": [
        ("section.offer", [("id", "localid", None), ("title", "text", None), ("offerType", "select", "offer-types"),
                           ("provider", "actor", None), ("description", "langmap", None),
                           ("conditions", "textarea", None), ("validUntil", "date", None)]),
        ("section.activity", [("sectors", "checkboxes", "sectors"),
                              ("valueChainStages", "checkboxes", "value-chain-stages"),
                              ("technologies", "keywords", None)]),
        ("section.contact", [("website", "url", None), ("contact-email", "text", None),
                             ("contact-phone", "text", None), ("contact-contactForm", "url", None),
                             ("country", "select", "countries"), ("region", "select", "nuts2021")]),
    ],
}
SCHEMA_OF = {"Actor": "actor", "Project": "project", "Offer": "offer"}
TYPE_OF_KIND = {kind: record_type for record_type, kind in KIND_OF_TYPE.items()}


def _schema_node(record_type: str, path: tuple[str, ...]) -> dict:
    """The schema of a field (following common.json references), for its description and required mark."""
    documents = {"actor": schema_document("actor"), "project": schema_document("project"),
                 "offer": schema_document("offer"), "common": schema_document("common")}
    node = documents[SCHEMA_OF[record_type]]
    for part in path:
        node = (node.get("properties") or {}).get(part, {})
        while "$ref" in node:
            target, _, pointer = node["$ref"].partition("#")
            document = documents["common"] if target else documents[SCHEMA_OF[record_type]]
            resolved = document
            for step in pointer.strip("/").split("/"):
                resolved = resolved.get(step, {})
            node = {**resolved, **{k: val for k, val in node.items() if k != "$ref"}}
    return node


@functools.cache
def fields(record_type: str) -> tuple[tuple[str, tuple[Field, ...]], ...]:
    """The form of a record type: (section label key, fields), with help text and required marks from the schema."""
    required = set(schema_document(SCHEMA_OF[record_type]).get("required", []))
    sections = []
    for section, entries in LAYOUT[record_type]:
        built = []
        for key, kind, codes_name in entries:
            path = (key,) if kind in ("langmap", "names", "partners") else tuple(key.split("-"))
            node = _schema_node(record_type, path)
            # The schema's description, unless the form asks in other units (euros, percent) or the labels
            # say it in plainer words (help.<type>.<field>).
            help_text = "" if kind in ("money", "percent", "localid") else (node.get("description") or "").replace("`", "")
            help_text = LABELS[LANGUAGE].get(f"help.{record_type}.{key}", help_text)
            built.append(Field(key, kind, codes_name, required=len(path) == 1 and key in required, help=help_text))
        sections.append((section, tuple(built)))
    return tuple(sections)


def managed_keys(record_type: str) -> set[str]:
    """Top-level record fields the form sets (everything else is kept from the current version)."""
    keys = {f.key.split("-")[0] for _, section in fields(record_type) for f in section}
    return keys | {"id", "type"}


@functools.cache
def options(codes_name: str) -> tuple[tuple[str, str], ...]:
    """(code, label) of a code list, for a select or checkboxes."""
    rows = code_list(codes_name)
    if codes_name == "nuts2021":
        return tuple((row["code"], f"{row['code']} {row['name']}") for row in rows)
    if codes_name == "countries":
        return tuple((row["code"], f"{row['label']} ({row['code']})") for row in rows)
    return tuple((row["code"], row.get("label") or row["code"]) for row in rows)


# --- a record into form values


def form_values(record: dict) -> dict[str, object]:
    """Flat form values of a record: 'contact-email' -> text, 'sectors' -> [codes], 'names-0-value' -> text."""
    record_type = record.get("type")
    values: dict[str, object] = {}
    for _, section in fields(record_type):
        for f in section:
            if f.kind == "localid":
                values["id"] = (record.get("id") or "").rsplit("/", 1)[-1]
            elif f.kind == "names":
                for i, name in enumerate(sorted(record.get("names") or [], key=lambda n: not n.get("preferred"))):
                    values[f"names-{i}-value"] = name.get("value", "")
                    values[f"names-{i}-lang"] = name.get("lang", "")
            elif f.kind == "langmap":
                for i, (lang, text) in enumerate((record.get(f.key) or {}).items()):
                    values[f"{f.key}-{i}-lang"] = lang
                    values[f"{f.key}-{i}-text"] = text
            elif f.kind == "partners":
                for i, partner in enumerate(record.get("partners") or []):
                    for part in ("actor", "name", "country", "role"):
                        values[f"partners-{i}-{part}"] = partner.get(part, "")
                    extra = {k: val for k, val in partner.items() if k not in ("actor", "name", "country", "role")}
                    if extra:
                        values[f"partners-{i}-extra"] = orjson.dumps(extra).decode()
            else:
                value = _get(record, f.path)
                if value is None:
                    continue
                if f.kind == "checkboxes":
                    values[f.key] = list(value)
                elif f.kind in ("keywords",):
                    values[f.key] = "\n".join(value)
                elif f.kind == "links":
                    values[f.key] = "\n".join(link["url"] for link in value)
                elif f.kind == "memberships":
                    values[f.key] = "\n".join(m["cluster"] for m in value)
                elif f.kind == "money":
                    values[f.key] = f"{value // 100}.{value % 100:02d}"
                elif f.kind == "percent":
                    values[f.key] = f"{value // 100}" + (f".{value % 100:02d}".rstrip("0") if value % 100 else "")
                else:
                    values[f.key] = str(value)
    return values


def _get(record: dict, path: tuple[str, ...]):
    node = record
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def rows_in(values: dict, group: str, extra: int = 0) -> int:
    """How many rows of a repeated group to show: the filled ones, spare ones, and `extra` asked for."""
    used = {int(m.group(1)) for key in values if (m := re.match(rf"^{group}-(\d+)-", key))}
    filled = max(used) + 1 if used else 0
    return min(filled + SPARE_ROWS.get(group, 1) + extra, MAX_ROWS)


# --- form values into record content


class FormData:
    """The submitted form: field name -> values (checkboxes repeat), text NFC-normalised and trimmed."""

    def __init__(self, pairs: list[tuple[str, str]]):
        self.values: dict[str, list[str]] = {}
        for key, value in pairs:
            text = unicodedata.normalize("NFC", value.replace("\r\n", "\n")).strip()
            self.values.setdefault(key, []).append(text)

    def get(self, key: str) -> str:
        return self.values.get(key, [""])[0]

    def all(self, key: str) -> list[str]:
        return [value for value in self.values.get(key, []) if value]

    def flat(self) -> dict[str, object]:
        """As form values (for showing the form again with what was typed)."""
        return {key: (values if len(values) > 1 or key in ("sectors", "valueChainStages") else values[0])
                for key, values in self.values.items() if not key.startswith("_")}


def _lines(text: str) -> list[str]:
    items = []
    for line in text.split("\n"):
        line = line.strip()
        if line and line not in items:
            items.append(line)
    return items


def _set(content: dict, path: tuple[str, ...], value) -> None:
    if value in (None, "", [], {}):
        return
    node = content
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


def read_form(record_type: str, form: FormData, *, node_id: str, current: dict | None,
              actor: Callable[[str], dict | None] = lambda actor_id: None) -> tuple[dict, dict[str, list[str]]]:
    """(record content, {field: [problems]}) from a submitted form.

    Problems found here are values that cannot be read at all (a latitude that is not a
    number); everything else is left to the data standard's validation, as for the API.
    `current` is the record's current content (an edit): fields the form does not show are
    kept. `actor`: {name, country} of one of this node's actors, to fill in a partner picked from them.
    """
    kind = KIND_OF_TYPE[record_type]
    errors: dict[str, list[str]] = {}
    content = {k: val for k, val in (current or {}).items() if k not in managed_keys(record_type)}
    content["type"] = record_type

    def problem(key: str, message: str) -> None:
        errors.setdefault(key, []).append(message)

    def parsed(key: str, parse):
        text = form.get(key)
        if not text:
            return None
        try:
            return parse(text)
        except ValueError as exc:
            problem(key, str(exc))
            return None

    for _, section in fields(record_type):
        for f in section:
            if f.kind == "localid":
                continue
            if f.kind == "names":
                names = []
                for i in range(MAX_ROWS):
                    value, lang = form.get(f"names-{i}-value"), form.get(f"names-{i}-lang")
                    if f"names-{i}-value" not in form.values:
                        break
                    if value:
                        name = {"value": value}
                        if lang:
                            name["lang"] = lang
                        names.append(name)
                if names:
                    names[0]["preferred"] = True
                    content["names"] = [{k: n[k] for k in ("value", "lang", "preferred") if k in n} for n in names]
            elif f.kind == "langmap":
                texts = {}
                for i in range(MAX_ROWS):
                    if f"{f.key}-{i}-text" not in form.values:
                        break
                    text, lang = form.get(f"{f.key}-{i}-text"), form.get(f"{f.key}-{i}-lang") or "und"
                    if text:
                        if lang in texts:
                            problem(f"{f.key}-{i}-lang", f"a second text in {lang!r}: one text per language")
                        texts[lang] = text
                _set(content, (f.key,), texts)
            elif f.kind == "partners":
                partners = _partners(form, node_id, actor, problem)
                _set(content, ("partners",), partners)
            elif f.kind == "checkboxes":
                _set(content, f.path, form.all(f.key))
            elif f.kind == "keywords":
                _set(content, f.path, _lines(form.get(f.key)))
            elif f.kind == "links":
                _set(content, f.path, [{"url": url} for url in _lines(form.get(f.key))])
            elif f.kind == "memberships":
                _set(content, f.path, [{"cluster": c} for c in _lines(form.get(f.key))])
            elif f.kind == "money":
                _set(content, f.path, parsed(f.key, v.cents))
            elif f.kind == "percent":
                _set(content, f.path, parsed(f.key, v.basis_points))
            elif f.kind == "coordinate":
                limit, what = (90, "latitude") if f.key.endswith("lat") else (180, "longitude")
                _set(content, f.path, parsed(f.key, lambda x: v.coordinate(x, limit=limit, what=what)))
            elif f.kind == "year":
                _set(content, f.path, parsed(f.key, v.year_of))
            elif f.kind == "date":
                _set(content, f.path, parsed(f.key, v.date_of))
            elif f.kind == "actor":
                _set(content, f.path, parsed(f.key, lambda x: v.actor_ref(x, node_id=node_id)))
            else:
                _set(content, f.path, form.get(f.key))
    # What the importers do too: the address is in the record's country; previous memberships' names kept.
    if "address" in content and content.get("country"):
        content["address"]["country"] = content["country"]
    if record_type == "Actor":
        _place(content)
    if current and current.get("memberships") and content.get("memberships"):
        named = {m["cluster"]: m for m in current["memberships"]}
        content["memberships"] = [named.get(m["cluster"], m) for m in content["memberships"]]
    if current and current.get("links") and content.get("links"):
        titled = {link["url"]: link for link in current["links"]}
        content["links"] = [titled.get(link["url"], link) for link in content["links"]]

    if current:
        content["id"] = current["id"]
    else:
        local = form.get("id") or v.slug(_name_of(content) or "")
        if not local:
            problem("id", "give an id, or a name to make one from")
        else:
            try:
                content["id"] = v.record_id(local, node_id=node_id, kind=kind)
            except ValueError as exc:
                problem("id", str(exc))
    return content, errors


def _place(content: dict) -> None:
    """An actor without a region gets it as the spreadsheet importer would: from its coordinates, else from
    its city (which then gives the coordinates too), so that the record and its spreadsheet row agree."""
    from biofed.node.importers.regions import place_for_city, region_for_point

    country, city = content.get("country"), (content.get("address") or {}).get("locality")
    if content.get("region") or not country:
        return
    if "geo" in content:
        if set(content["geo"]) != {"lat", "lon"}:
            return  # half a point: the validation says so
        region = region_for_point(content["geo"]["lat"], content["geo"]["lon"], country)
    elif city:
        place, _ = place_for_city(city, country)
        region = place.region if place else None
        if place is not None:
            content["geo"] = {"lat": v.coordinate(place.lat, limit=90, what="latitude"),
                              "lon": v.coordinate(place.lon, limit=180, what="longitude")}
    else:
        return
    if region:
        content["region"] = region


def _name_of(content: dict) -> str:
    names = content.get("names") or []
    return names[0]["value"] if names else content.get("title") or content.get("acronym") or ""


def _partners(form: FormData, node_id: str, actor, problem) -> list[dict]:
    partners = []
    for i in range(MAX_ROWS):
        prefix = f"partners-{i}-"
        if not any(key.startswith(prefix) for key in form.values):
            break
        actor_id = form.get(prefix + "actor")
        name, country, role = form.get(prefix + "name"), form.get(prefix + "country"), form.get(prefix + "role")
        if not (actor_id or name):
            continue
        partner: dict = {}
        if actor_id:
            try:
                actor_id = v.actor_ref(actor_id, node_id=node_id)
            except ValueError as exc:
                problem(prefix + "actor", str(exc))
                actor_id = ""
        known = actor(actor_id) if actor_id else None
        if actor_id:
            partner["actor"] = actor_id
        partner["name"] = name or (known or {}).get("name", "")
        partner["country"] = country or (known or {}).get("country", "")
        partner["role"] = role or "partner"
        extra = form.get(prefix + "extra")
        if extra:
            try:
                kept = jsonprofile.loads(extra.encode("utf-8"))
            except jsonprofile.ProfileError:
                kept = None
            if isinstance(kept, dict):
                partner.update({k: val for k, val in kept.items() if k not in partner})
        partners.append({k: val for k, val in partner.items() if val not in ("", None)})
    return partners


def field_of_pointer(pointer: str, known: set[str]) -> str:
    """The form field a JSON pointer is about ('/names/0/value' -> 'names-0-value'), or '' for the record."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.strip("/").split("/") if p]
    while parts:
        key = "-".join(parts)
        if key in known:
            return key
        parts.pop()
    return ""


def field_names(record_type: str, values: dict) -> set[str]:
    """Every field name an issue may point at: the fields, and the rows of the repeated groups."""
    names = {f.key for _, section in fields(record_type) for f in section}
    names |= {key for key in values if re.match(r"^(names|description|partners)-\d+-", key)}
    names |= {key.rsplit("-", 1)[0] for key in list(names) if re.match(r"^(names|partners)-\d+-", key)}
    return names
