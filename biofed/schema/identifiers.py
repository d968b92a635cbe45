"""How organisation identifiers compare: one rule for the node's importers and the catalogue.

`https://ror.org/0ABC/` and `0abc` are one ROR id; `DE 123.456.789` and
`de123456789` one VAT number; `https://www.wikidata.org/wiki/Q42` and `q42`
one Wikidata item. STRONG identifiers name one organisation across nodes
(docs/data-standard.md); the others help a node match its own sources.
"""

from __future__ import annotations

import re

STRONG = ("ror", "pic", "vat", "wikidata")
IDENTIFIERS = ("ror", "pic", "vat", "lei", "wikidata", "grid", "isni")


def normalised_identifier(kind: str, value) -> str | None:
    """An identifier as compared: ROR as its lower-case suffix, GRID lower case, the others upper case
    letters and digits only; None for an empty or non-string value."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if kind == "ror":
        return text.lower().rstrip("/").rsplit("/", 1)[-1] or None
    if kind == "grid":
        return text.lower()
    if kind == "wikidata":
        text = text.rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[^0-9A-Za-z]", "", text).upper() or None
