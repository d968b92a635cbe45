"""What a record is to the node: its id in the node's namespace, its content, its hash."""

from __future__ import annotations

import hashlib
import re

from biofed.protocol.types import CONTENT_TYPES, KIND_OF_TYPE
from biofed.schema import ValidationIssue
from biofed.trust.canonical import canonicalize

LOCAL_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
NODE_FIELDS = ("version", "dateModified", "proof")  # set by the node, never by the writer


# One shape for every problem report: the schema's (pointer, rule, message).
Issue = ValidationIssue


def content_of(record: dict) -> dict:
    """The record without the fields the node sets: what 'unchanged' compares."""
    return {k: v for k, v in record.items() if k not in NODE_FIELDS}


def content_hash(content: dict) -> bytes:
    return hashlib.sha256(canonicalize(content)).digest()


def namespaced_id(node_id: str, record_id, record_type) -> tuple[str | None, list[Issue]]:
    """Put `record_id` into the node's namespace: `<node>/<kind>/<local>`.

    Accepted: the full id, `<kind>/<local>`, or just `<local>` (kind from type).
    An id in another node's namespace is refused, never rewritten.
    """
    if not isinstance(record_type, str) or record_type not in CONTENT_TYPES:  # [] or {} is unhashable
        allowed = ", ".join(CONTENT_TYPES)
        return None, [Issue("/type", "type", f"type {record_type!r} is not one of {allowed}")]
    kind = KIND_OF_TYPE[record_type]
    if not isinstance(record_id, str) or not record_id:
        return None, [Issue("/id", "required", "id is missing (give <kind>/<local id> or just a local id)")]
    parts = record_id.split("/")
    if len(parts) == 3:
        if parts[0] != node_id:
            return None, [Issue("/id", "namespace", f"id {record_id!r} is outside this node's namespace {node_id + '/'!r}")]
        parts = parts[1:]
    if len(parts) == 1:
        parts = [kind, parts[0]]
    if len(parts) != 2:
        return None, [Issue("/id", "id-format", f"id {record_id!r} is not <node>/<kind>/<local id>")]
    given_kind, local = parts
    if given_kind != kind:
        return None, [Issue("/id", "id-kind", f"id {record_id!r} names kind {given_kind!r} but type {record_type} needs {kind!r}")]
    if not LOCAL_ID.match(local):
        return None, [Issue("/id", "id-format", f"local id {local!r} must match {LOCAL_ID.pattern}")]
    return f"{node_id}/{kind}/{local}", []
