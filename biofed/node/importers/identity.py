"""Which record a spreadsheet row is, when the row has no `id`.

The id comes from the strongest identifier the row carries -- PIC, ROR, VAT,
website domain, in that order -- so renaming an organisation updates the
same record; a row with none of them falls back to its name. The same
identifiers find a record that was published earlier under another id (an
id derived from the name by an older version), see biofed.node.importing.
"""

from __future__ import annotations

import re

KEYS = ("pic", "ror", "vat", "domain")


# scheme, optional user info and "www.", then the host (ASCII names only: it becomes a local id), then a port,
# a path or the end
_HOST = re.compile(r"^https?://(?:[^/?#@]*@)?(?:www\.)?([a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)+)\.?(?=[:/?#]|$)",
                   re.IGNORECASE)


def website_domain(url: str | None) -> str | None:
    """`https://www.Neckar-Cell.example/en/` -> `neckar-cell.example` (None when there is no usable host)."""
    match = _HOST.match(url or "")
    return match.group(1).lower() if match else None


def match_keys(content: dict) -> list[tuple[str, str]]:
    """The identifying keys of record content, strongest first: [("pic", "999881918"), ("domain", ...)]."""
    identifiers = content.get("identifiers") or {}
    keys = [(key, identifiers[key]) for key in ("pic", "ror", "vat") if identifiers.get(key)]
    domain = website_domain(content.get("website"))
    if domain:
        keys.append(("domain", domain))
    return keys


def local_id_from(key: str, value: str) -> str:
    """The local id a key mints: `pic-999881918`, the ROR id's suffix (as the ROR importer), `vat-de123456789`,
    or the website domain."""
    if key == "pic":
        return f"pic-{value}"  # as the CORDIS importer names participants
    if key == "ror":
        return value.rsplit("/", 1)[-1]
    if key == "vat":
        return "vat-" + re.sub(r"[^a-z0-9]", "", value.lower())
    return value


def name_of(content: dict) -> str:
    """The preferred name (actors) or the title (projects, offers): what an id used to be derived from."""
    for name in content.get("names") or []:
        if name.get("preferred"):
            return name["value"]
    return content.get("title") or ""
