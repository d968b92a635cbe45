"""The JSON Schema documents, as published, served and compiled.

The files in `schemas/` are complete JSON Schema 2020-12 documents: a node
serves their bytes as they are. A node whose values come from a code list
names it in a `$comment` ("code list countries ..."); `generate.py` writes the
list's codes into its `enum`, so a code list is edited in exactly one place.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path

from biofed.errors import BiofedError

SCHEMA_VERSION = "1.1"
# Every version a record may be written in: 1.1 only adds optional fields (Actor `sameAs`), so a 1.0 record
# is a valid 1.1 record and a node reads and serves both.
SCHEMA_VERSIONS = ("1.0", SCHEMA_VERSION)
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


# `"$comment": "code list countries (...)"`: the node's enum is the code list `countries`.
_CODE_LIST_COMMENT = re.compile(r"code list ([a-z0-9-]+) ")


def code_list_of(node: dict) -> str | None:
    """The code list a schema node takes its values from (named in its `$comment`), or None."""
    match = _CODE_LIST_COMMENT.match(node.get("$comment", "")) if isinstance(node.get("$comment"), str) else None
    return match.group(1) if match else None


def code_list_comment(name: str) -> str:
    return f"code list {name} (biofed/schema/codes/{name}.csv): the enum is generated from it"


@functools.cache
def _files() -> dict[str, bytes]:
    return {path.stem: path.read_bytes() for path in sorted(SCHEMAS_DIR.glob("*.json"))}


@functools.cache
def _documents() -> dict[str, dict]:
    documents = {}
    for name, data in _files().items():
        document = json.loads(data)
        if document.get("$id") != f"{BASE_URI}{name}.json":
            raise BiofedError(f"{name}.json: $id must be {BASE_URI + name + '.json'!r}")
        documents[name] = document
    return documents


def schema_file(name: str) -> bytes:
    """The bytes of one schema file: what a node serves at /schemas/{name}.json."""
    files = _files()
    if name not in files:
        raise BiofedError(f"no schema {name!r}; known: {', '.join(sorted(files))}")
    return files[name]


def schema_documents() -> dict[str, dict]:
    """name -> JSON Schema, as in the files."""
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
