"""Version 1.1 of the data standard adds Actor `sameAs` and keeps every 1.0 record valid."""

from __future__ import annotations

import json

from support import DATA, REPOSITORY

from biofed.schema import SCHEMA_VERSION, SCHEMA_VERSIONS, schema_documents, validate_record
from biofed.trust.keys import SigningKey
from biofed.trust.proofs import verify

KEY = SigningKey.from_seed(bytes(range(32)))  # the key the 1.0 record below was signed with


def test_versions_are_listed_oldest_first_and_every_id_carries_the_current_one():
    assert SCHEMA_VERSIONS == ("1.0", "1.1") and SCHEMA_VERSION == "1.1"
    assert all(doc["$id"].startswith("https://biofed.eu/schema/1.1/") for doc in schema_documents().values())


def test_a_record_signed_under_1_0_stays_valid_and_verifies():
    # signed when the standard was 1.0 (the example actor, version 3): kept byte for byte
    old = json.loads((DATA / "schema" / "actor-signed-1.0.json").read_text(encoding="utf-8"))
    assert "sameAs" not in old
    assert validate_record(old) == []
    verify(old, KEY.public)


def test_the_1_0_examples_are_valid_content():
    for name in ("actor", "project", "offer"):
        content = json.loads((REPOSITORY / "biofed" / "schema" / "examples" / f"{name}.json").read_text("utf-8"))
        assert validate_record(content, signed=False) == []


def test_same_as_names_actors_on_other_nodes_only():
    content = json.loads((REPOSITORY / "biofed" / "schema" / "examples" / "actor.json").read_text("utf-8"))
    assert validate_record({**content, "sameAs": ["biopro-bw/actor/neckartal-biologics"]}, signed=False) == []
    issues = validate_record({**content, "sameAs": ["biopro-bw/project/x", "bioregio-stern/actor/ntb"]}, signed=False)
    assert {(i.pointer, i.rule) for i in issues} == {("/sameAs/0", "pattern"), ("/sameAs/1", "sameAsOtherNode")}
    repeated = validate_record({**content, "sameAs": ["a1/actor/x", "a1/actor/x"]}, signed=False)
    assert [i.rule for i in repeated] == ["uniqueItems"]
