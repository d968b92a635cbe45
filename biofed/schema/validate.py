"""Validate records and documents: every issue, with where, which rule, and what.

Valid records take the fast path (a compiled jsonschema-rs validator's
`is_valid`, a tight profile walk, one date comparison); only a failing record
pays for the detailed, readable issue list.
"""

from __future__ import annotations

import datetime
import difflib
import functools
import unicodedata
from dataclasses import dataclass

import jsonschema_rs

from biofed.schema.codes import COUNTRY_HINTS, NUTS_LIST, codes, nuts_country
from biofed.schema.documents import (
    DOCUMENT_SCHEMAS,
    NODE_SET_FIELDS,
    RECORD_SCHEMAS,
    _documents,
    unsigned_variant,
)
from biofed.trust.jsonprofile import MAX_DEPTH, MAX_SAFE_INTEGER, ProfileError, check


@dataclass(frozen=True)
class ValidationIssue:
    """One problem: JSON pointer of the failing value, the rule it breaks, a plain sentence."""

    pointer: str
    rule: str
    message: str

    def as_dict(self) -> dict:
        return {"pointer": self.pointer, "rule": self.rule, "message": self.message}

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message} [{self.rule}]"


# --- compiled validators (once per process)

@functools.cache
def _registry() -> jsonschema_rs.Registry:
    common = _documents()["common"]
    return jsonschema_rs.Registry([(common["$id"], common)])


@functools.cache
def _validator(name: str, signed: bool = True):
    document = _documents()[name]
    if not signed:
        document = unsigned_variant(document)
    return jsonschema_rs.validator_for(document, registry=_registry(), validate_formats=True)


def _schema_objects():
    """Every JSON object inside the schema documents, in document order (depth first)."""
    stack = [_documents()]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))


@functools.cache
def _pattern_hints() -> dict[str, str]:
    """pattern -> the description next to it in the schemas: what the value should look like."""
    hints: dict[str, str] = {}
    for node in _schema_objects():
        if isinstance(node.get("pattern"), str) and isinstance(node.get("description"), str):
            hints.setdefault(node["pattern"], node["description"].replace("`", "'"))
    return hints


@functools.cache
def _code_list_of_enum() -> dict[tuple, str]:
    from biofed.schema.codes import code_list_names

    return {codes(name): name for name in code_list_names()}


@functools.cache
def _known_fields() -> tuple[str, ...]:
    fields: set[str] = set()
    for node in _schema_objects():
        if isinstance(node.get("properties"), dict):
            fields.update(node["properties"])
    return tuple(sorted(fields))


# --- the strict JSON profile, fast path

def _profile_ok(value, depth: int = 0) -> bool:
    """True when `value` certainly obeys the profile; False sends it to the full check."""
    kind = type(value)
    if kind is str:
        return value.isascii() or unicodedata.is_normalized("NFC", value)
    if kind is dict:
        if depth >= MAX_DEPTH:
            return False
        for key, item in value.items():
            if type(key) is not str or not (key.isascii() or unicodedata.is_normalized("NFC", key)):
                return False
            if not _profile_ok(item, depth + 1):
                return False
        return True
    if kind is list:
        if depth >= MAX_DEPTH:
            return False
        for item in value:
            if not _profile_ok(item, depth + 1):
                return False
        return True
    if kind is int:
        return -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER
    return kind is bool or value is None


def profile_issues(value) -> list[ValidationIssue]:
    """The strict-profile violation of an already-parsed value, as issues (rule "profile")."""
    if _profile_ok(value):
        return []
    try:
        check(value)
    except ProfileError as exc:
        return [ValidationIssue(exc.pointer, "profile", exc.message)]
    return []


# --- readable issues from jsonschema-rs errors

def _pointer(path) -> str:
    return "".join("/" + str(token).replace("~", "~0").replace("/", "~1") for token in path)


def _show(value) -> str:
    if isinstance(value, str):
        return repr(value) if len(value) <= 80 else repr(value[:77] + "...")
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return str(value)
    return "an array" if isinstance(value, list) else "an object"


_JSON_TYPES = {str: "a string", bool: "a boolean", int: "an integer", float: "a number with a fraction",
               list: "an array", dict: "an object", type(None): "null"}
_FORMATS = {
    "date": "a valid date (YYYY-MM-DD)",
    "date-time": "a valid date-time (RFC 3339 UTC, e.g. 2026-11-23T12:00:00Z)",
    "email": "a valid e-mail address",
    "uri": "a valid URL",
}
_LIST_LABELS = {"countries": "an ISO 3166-1 alpha-2 country code", NUTS_LIST: "a NUTS 2021 region code (level 1 or 2)"}


