"""One organisation, one Actor record per node: which records describe the same organisation, and merging them.

Two Actor contents are the same organisation, in this order of evidence:

1. **identifiers**: they share a ROR id, PIC, VAT number, LEI, Wikidata item,
   GRID id or ISNI (compared normalised: `https://ror.org/0ABC` = `0abc`,
   `DE 123 456 789` = `DE123456789`);
2. **website domain**: the same host (`www.` dropped), and actor types that
   agree (a university and its hospital often share a host);
3. **name and city**: one name of each is equal once normalised
   (`normalised_name`: mojibake repaired, transliterated with anyascii, case
   and punctuation dropped, `ae`/`oe`/`ue` read as `a`/`o`/`u` so that
   `UNIVERSITAET` = `Universität`, legal-form words such as GmbH, S.A., e.V.
   dropped), in the same country, and the same city (`city_key` equal, or the
   same gazetteer place: `Gent` = `Ghent`, `PARIS CEDEX 15` = `Paris`), or one
   city unknown and the same NUTS region.

A differing identifier of the same kind (two PICs, two ROR ids) means two
organisations: a pair that shares another identifier but differs in one is
reported, never merged, and a shared domain or name does not overrule it. A
domain match of different actor types (a university and a hospital) is
reported, not merged. A record that
matches two different records at its strongest level is reported as ambiguous
and left as it is. Records without `sources` (a node's own member sheet) are
never merged automatically; `biofed node duplicates` lists them.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Iterable

from anyascii import anyascii

from biofed.node.importers.identity import website_domain
from biofed.node.importers.regions import repair_mojibake
from biofed.schema.identifiers import IDENTIFIERS, normalised_identifier

# Words of a legal form, dropped from names before comparing (after dots are removed: `S.A.` -> `sa`).
LEGAL_FORMS = frozenset("""
    gmbh ggmbh mbh ag kg kgaa ohg ug haftungsbeschrankt ev eg
    sa sas sasu sarl sca scs scrl sprl srl srls spa sapa snc
    bv nv bvba cvba vzw asbl
    ltd limited plc llp llc inc corp corporation co company
    ab aps as asa oy oyj se sl slu sll
