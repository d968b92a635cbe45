"""Codes and numbers as people read them: country, region and code-list names, euros, language maps.

Everything here is pure (no database, no request): the pages and the
render_cell hook call it. The names come from the data standard's code lists
(biofed.schema) and the NUTS 2021 list the catalogue's regions table is built from.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from biofed.aggregator.catalogue.regions import _regions
from biofed.schema.codes import code_list

LISTS = {
    "country": "countries",
    "sector": "sectors",
    "stage": "value-chain-stages",
    "actor_type": "actor-types",
    "programme": "programmes",
    "role": "partner-roles",
    "offer_type": "offer-types",
    "size_class": "size-classes",
}


@functools.cache
def _labels(kind: str) -> dict[str, str]:
    return {row["code"]: row["label"] for row in code_list(LISTS[kind])}


def label(kind: str, code: Any) -> str:
    """The code list's label of a code ("DE" -> "Germany"); the code itself when the list lacks it."""
    if code is None or code == "":
        return ""
    if kind == "region":
        return region_name(code)
    return _labels(kind).get(str(code), str(code))


def short_label(kind: str, code: Any) -> str:
    """A label without its parenthesised explanation: "Red biotechnology (health, ...)" -> "Red biotechnology"."""
    return re.sub(r"\s*\(.*\)\s*$", "", label(kind, code)) or str(code or "")


def country_name(code: Any) -> str:
    return label("country", code)


def region_name(code: Any) -> str:
    region = _regions().get(str(code)) if code else None
    return region["name"] if region else str(code or "")


def codes(kind: str) -> list[tuple[str, str]]:
    """(code, short label) of a whole list, for the front door's choices."""
    return [(code, short_label(kind, code)) for code in _labels(kind)]


def euros(amount: Any) -> str:
    """A euro amount with separators: 6646200.0 -> "€6,646,200", 1234567.89 -> "€1,234,567.89"."""
    if amount is None or amount == "":
        return ""
    try:
        value = float(amount)
    except (TypeError, ValueError):
        return str(amount)
    if value == int(value):
        return f"€{int(value):,}"
    return f"€{value:,.2f}"


def euros_from_cents(cents: Any) -> str:
    """The signed record's exact integer cents as euros."""
    if not isinstance(cents, int) or isinstance(cents, bool):
        return ""
    whole, rest = divmod(abs(cents), 100)
    sign = "-" if cents < 0 else ""
    return f"{sign}€{whole:,}" + (f".{rest:02d}" if rest else "")


def accepted_languages(header: str | None) -> list[str]:
    """Accept-Language as primary language codes, best first: "de-CH,de;q=0.9,en;q=0.5" -> ["de", "en"]."""
    ranked = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower().split("-")[0]
        if not tag or tag == "*" or not tag.isalpha():
            continue
        quality = 1.0
        match = re.search(r"q\s*=\s*([0-9.]+)", params)
        if match:
            try:
                quality = float(match[1])
            except ValueError:
                quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, tag))
    seen: dict[str, None] = {}
    for _, _, tag in sorted(ranked):
        seen.setdefault(tag, None)
    return list(seen)


def pick_language(language_map: Any, languages: list[str]) -> tuple[str | None, str | None]:
    """(text, its language) from a language map: the visitor's languages in order, else English, else any."""
    if isinstance(language_map, str):
        return language_map, None
    if not isinstance(language_map, dict) or not language_map:
        return None, None
    for lang in [*languages, "en"]:
        for key, text in language_map.items():
            if text and key.lower().split("-")[0] == lang:
                return text, key
    key, text = next(((k, v) for k, v in language_map.items() if v), (None, None))
    return text, key


def web_url(url: Any) -> str | None:
    """url when it is an http(s) address, else None: a signed record's `javascript:` is never a link."""
    if isinstance(url, str) and url.strip().lower().startswith(("https://", "http://")):
        return url.strip()
    return None