def _enum_message(value, options: list) -> str:
    name = _code_list_of_enum().get(tuple(options))
    if name is None or len(options) <= 6:
        allowed = ", ".join(_show(option) for option in options)
        where = f" (code list {name})" if name else ""
        return f"{_show(value)} is not one of {allowed}{where}"
    label = _LIST_LABELS.get(name, f"a code of the list {name!r}")
    message = f"{_show(value)} is not {label}"
    if name == "countries" and isinstance(value, str) and value in COUNTRY_HINTS:
        message += f" (use {COUNTRY_HINTS[value]!r})"
    elif isinstance(value, str):
        close = difflib.get_close_matches(value, options, n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    return message


def _issues_from_error(error, pointer: str | None = None) -> list[ValidationIssue]:
    kind = error.kind
    name = type(kind).__name__
    where = _pointer(error.instance_path) if pointer is None else pointer
    value = error.instance
    rule = next((t for t in reversed(list(error.schema_path)) if isinstance(t, str)), name)
    if name == "Required":
        field = kind.property
        message = f"required field {field!r} is missing"
        if field in NODE_SET_FIELDS:
            message += " (the node sets it when signing; check content before signing with --unsigned)"
        return [ValidationIssue(f"{where}/{field}", "required", message)]
    if name in ("AdditionalProperties", "UnevaluatedProperties"):
        issues = []
        for field in kind.unexpected:
            message = f"unknown field {field!r}"
            close = difflib.get_close_matches(field, _known_fields(), n=1, cutoff=0.75)
            if close and close[0] != field:
                message += f" (did you mean {close[0]!r}?)"
            issues.append(ValidationIssue(f"{where}/{field}", rule, message))
        return issues
    if name == "Format":
        return [ValidationIssue(where, "format", f"{_show(value)} is not {_FORMATS.get(kind.format, 'a valid ' + kind.format)}")]
    if name == "Pattern":
        hint = _pattern_hints().get(kind.pattern)
        expected = f"expected {hint[0].lower() + hint[1:].rstrip('.')}" if hint else f"it must match {kind.pattern}"
        return [ValidationIssue(where, "pattern", f"{_show(value)} has the wrong form: {expected}")]
    if name == "PropertyNames":
        inner = kind.error
        key = inner.instance
        sub = _issues_from_error(inner, f"{where}/{key}")
        return [ValidationIssue(i.pointer, "propertyNames", f"key {i.message}") for i in sub]
    if name == "Enum":
        return [ValidationIssue(where, "enum", _enum_message(value, list(kind.options)))]
    if name == "Constant":
        return [ValidationIssue(where, "const", f"expected {_show(kind.expected_value)}, got {_show(value)}")]
    if name == "Type":
        expected = " or ".join(_JSON_TYPES.get({"string": str, "integer": int, "boolean": bool, "array": list,
                                                "object": dict, "null": type(None)}.get(t, float), t)
                               if t != "number" else "a number" for t in kind.types)
        got = _JSON_TYPES.get(type(value), type(value).__name__)
        shown = f" {_show(value)}" if not isinstance(value, (list, dict)) else ""
        return [ValidationIssue(where, "type", f"expected {expected}, got {got}{shown}")]
    if name == "Contains":
        if rule in ("minContains", "maxContains", "contains") and isinstance(value, list) and where.endswith("/names"):
            found = sum(1 for item in value if isinstance(item, dict) and item.get("preferred") is True)
            return [ValidationIssue(where, rule, f"exactly one name must have preferred: true, found {found}")]
        return [ValidationIssue(where, rule, error.message)]
    if name == "AnyOf":
        # "null or X": explain why it is not X, not that it is not null.
        branches = [[e for e in branch if not (type(e.kind).__name__ == "Type" and list(e.kind.types) == ["null"])]
                    for branch in kind.context]
        useful = [b for b in branches if b]
        if len(useful) == 1:
            return [issue for e in useful[0] for issue in _issues_from_error(e, where)]
        return [ValidationIssue(where, "anyOf", f"{_show(value)} matches none of the allowed forms")]
    limits = {
        "Minimum": "is less than the minimum {limit}", "Maximum": "is greater than the maximum {limit}",
        "ExclusiveMinimum": "must be greater than {limit}", "ExclusiveMaximum": "must be less than {limit}",
        "MinLength": "is shorter than {limit} characters", "MaxLength": "is longer than {limit} characters",
        "MinItems": "has fewer than {limit} items", "MaxItems": "has more than {limit} items",
        "MinProperties": "has fewer than {limit} entries", "MaxProperties": "has more than {limit} entries",
    }
    if name in limits:
        shown = _show(value) if not isinstance(value, (list, dict)) else ("the array" if isinstance(value, list) else "the object")
        return [ValidationIssue(where, rule, f"{shown} {limits[name].format(limit=kind.limit)}")]
    if name == "UniqueItems":
        return [ValidationIssue(where, "uniqueItems", "the array has duplicate items")]
    return [ValidationIssue(where, rule, error.message)]


def _schema_issues(validator, instance) -> list[ValidationIssue]:
    issues: list[ValidationIssue] = []
    for error in validator.iter_errors(instance):
        issues.extend(_issues_from_error(error))
    # A value that is not a date-time at all fails both `format` and the UTC
    # `pattern`; one sentence about it is enough.
    formats = {i.pointer for i in issues if i.rule == "format"}
    issues = [i for i in issues if not (i.rule == "pattern" and i.pointer in formats)]
    unique = list(dict.fromkeys(issues))
    return unique


# --- checks JSON Schema cannot express

def _is_date(value) -> bool:
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _semantic_issues(record: dict) -> list[ValidationIssue]:
    issues = []
    start, end = record.get("startDate"), record.get("endDate")
    if _is_date(start) and _is_date(end) and end < start:
        issues.append(ValidationIssue("/endDate", "dateOrder", f"end date {end} is before start date {start}"))
    region, country = record.get("region"), record.get("country")
    if isinstance(region, str) and isinstance(country, str) and len(region) >= 3 and len(country) == 2:
        if nuts_country(region) != country and region in _nuts_codes() and country in _country_codes():
            issues.append(ValidationIssue("/region", "regionCountry",
                                          f"region {region!r} is not in country {country!r}"))
    for n, other in _same_node_ids(record):
        issues.append(ValidationIssue(f"/sameAs/{n}", "sameAsOtherNode",
                                      f"{other!r} is a record of this record's own node: one organisation is one "
                                      "record per node (merge them); sameAs names records on other nodes"))
    return issues


def _same_node_ids(record: dict) -> list[tuple[int, str]]:
    """(position, id) of the `sameAs` ids on the record's own node (or the record itself)."""
    same, record_id = record.get("sameAs"), record.get("id")
    if not isinstance(same, list) or not isinstance(record_id, str):
        return []
    node = record_id.split("/", 1)[0] + "/"
    return [(n, other) for n, other in enumerate(same) if isinstance(other, str) and other.startswith(node)]


@functools.cache
def _country_codes() -> frozenset:
    return frozenset(codes("countries"))


@functools.cache
def _nuts_codes() -> frozenset:
    return frozenset(codes(NUTS_LIST))


def _semantic_ok(record: dict) -> bool:
    start, end = record.get("startDate"), record.get("endDate")
    if start is not None and end is not None and end < start:
        return False
    region = record.get("region")
    if region is not None and nuts_country(region) != record.get("country"):
        return False
    return not _same_node_ids(record)


# --- public API

def validate_record(record, *, signed: bool = True, in_profile: bool = False) -> list[ValidationIssue]:
    """Every issue of one record (empty list: valid).

    signed=False validates content before the node signs it: `version`,
    `dateModified` and `proof` may be absent.
    in_profile=True: the caller parsed `record` with jsonprofile (loads or
    parse, with its depth limit), which already enforced the strict profile;
    the profile walk is skipped.
    """
    if not isinstance(record, dict):
        return [ValidationIssue("", "type", f"a record must be a JSON object, got {_JSON_TYPES.get(type(record), type(record).__name__)}")]
    kind = record.get("type")
    schema = RECORD_SCHEMAS.get(kind) if isinstance(kind, str) else None
    if schema is None:
        known = ", ".join(RECORD_SCHEMAS)
        if kind is None:
            return [ValidationIssue("/type", "required", f"required field 'type' is missing (one of {known})")]
        return [ValidationIssue("/type", "type", f"unknown record type {_show(kind)}: expected one of {known}")]
    validator = _validator(schema, signed)
    if validator.is_valid(record) and (in_profile or _profile_ok(record)) and _semantic_ok(record):
        return []
    return ([] if in_profile else profile_issues(record)) + _schema_issues(validator, record) + _semantic_issues(record)


def validate_document(document, schema_name: str) -> list[ValidationIssue]:
    """Every issue of a registry document or node descriptor (schema_name "registry" / "node-descriptor")."""
    if schema_name not in DOCUMENT_SCHEMAS and schema_name not in RECORD_SCHEMAS.values():
        raise ValueError(f"no document schema {schema_name!r}; known: {', '.join(DOCUMENT_SCHEMAS)}")
    validator = _validator(schema_name, True)
    if validator.is_valid(document) and _profile_ok(document):
        return []
    issues = profile_issues(document) + _schema_issues(validator, document)
    if isinstance(document, dict):
        issues += [i for i in _semantic_issues(document) if i.rule != "regionCountry" or "nodes" not in document]
    return issues
