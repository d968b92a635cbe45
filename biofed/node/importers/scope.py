"""Scope filters: which ROR organisations and CORDIS projects a node imports.

A node decides what it publishes; the shipped importers offer one documented
filter, `life-science` (`--scope life-science`), whose rules are data:
`scope-life-science.csv` beside this module, one rule a row
(`source, test, value, decision, note`).

CORDIS: a project is kept when a programme part (`programme`), a topic
(`topic`: prefix; `topic-contains`: letters and digits only) or a euroSciVoc
field (`euroscivoc`: path prefix) matches a rule; its participants follow.

ROR: an organisation whose name contains an excluded word (`name-excludes`:
museums, archives, libraries; a word start, or anywhere in a
word for a value starting with `*`) or that has a `drop` type (archive) is dropped;
one with a `keep` type (healthcare) is kept; any other is kept only with
evidence: a `name-keyword` at the start of a word of one of its names, a
`domain-keyword` in its web site's host name, or being a participant of a kept
CORDIS project (`partners`, matched by name and country: ROR has no PIC).
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from anyascii import anyascii

from biofed.errors import BiofedError

HERE = Path(__file__).parent
SCOPES = ("life-science",)


@dataclass(frozen=True)
class ScopeRules:
    cordis: tuple[tuple[str, str], ...]  # (test, value) of the kept projects
    ror_types: dict  # ROR type -> keep | drop | evidence
    excluded: re.Pattern | None
    name_keywords: re.Pattern | None
    domain_keywords: tuple[str, ...]


def _words(values: list[str]) -> re.Pattern | None:
    """One pattern for the words: `bio` at the start of a word, `*klinik` anywhere (Universitätsklinikum)."""
    parts = [re.escape(value[1:]) if value.startswith("*") else r"\b" + re.escape(value) for value in values]
    return re.compile("|".join(parts)) if parts else None


@functools.cache
def rules(scope: str) -> ScopeRules:
    if scope not in SCOPES:
        raise BiofedError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}")
    path = HERE / f"scope-{scope}.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    cordis = tuple((r["test"], r["value"]) for r in rows if r["source"] == "cordis" and r["decision"] == "keep")
    of = lambda test: [r["value"] for r in rows if r["source"] == "ror" and r["test"] == test]  # noqa: E731
    return ScopeRules(cordis=cordis,
                      ror_types={r["value"]: r["decision"] for r in rows if r["source"] == "ror" and r["test"] == "type"},
                      excluded=_words(of("name-excludes")), name_keywords=_words(of("name-keyword")),
                      domain_keywords=tuple(of("domain-keyword")))


def _letters(text: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", text.upper())


def cordis_project_kept(project, scope: str) -> bool:
    """Is a CordisProject in the scope (by programme part, topic or euroSciVoc field)?"""
    for test, value in rules(scope).cordis:
        if test == "programme" and any(code.startswith(value) for code in project.programme_codes):
            return True
        if test == "topic" and any(topic.startswith(value) for topic in project.topics + [project.call]):
            return True
        if test == "topic-contains" and any(_letters(value) in _letters(t) for t in project.topics + [project.call]):
            return True
        if test == "euroscivoc" and any((path.rstrip("/") + "/").startswith(value) for path in project.fields):
            return True
    return False


def name_key(name: str) -> str:
    """Names as ROR and CORDIS spell them compare equal: `Universität Zürich` = `UNIVERSITAET ZUERICH`."""
    text = anyascii(name or "").upper()
    for digraph, letter in (("AE", "A"), ("OE", "O"), ("UE", "U")):
        text = text.replace(digraph, letter)
    return " ".join(re.findall(r"[A-Z0-9]+", text))


def _names(record: dict) -> list[str]:
    return [n.get("value") or "" for n in record.get("names") or [] if "acronym" not in (n.get("types") or [])]


def _hosts(record: dict) -> list[str]:
    hosts = [urlsplit(link.get("value") or "").hostname or "" for link in record.get("links") or []]
    return [h for h in hosts + list(record.get("domains") or []) if h]


def ror_decision(record: dict, scope: str, partners: frozenset[tuple[str, str]] = frozenset()) -> tuple[bool, str]:
    """(kept, why) for a ROR record. `partners`: (country, name_key) of the kept CORDIS projects' participants."""
    r = rules(scope)
    names = [anyascii(name).lower() for name in _names(record)]
    if r.excluded and any(r.excluded.search(name) for name in names):
        return False, "excluded word in the name"
    types = record.get("types") or []
    decisions = [r.ror_types.get(t, "evidence") for t in types] or ["evidence"]
    if "drop" in decisions:
        return False, "type " + ", ".join(t for t in types if r.ror_types.get(t) == "drop")
    if "keep" in decisions:
        return True, "type " + ", ".join(t for t in types if r.ror_types.get(t) == "keep")
    if r.name_keywords and any(r.name_keywords.search(name) for name in names):
        return True, "life-science word in the name"
    if any(keyword in host for host in _hosts(record) for keyword in r.domain_keywords):
        return True, "life-science word in the domain"
    place = ((record.get("locations") or [{}])[0].get("geonames_details") or {})
    country = (place.get("country_code") or "").upper()
    if any((country, name_key(name)) in partners for name in _names(record)):
        return True, "partner in a kept CORDIS project"
    return False, "no evidence"


@functools.lru_cache(maxsize=4)
def cordis_participants(folder: Path, scope: str | None) -> dict[tuple[str, str], list]:
    """(country, name_key) -> [(CordisProject, Organisation)] of a CORDIS folder's (kept) projects."""
    from biofed.node.importers.cordis import cordis_projects

    found: dict[tuple[str, str], list] = {}
    for project in cordis_projects(folder):
        if scope is not None and not cordis_project_kept(project, scope):
            continue
        for participation in project.participations:
            org = participation.org
            for name in {org.name, org.short_name} - {""}:
                found.setdefault((org.country, name_key(name)), []).append((project, org))
    return found
