"""The one check that keeps private persons' e-mail addresses out of imported records.

A node publishes organisations, so a contact must be a role mailbox
(`info@`, `presse@`, `bd@`). An address is refused when its local part is
shaped like a person's name:

* `first.last`, `f.last`, `first_last`, also with hyphenated parts
  (`marie-claire.lefevre`, `jean.dupont-moreau`);
* `firstlast`, `flast` or `lastfirst` built from two neighbouring words of a
  name the row gives (`mariedupont@` for "Marie Dupont Consulting"), unless
  those words are the whole name (`neckarcell@` for "Neckar Cell GmbH").

A local part with a role word in it (`press.office`, `info-de`) passes. The
limits (docs/importing.md): a lone surname (`dupont@`) or a name that no
field of the row mentions (`mdupont@` for "Neckar Cell GmbH") cannot be told
from a role or a brand, and passes.
"""

from __future__ import annotations

import re

from anyascii import anyascii

ROLE_WORDS = {"info", "office", "contact", "kontakt", "press", "presse", "sales", "vertrieb", "service",
              "support", "team", "jobs", "hr", "admin", "mail", "post", "hello", "welcome", "secretariat",
              "sekretariat", "empfang", "reception", "communication", "kommunikation", "marketing", "events",
              "bd", "business", "development", "research", "lab", "labor", "training", "akademie", "academy",
              "transfer", "techtransfer", "innovation", "pressestelle", "zentrale", "institut", "institute"}
_PART = r"[a-z]+(?:-[a-z]+)*"  # a name, possibly hyphenated (marie-claire)
_DOTTED_NAME = re.compile(rf"{_PART}[._]{_PART}")
# Legal forms are not part of what a brand mailbox abbreviates ("Neckar Cell GmbH" -> neckarcell@).
_LEGAL_FORMS = {"gmbh", "ag", "kg", "ug", "se", "sa", "sas", "sarl", "srl", "spa", "bv", "nv", "ab", "as", "aps",
                "oy", "ltd", "limited", "plc", "inc", "llc", "co", "ev", "e", "v", "mbh", "gbr", "ohg", "sp", "zoo"}
ASK = "give a role mailbox such as info@..., contact@... or presse@... (never a person's own address)"


def personal_address(address: str, names: list[str] = ()) -> str | None:
    """Why `address` looks like a private person's, or None when it may be a role mailbox."""
    local = address.split("@")[0].lower()
    if set(re.split(r"[._+-]", local)) & ROLE_WORDS:
        return None
    if _DOTTED_NAME.fullmatch(local):
        return f"{address!r} looks like a person's address (first.last); {ASK}"
    for name in names:
        words = [w for w in re.split(r"[^a-z]+", anyascii(name).lower()) if w and w not in _LEGAL_FORMS]
        for first, last in zip(words, words[1:]):
            if len(words) == 2 or len(first) < 2 or len(last) < 2:
                continue  # the two words are the whole name: a brand mailbox (neckarcell@)
            if local in (first + last, first[0] + last, last + first):
                return f"{address!r} looks like a person's address ({first} {last}, from the name {name!r}); {ASK}"
    return None