""".split())
# Actor types that can describe one organisation seen by two sources (for a domain match).
_TYPE_FAMILY = {"sme": "company", "large-company": "company", "company": "company"}
# Fields the node sets when it signs: not part of merged content.
_SIGNED_FIELDS = ("version", "dateModified", "proof")


def identifier_keys(content: dict) -> dict[str, str]:
    """kind -> normalised value of the identifiers a record carries."""
    identifiers = content.get("identifiers") or {}
    keys = {}
    for kind in IDENTIFIERS:
        value = normalised_identifier(kind, identifiers.get(kind))
        if value:
            keys[kind] = value
    return keys


def _fold(text: str) -> str:
    text = anyascii(repair_mojibake(text or "")).lower()
    for digraph, letter in (("ae", "a"), ("oe", "o"), ("ue", "u")):  # UNIVERSITAET = Universität
        text = text.replace(digraph, letter)
    return text


def normalised_name(name: str) -> str:
    """`Neckartal Biologics GmbH` = `NECKARTAL BIOLOGICS` = `Neckartal-Biologics g.m.b.H.`: `neckartal biologics`."""
    words = re.findall(r"[a-z0-9]+", _fold(name).replace(".", ""))
    kept = [word for word in words if word not in LEGAL_FORMS]
    return " ".join(kept or words)


def names_of(content: dict) -> set[str]:
    """The normalised names (not acronyms) of an Actor."""
    return {key for name in content.get("names") or [] if (key := normalised_name(name.get("value") or ""))}


@functools.lru_cache(maxsize=4096)
def _city(city: str, country: str) -> tuple[str, tuple | None]:
    """(city key, gazetteer place) of a city, so that spellings of one place compare equal."""
    from biofed.node.importers.gazetteer import city_key
    from biofed.node.importers.regions import place_for_city

    place, _ = place_for_city(city, country)
    return city_key(city, country), ((place.name, place.lat, place.lon) if place else None)


def same_place(a: dict, b: dict) -> str | None:
    """Why two actors are in the same place (a short text), or None."""
    if a.get("country") != b.get("country"):
        return None
    city_a = (a.get("address") or {}).get("locality") or ""
    city_b = (b.get("address") or {}).get("locality") or ""
    if city_a and city_b:
        (key_a, place_a), (key_b, place_b) = _city(city_a, a["country"]), _city(city_b, b["country"])
        if key_a and key_a == key_b:
            return f"city {city_a!r}"
        if place_a is not None and place_a == place_b:
            return f"city {city_a!r} = {city_b!r} ({place_a[0]})"
        return None
    if a.get("region") and a.get("region") == b.get("region"):
        return f"region {a['region']} (a city unknown)"
    return None


def source_names(content: dict) -> frozenset[str]:
    """The sources that describe the record (not those only evidence for derived fields)."""
    return frozenset(s.get("name") for s in content.get("sources") or [] if s.get("name") and not s.get("derived"))


def _types_agree(a: dict, b: dict) -> bool:
    ta, tb = a.get("actorType"), b.get("actorType")
    return ta == tb or "other" in (ta, tb) or (_TYPE_FAMILY.get(ta, ta) == _TYPE_FAMILY.get(tb, tb))


@dataclass
class Evidence:
    """Why two records are (or may be) one organisation."""

    level: str  # identifier | domain | name-city
    reason: str
    conflict: str = ""  # non-empty: a differing identifier (or actor type) says they are two

    def __str__(self) -> str:
        return self.reason + (f", but {self.conflict}" if self.conflict else "")


def compare(a: dict, b: dict) -> Evidence | None:
    """The strongest evidence that two Actor contents are one organisation, or None."""
    keys_a, keys_b = identifier_keys(a), identifier_keys(b)
    differing = [k for k in IDENTIFIERS if k in keys_a and k in keys_b and keys_a[k] != keys_b[k]]
    conflict = ", ".join(f"{k} {keys_a[k]} != {keys_b[k]}" for k in differing)
    shared = [k for k in IDENTIFIERS if k in keys_a and keys_a.get(k) == keys_b.get(k)]
    if shared:
        return Evidence("identifier", "same " + ", ".join(f"{k} {keys_a[k]}" for k in shared), conflict)
    if differing:
        return None  # two registers say two organisations: a shared domain or name does not overrule them
    domain = website_domain(a.get("website"))
    if domain and domain == website_domain(b.get("website")):
        type_conflict = "" if _types_agree(a, b) else f"types {a.get('actorType')} != {b.get('actorType')}"
        return Evidence("domain", f"same website domain {domain}", type_conflict)
    common = sorted(names_of(a) & names_of(b))
    if common:
        place = same_place(a, b)
        if place:
            return Evidence("name-city", f"same name {common[0]!r} and {place}")
    return None


def merge_actor(base: dict, other: dict) -> dict:
    """One Actor from two descriptions of it: `base` wins single values; names, identifiers, lists and sources
    are united (base's first). `base`'s id is kept."""
    merged = {k: v for k, v in base.items() if k not in _SIGNED_FIELDS}
    for key, value in other.items():
        if key in _SIGNED_FIELDS or key in ("id", "type"):
            continue
        if key not in merged:
            merged[key] = value
        elif key == "names":
            seen = {(n.get("value"), n.get("lang")) for n in merged["names"]}
            merged["names"] = list(merged["names"]) + [
                {k: v for k, v in n.items() if k != "preferred"} for n in value
                if (n.get("value"), n.get("lang")) not in seen]
        elif key == "identifiers":
            merged["identifiers"] = {**value, **merged["identifiers"]}
        elif key in ("acronyms", "sectors", "valueChainStages", "technologies", "services"):
            merged[key] = list(dict.fromkeys([*merged[key], *value]))
        elif key in ("memberships", "sources", "sameAs"):
            merged[key] = [*merged[key], *(item for item in value if item not in merged[key])]
        elif key in ("address", "contact") and isinstance(value, dict):
            merged[key] = {**value, **merged[key]}
    if merged.get("actorType") == "company" and other.get("actorType") in ("sme", "large-company"):
        merged["actorType"] = other["actorType"]  # the more specific kind of company
    return merged


@dataclass
class MergeResult:
    contents: list[dict]  # the records, in input order of their first row
    positions: list[int]  # input index of each record's first row
    aliases: dict[str, str] = field(default_factory=dict)  # id of a merged row -> id of the record it joined
    merged: list[tuple[int, str]] = field(default_factory=list)  # (input index, what it was merged into and why)
    reported: list[tuple[int, str]] = field(default_factory=list)  # (input index, a likely duplicate not merged)
    groups: list[list[int]] = field(default_factory=list)  # per record: the input indexes of its rows, in order


class _Index:
    """Candidate lookup by identifier, domain and normalised name."""

    def __init__(self):
        self.by_key: dict[tuple, list[int]] = {}

    @staticmethod
    def keys(content: dict) -> list[tuple]:
        keys = [("id", k, v) for k, v in identifier_keys(content).items()]
        domain = website_domain(content.get("website"))
        if domain:
            keys.append(("domain", domain))
        keys += [("name", content.get("country"), name) for name in names_of(content)]
        return keys

    def add(self, entry: int, content: dict) -> None:
        for key in self.keys(content):
            entries = self.by_key.setdefault(key, [])
            if entry not in entries:
                entries.append(entry)

    def candidates(self, content: dict) -> list[int]:
        return list(dict.fromkeys(e for key in self.keys(content) for e in self.by_key.get(key, ())))


_LEVELS = ("identifier", "domain", "name-city")


def merge_actors(contents: list[dict], *, published: Iterable[dict] = (), batch_sources: list[str] | None = None
                 ) -> MergeResult:
    """Merge the Actor contents that describe one organisation (see the module docstring).

    contents: record contents in input order (any type; only Actors with `sources` take part).
    published: the node's live Actor records; a row may join one of them (it keeps the published id).
    batch_sources: a label per content for the reports (`ror https://ror.org/...`).
    Rows of the same source in one batch are never merged with each other (the source lists them as
    two): such pairs are reported. The record seen first keeps its id, a published one first of all.
    """
    labels = batch_sources or [c.get("id", "") for c in contents]
    in_batch = {c.get("id") for c in contents}
    entries: list[dict] = []  # merged content
    entry_labels: list[str] = []
    entry_rows: list[set[int]] = []  # input indexes merged into the entry (empty: a published record)
    entry_batch_sources: list[set[str]] = []  # source names contributed by this batch's rows
    index = _Index()
    republished: dict[str, dict] = {}  # published records a row of the batch names by id
    for record in published:
        if record.get("id") in in_batch:
            republished[record["id"]] = record
            continue
        if not source_names(record):
            continue
        entries.append({k: v for k, v in record.items() if k not in _SIGNED_FIELDS})
        entry_labels.append(f"published {record['id']}")
        entry_rows.append(set())
        entry_batch_sources.append(set())
        index.add(len(entries) - 1, entries[-1])
    result = MergeResult([], [])
    row_entry: dict[int, int] = {}
    published_ids = {e["id"] for e in entries}
    # Rows that update a published record go first, so a published id is kept by the record it names.
    order = sorted(range(len(contents)), key=lambda i: contents[i].get("id") not in published_ids)
    for i in order:
        content = contents[i]
        if content.get("type") != "Actor" or not source_names(content):
            continue
        candidates = []
        for e in index.candidates(content):
            evidence = compare(entries[e], content)
            if evidence is not None:
                candidates.append((_LEVELS.index(evidence.level), e, evidence))
        target = None
        if candidates:
            best = min(level for level, _, _ in candidates)
            strongest = [(e, ev) for level, e, ev in candidates if level == best]
            clean = [(e, ev) for e, ev in strongest if not ev.conflict]
            sources = source_names(content)
            for e, ev in strongest:
                if ev.conflict:
                    result.reported.append((i, f"possibly the same organisation as {entry_labels[e]} "
                                                f"({entries[e]['id']}): {ev}; not merged"))
            if len(clean) > 1:
                result.reported.append((i, "matches " + " and ".join(
                    f"{entry_labels[e]} ({entries[e]['id']}: {ev})" for e, ev in clean) + "; ambiguous, not merged"))
            elif len(clean) == 1:
                e, ev = clean[0]
                if entry_batch_sources[e] & sources:
                    result.reported.append((i, f"possibly the same organisation as {entry_labels[e]} "
                                                f"({entries[e]['id']}): {ev}; both from "
                                                f"{', '.join(sorted(entry_batch_sources[e] & sources))}, not merged"))
                else:
                    target, evidence = e, ev
        if target is None:
            before = republished.get(content.get("id"))
            if before is not None and source_names(before) - source_names(content):
                # a source re-imported: what other sources added to the record stays
                content = merge_actor(content, before)
            entries.append(dict(content))
            entry_labels.append(labels[i])
            entry_rows.append({i})
            entry_batch_sources.append(set(source_names(content)))
            row_entry[i] = len(entries) - 1
            index.add(len(entries) - 1, content)
            continue
        old = entries[target]
        # a source updating a record that already has it wins its values; a new source adds to the record
        updating = not entry_rows[target] and source_names(content) <= source_names(old)
        entries[target] = merge_actor(content, old) if updating else merge_actor(old, content)
        entries[target]["id"] = old["id"]
        entry_rows[target].add(i)
        entry_batch_sources[target] |= source_names(content)
        index.add(target, entries[target])
        row_entry[i] = target
        if content.get("id") != old["id"]:
            result.aliases[content["id"]] = old["id"]
            result.merged.append((i, f"{content['id']} merged into {entry_labels[target]} ({old['id']}): {evidence}"))
    # One output per entry that has batch rows, at its first row's position; other rows pass through.
    placed: set[int] = set()
    for i, content in enumerate(contents):
        e = row_entry.get(i)
        if e is None:
            result.contents.append(_with_aliases(content, result.aliases))
            result.positions.append(i)
            result.groups.append([i])
        elif e not in placed:
            placed.add(e)
            result.contents.append(entries[e])
            result.positions.append(i)
            result.groups.append(sorted(entry_rows[e]))
    return result


def _with_aliases(content: dict, aliases: dict[str, str]) -> dict:
    """References (project partners, offer providers) to a merged record point at the record it joined."""
    if not aliases:
        return content
    partners = content.get("partners")
    if partners and any(p.get("actor") in aliases for p in partners):
        content = {**content, "partners": [{**p, "actor": aliases[p["actor"]]} if p.get("actor") in aliases else p
                                           for p in partners]}
    if content.get("provider") in aliases:
        content = {**content, "provider": aliases[content["provider"]]}
    return content


@dataclass
class Duplicate:
    first: str
    second: str
    evidence: Evidence


def likely_duplicates(records: Iterable[dict]) -> list[Duplicate]:
    """Pairs of published Actor records that look like one organisation, with the evidence (conflicts too)."""
    actors = [r for r in records if r.get("type") == "Actor"]
    index = _Index()
    found = []
    for n, record in enumerate(actors):
        for m in index.candidates(record):
            evidence = compare(actors[m], record)
            if evidence is not None:
                found.append(Duplicate(actors[m]["id"], record["id"], evidence))
        index.add(n, record)
    found.sort(key=lambda d: (_LEVELS.index(d.evidence.level), bool(d.evidence.conflict), d.first, d.second))
    return found


def merge_import_rows(rows: Iterable) -> list:
    """ImportRows with the Actors that describe one organisation merged (`merge_actors`); rows that could not be
    mapped pass through. A merged row's source names every row in it; a likely duplicate not merged is a warning."""
    from biofed.node.importers import ImportRow, RowError

    rows = list(rows)
    usable = [i for i, row in enumerate(rows) if row.content is not None and not row.errors]
    result = merge_actors([rows[i].content for i in usable], batch_sources=[rows[i].source for i in usable])
    notes = {usable[position]: message for position, message in result.merged}
    reported: dict[int, list] = {}
    for position, message in result.reported:
        reported.setdefault(usable[position], []).append(RowError("", message))
    placed = {}
    for content, group in zip(result.contents, result.groups):
        placed[usable[group[0]]] = (content, [usable[g] for g in group])
    out = []
    for i, row in enumerate(rows):
        if i in placed:
            content, group = placed[i]
            members = [rows[j] for j in group]
            if len(group) == 1:
                out.append(ImportRow(row.source, content, [], row.warnings + reported.get(i, []),
                                     derived_id=row.derived_id))
            else:
                out.append(ImportRow(" + ".join(m.source for m in members), content, [],
                                     [w for j in group for w in rows[j].warnings + reported.get(j, [])],
                                     derived_id=row.derived_id, merged=[notes[j] for j in group if j in notes]))
        elif row.content is None or row.errors:
            out.append(row)
    return out
