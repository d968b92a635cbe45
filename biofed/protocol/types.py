"""The record types of the protocol (docs/protocol.md §3) and the kind each content type has in ids."""

from __future__ import annotations

# Content records: type -> the kind in their ids (`<node>/<kind>/<local id>`).
KIND_OF_TYPE = {"Actor": "actor", "Project": "project", "Offer": "offer"}
CONTENT_TYPES = tuple(KIND_OF_TYPE)
KINDS = tuple(KIND_OF_TYPE.values())
# Log statements: signed and logged like records, but no content.
STATEMENT_TYPES = ("Tombstone", "KeyRotation", "KeyRevocation")
KEY_STATEMENT_TYPES = ("KeyRotation", "KeyRevocation")
RECORD_TYPES = CONTENT_TYPES + STATEMENT_TYPES
