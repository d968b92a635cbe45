"""The published schema files are complete and portable.

They carry their code lists (generated, never edited by hand), use only JSON
Schema 2020-12 keywords, are served by a node byte for byte, and validate the
same way in the reference Python validator (`jsonschema`) as in BioFed's own
(jsonschema-rs): every mistake of tests/data/schema/corpus.json is refused by
both, for that mistake, and the examples are accepted. tests/interop/js/ runs
the same corpus through Ajv.
"""

from __future__ import annotations

import copy
import json

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from support import DATA, REPOSITORY
from support.node import make_node

from biofed.node.app import create_app
from biofed.schema import code_list_names, generate, validate_record
from biofed.schema.codes import codes
from biofed.schema.documents import SCHEMAS_DIR, code_list_of

EXAMPLES_DIR = REPOSITORY / "biofed" / "schema" / "examples"
CORPUS = json.loads((DATA / "schema" / "corpus.json").read_text(encoding="utf-8"))
FILES = {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(SCHEMAS_DIR.glob("*.json"))}


# --- the corpus, built the way tests/interop/js/interop.mjs builds it

def _tokens(pointer: str) -> list[str]:
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer.split("/")[1:]]


def _parent(document, pointer: str):
    *path, last = _tokens(pointer)
    for token in path:
        document = document[int(token)] if isinstance(document, list) else document[token]
    return document, (int(last) if isinstance(document, list) else last)


def valid_records() -> dict[str, dict]:
    return {name: {**json.loads((EXAMPLES_DIR / f"{name}.json").read_text(encoding="utf-8")), **CORPUS["signed"]}
            for name in ("actor", "project", "offer")}


def broken_record(mistake: dict) -> dict:
    record = copy.deepcopy(valid_records()[mistake["base"]])
    for pointer, value in mistake.get("set", {}).items():
        parent, key = _parent(record, pointer)
        parent[key] = value
    for pointer in mistake.get("remove", []):
        parent, key = _parent(record, pointer)
        del parent[key]
    return record


# --- the reference validator, reading the files and nothing else

def reference_validator(schema_file: str) -> Draft202012Validator:
    registry = Registry().with_resources((doc["$id"], Resource.from_contents(doc)) for doc in FILES.values())
    return Draft202012Validator(FILES[schema_file], registry=registry, format_checker=FormatChecker())


def _pointer(path) -> str:
    return "".join("/" + str(token).replace("~", "~0").replace("/", "~1") for token in path)


def reference_pointers(record: dict, schema_file: str) -> set[str]:
    """Where the reference validator finds errors: the failing value, or the missing / extra member."""
    pointers = set()
    for error in reference_validator(schema_file).iter_errors(record):
        where = _pointer(error.absolute_path)
        if error.validator == "required":
            pointers.update(f"{where}/{name}" for name in error.validator_value if name not in error.instance)
        elif error.validator == "additionalProperties":
            pointers.update(f"{where}/{name}" for name in set(error.instance) - set(error.schema.get("properties", {})))
        elif "propertyNames" in error.schema_path:
            pointers.add(f"{where}/{error.instance}")
        else:
            pointers.add(where)
    return pointers


def test_the_reference_validator_checks_every_format_the_schemas_use():
    # jsonschema skips a format it has no checker for: date-time and uri need the
    # rfc3339-validator and rfc3986-validator packages (pyproject's test extra).
    used = {node["format"] for node in _schema_nodes() if isinstance(node.get("format"), str)}
    assert used == {"date", "date-time", "email", "uri"}
    assert used <= set(FormatChecker().checkers)


@pytest.mark.parametrize("name", ["actor", "project", "offer"])
def test_both_validators_accept_the_examples(name):
    record = valid_records()[name]
    assert list(reference_validator(f"{name}.json").iter_errors(record)) == []
    assert validate_record(record) == []


