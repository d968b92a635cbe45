"""The JSON Schema documents, as served and as compiled.

The files in `schemas/` are the source; `"x-codeList"` nodes get the `enum`
of their code list here, so a code list is edited in exactly one place.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

from biofed.errors import BiofedError
from biofed.schema.codes import codes

SCHEMA_VERSION = "1.0"
SCHEMA_VERSIONS = (SCHEMA_VERSION,)
BASE_URI = f"https://biofed.eu/schema/{SCHEMA_VERSION}/"
SCHEMAS_DIR = Path(__file__).parent / "schemas"

# record type -> schema name
RECORD_SCHEMAS = {
    "Actor": "actor",
    "Project": "project",
    "Offer": "offer",
    "Tombstone": "tombstone",
    "KeyRotation": "key-rotation",
    "KeyRevocation": "key-revocation",
}
DOCUMENT_SCHEMAS = ("registry", "node-descriptor")
# Fields the node sets when it signs: not required of content before signing.
NODE_SET_FIELDS = ("version", "dateModified", "proof")


def _expand_code_lists(node):
    if isinstance(node, dict):
        out = {key: _expand_code_lists(value) for key, value in node.items()}
        if "x-codeList" in out:
            out["enum"] = list(codes(out["x-codeList"]))
        return out
    if isinstance(node, list):
        return [_expand_code_lists(item) for item in node]
    return node


@functools.cache
def _documents() -> dict[str, dict]:
    documents = {}
    for path in sorted(SCHEMAS_DIR.glob("*.json")):
        with path.open(encoding="utf-8") as fh:
            document = json.load(fh)
        if document.get("$id") != BASE_URI + path.name:
            raise BiofedError(f"{path.name}: $id must be {BASE_URI + path.name!r}")
        documents[path.stem] = _expand_code_lists(document)
    return documents


def schema_documents() -> dict[str, dict]:
    """name -> JSON Schema (code lists expanded): what a node serves at /schemas/{name}.json."""
    return copy.deepcopy(_documents())


def schema_document(name: str) -> dict:
    documents = _documents()
    if name not in documents:
        raise BiofedError(f"no schema {name!r}; known: {', '.join(sorted(documents))}")
    return copy.deepcopy(documents[name])


def unsigned_variant(document: dict) -> dict:
    """The schema of content before the node signs it: version, dateModified, proof optional."""
    variant = copy.deepcopy(document)
    variant["required"] = [name for name in variant.get("required", []) if name not in NODE_SET_FIELDS]
    return variant