@pytest.mark.parametrize("mistake", CORPUS["mistakes"], ids=[m["mistake"] for m in CORPUS["mistakes"]])
def test_both_validators_refuse_each_mistake_where_it_is(mistake):
    record = broken_record(mistake)
    found = reference_pointers(record, f"{mistake['base']}.json")
    assert mistake["pointer"] in found, f"jsonschema: {mistake['mistake']}: errors at {sorted(found)}"
    issues = {(issue.pointer, issue.rule) for issue in validate_record(record)}
    assert (mistake["pointer"], mistake["rule"]) in issues, f"biofed: {mistake['mistake']}: {sorted(issues)}"


def test_the_corpus_covers_every_kind_of_mistake():
    rules = {m["rule"] for m in CORPUS["mistakes"]}
    assert {"enum", "format", "pattern", "additionalProperties", "required", "type", "const", "minimum", "maximum",
            "minItems", "minLength", "uniqueItems", "minContains", "maxContains", "propertyNames"} <= rules
    assert {m["base"] for m in CORPUS["mistakes"]} == {"actor", "project", "offer"}


# --- the files themselves

def _schema_nodes():
    """Every object in a schema position of the files (not inside enum, const, required, ...)."""
    subschema = {"items", "contains", "additionalProperties", "unevaluatedProperties", "propertyNames", "not"}
    maps = {"properties", "$defs", "patternProperties"}
    lists = {"allOf", "anyOf", "oneOf", "prefixItems"}
    stack = list(FILES.values())
    while stack:
        node = stack.pop()
        yield node
        for key, value in node.items():
            if key in subschema and isinstance(value, dict):
                stack.append(value)
            elif key in maps:
                stack.extend(value.values())
            elif key in lists:
                stack.extend(value)


# The JSON Schema 2020-12 vocabularies (core, applicator, validation, format, meta-data, unevaluated).
KEYWORDS_2020_12 = {
    "$schema", "$id", "$ref", "$defs", "$comment", "$anchor", "$dynamicRef", "$dynamicAnchor", "$vocabulary",
    "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependentSchemas", "prefixItems", "items", "contains",
    "properties", "patternProperties", "additionalProperties", "propertyNames", "unevaluatedItems",
    "unevaluatedProperties", "type", "const", "enum", "multipleOf", "maximum", "exclusiveMaximum", "minimum",
    "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "maxContains",
    "minContains", "maxProperties", "minProperties", "required", "dependentRequired", "format", "title",
    "description", "default", "deprecated", "readOnly", "writeOnly", "examples",
}


def test_the_files_use_only_json_schema_2020_12_keywords():
    for node in _schema_nodes():
        assert set(node) <= KEYWORDS_2020_12, set(node) - KEYWORDS_2020_12
    for name, document in FILES.items():
        Draft202012Validator.check_schema(document)
        assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema", name


def test_the_files_carry_their_code_lists():
    used = set()
    for node in _schema_nodes():
        name = code_list_of(node)
        if name:
            assert node["enum"] == list(codes(name)) and node["type"] == "string", name
            used.add(name)
    assert used == set(code_list_names())
    assert "UK" not in FILES["common.json"]["$defs"]["countryCode"]["enum"]
    assert "startup" not in FILES["actor.json"]["properties"]["actorType"]["enum"]


def test_the_files_match_the_generator():
    stale = [path.name for path, text in generate.generated().items() if path.read_text(encoding="utf-8") != text]
    assert stale == [], f"{stale} drifted from the code lists: run python -m biofed.schema.generate"
    assert generate.main(["--check"]) == 0


def test_a_changed_code_list_is_drift(monkeypatch):
    real = generate.codes
    monkeypatch.setattr(generate, "codes", lambda name: real(name) + (("startup",) if name == "actor-types" else ()))
    text = generate.generated()[SCHEMAS_DIR / "actor.json"]
    assert '"startup"' in text and text != (SCHEMAS_DIR / "actor.json").read_text(encoding="utf-8")
    assert generate.main(["--check"]) == 1


def test_a_node_serves_the_files_byte_for_byte(tmp_path):
    node, _ = make_node(tmp_path)
    node.close()
    with TestClient(create_app(tmp_path / "node")) as client:
        for path in sorted(SCHEMAS_DIR.glob("*.json")):
            response = client.get(f"/schemas/{path.name}")
            assert response.status_code == 200 and response.headers["content-type"] == "application/schema+json"
            assert response.content == path.read_bytes(), path.name
