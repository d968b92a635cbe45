"""The data standard: schemas, code lists, validation issues, `biofed validate`, the generated doc."""

from __future__ import annotations

import copy
import json

import jsonschema_rs
import pytest
from click.testing import CliRunner
from support import DATA, REPOSITORY

from biofed.cli import cli
from biofed.schema import (
    SCHEMA_VERSION,
    SCHEMA_VERSIONS,
    ValidationIssue,
    code_list,
    docs,
    nuts_regions,
    schema_documents,
    validate_document,
    validate_record,
)
from biofed.schema.codes import code_list_names
from biofed.trust.keys import SigningKey
from biofed.trust.proofs import sign

EXAMPLES = REPOSITORY / "biofed" / "schema" / "examples"
SCHEMA_DATA = DATA / "schema"
NOW = "2026-11-23T12:00:00Z"
KEY = SigningKey.from_seed(bytes(range(32)))


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def signed(content: dict, version: int = 1) -> dict:
    node = content["id"].split("/")[0]
    return sign({**content, "version": version, "dateModified": NOW}, KEY, f"urn:biofed:{node}#{KEY.public.kid}",
                created=NOW)


def by_pointer(issues: list[ValidationIssue]) -> dict[str, list[ValidationIssue]]:
    out: dict[str, list[ValidationIssue]] = {}
    for issue in issues:
        out.setdefault(issue.pointer, []).append(issue)
    return out


# --- valid records

@pytest.mark.parametrize("name", ["actor", "project", "offer"])
def test_examples_are_valid_content_and_valid_once_signed(name):
    content = example(name)
    assert validate_record(content, signed=False) == []
    assert validate_record(signed(content)) == []
    missing = validate_record(content)  # unsigned content is not a signed record
    assert {(i.pointer, i.rule) for i in missing} == {("/version", "required"), ("/dateModified", "required"),
                                                      ("/proof", "required")}


def test_log_statements_are_valid():
    new_key = SigningKey.from_seed(bytes(range(1, 33)))
    tombstone = signed({"id": "bioregio-stern/actor/neckartal-biologics", "type": "Tombstone"}, version=4)
    rotation = signed({"id": f"bioregio-stern/key/{new_key.public.kid}", "type": "KeyRotation",
                       "node": "bioregio-stern", "previousKid": KEY.public.kid, "newKey": new_key.public.jwk()})
    revocation = signed({"id": f"bioregio-stern/key-revocation/{new_key.public.kid}", "type": "KeyRevocation",
                         "node": "bioregio-stern", "kid": new_key.public.kid, "compromisedSince": NOW})
    for record in (tombstone, rotation, revocation):
        assert validate_record(record) == [], record["type"]
    bad = {**revocation, "compromisedSince": "yesterday"}
    assert [(i.pointer, i.rule) for i in validate_record(bad)] == [("/compromisedSince", "format")]


# --- invalid records from real data

def test_cordis_project_with_source_quirks_gets_readable_issues():
    record = json.loads((SCHEMA_DATA / "cordis-project-invalid.json").read_text(encoding="utf-8"))
    issues = by_pointer(validate_record(record, signed=False))
    assert issues["/startDate"][0] == ValidationIssue("/startDate", "format",
                                                      "'2014-13-45' is not a valid date (YYYY-MM-DD)")
    assert issues["/totalBudgetCents"][0].rule == "type"
    assert "expected an integer, got a string '230000,00'" == issues["/totalBudgetCents"][0].message
    assert issues["/programme"][0].rule == "enum" and "'H2020-EU.1.1.'" in issues["/programme"][0].message
    assert issues["/partners/1/country"][0].message == \
        "'UK' is not an ISO 3166-1 alpha-2 country code (use 'GB')"
    assert issues["/partners/1/role"][0].rule == "enum"
    assert issues["/rcn"] == [ValidationIssue("/rcn", "additionalProperties", "unknown field 'rcn'")]
    assert set(issues) == {"/startDate", "/totalBudgetCents", "/programme", "/partners/1/country",
                           "/partners/1/role", "/rcn"}


def test_ror_actor_with_float_coordinates_and_typos_gets_every_issue():
    record = json.loads((SCHEMA_DATA / "ror-actor-invalid.json").read_text(encoding="utf-8"))
    issues = validate_record(record, signed=False)
    got = {(i.pointer, i.rule) for i in issues}
    profile = [i for i in issues if i.rule == "profile"]  # the strict profile: no floats (first one found) ...
    assert len(profile) == 1 and profile[0].pointer in ("/geo/lat", "/geo/lon")
    assert "floating-point number" in profile[0].message
    assert got - {(profile[0].pointer, "profile")} == {
        ("/geo/lat", "type"), ("/geo/lon", "type"),  # ... and the schema: decimal strings
        ("/names", "maxContains"),
        ("/sectors/1", "enum"),
        ("/contact/email", "format"),
        ("/country", "enum"),
        ("/adress", "additionalProperties"),
    }
    messages = {(i.pointer, i.rule): i.message for i in issues}
    assert messages[("/contact/email", "format")] == "'x@' is not a valid e-mail address"
    assert messages[("/names", "maxContains")] == "exactly one name must have preferred: true, found 2"
    assert messages[("/adress", "additionalProperties")] == "unknown field 'adress' (did you mean 'address'?)"
    assert "'genomics'" in messages[("/sectors/1", "enum")] and "sectors" in messages[("/sectors/1", "enum")]
    assert messages[("/geo/lat", "type")] == "expected a string, got a number with a fraction 51.75222"


def test_end_date_before_start_date_is_a_date_order_issue():
    record = example("project")
    assert validate_record({**record, "endDate": "2015-04-30"}, signed=False) == [
        ValidationIssue("/endDate", "dateOrder", "end date 2015-04-30 is before start date 2015-05-01")]
    assert validate_record({**record, "endDate": record["startDate"]}, signed=False) == []


def test_no_preferred_name_and_region_outside_country():
    record = example("actor")
    record["names"] = [{"value": "Neckartal Biologics GmbH"}]
    record["region"] = "FR10"
    issues = {(i.pointer, i.rule): i.message for i in validate_record(record, signed=False)}
    assert issues == {("/names", "minContains"): "exactly one name must have preferred: true, found 0",
                      ("/region", "regionCountry"): "region 'FR10' is not in country 'DE'"}


def test_greek_and_british_regions_use_nuts_codes_with_iso_countries():
    record = {**example("actor"), "country": "GR", "region": "EL30", "address": {"country": "GR"}}
    assert validate_record(record, signed=False) == []


def test_contact_has_no_place_for_a_person():
    record = example("actor")
    record["contact"] = {**record["contact"], "name": "A. Person"}
    assert [(i.pointer, i.rule) for i in validate_record(record, signed=False)] == [
        ("/contact/name", "additionalProperties")]


def test_unknown_type_and_not_an_object():
    assert validate_record({"type": "Company", "id": "x/actor/y"}) == [ValidationIssue(
        "/type", "type",
        "unknown record type 'Company': expected one of Actor, Project, Offer, Tombstone, KeyRotation, KeyRevocation")]
    assert [i.rule for i in validate_record({"id": "x"})] == ["required"]
    assert validate_record([1, 2])[0].message == "a record must be a JSON object, got an array"


def test_profile_violations_of_parsed_records():
    record = example("offer")
    cases = {
        "float": ({"coFundingRateBp": 1.0}, "/coFundingRateBp", "floating-point"),
        "huge": ({"foundingYear": 2**60}, "/foundingYear", "outside"),
        "nfc": ({"title": "Bioprocess Cafe\u0301"}, "/title", "NFC"),
    }
    for name, (change, pointer, words) in cases.items():
        target = example("actor") if name == "huge" else record
        issues = validate_record({**target, **change}, signed=False)
        profile = [i for i in issues if i.rule == "profile"]
        assert profile and profile[0].pointer == pointer and words in profile[0].message, name


def test_issue_as_dict():
    issue = ValidationIssue("/x", "type", "expected a string")
    assert issue.as_dict() == {"pointer": "/x", "rule": "type", "message": "expected a string"}


# --- network documents

def _key_entry(key: SigningKey) -> dict:
    return {**key.public.jwk(), "status": "active", "validFrom": NOW, "validUntil": None, "compromisedSince": None}


def test_node_descriptor_and_registry_documents():
    descriptor = {"id": "bioregio-stern", "name": "BioRegio STERN", "country": "DE", "region": "DE1",
                  "licence": "CC-BY-4.0", "baseUrl": "https://node.example", "origin": "biofed/node/bioregio-stern",
                  "schemaVersions": list(SCHEMA_VERSIONS), "keys": {"keys": [_key_entry(KEY)]}}
    assert validate_document(descriptor, "node-descriptor") == []
    broken = copy.deepcopy(descriptor)
    broken["keys"]["keys"][0]["status"] = "lost"
    broken["keys"]["keys"][0]["d"] = "private!"
    assert {(i.pointer, i.rule) for i in validate_document(broken, "node-descriptor")} == {
        ("/keys/keys/0/status", "enum"), ("/keys/keys/0/d", "unevaluatedProperties")}

    registry = {"type": "BioFedRegistry", "name": "biofed-europe", "version": 7, "issued": NOW,
                "expires": "2026-12-23T12:00:00Z", "registryKeys": [KEY.public.jwk()],
                "nodes": [{"id": "bioregio-stern", "name": "BioRegio STERN", "country": "DE", "region": None,
                           "baseUrl": "https://node.example", "licence": "CC-BY-4.0", "status": "active",
                           "controlVerified": True, "keys": [_key_entry(KEY)]}]}
    registry = sign(registry, KEY, f"urn:biofed:registry:biofed-europe#{KEY.public.kid}", created=NOW)
    assert validate_document(registry, "registry") == []
    stale = {**registry, "expires": "2026-12-23 12:00"}
    assert [(i.pointer, i.rule) for i in validate_document(stale, "registry")] == [("/expires", "format")]
    with pytest.raises(ValueError):
        validate_document(registry, "no-such-schema")


# --- schemas and code lists

def test_schema_documents_have_stable_ids_and_are_valid_2020_12():
    documents = schema_documents()
    assert set(documents) == {"common", "actor", "project", "offer", "tombstone", "key-rotation",
                              "key-revocation", "registry", "node-descriptor"}
    for name, document in documents.items():
        assert document["$id"] == f"https://biofed.eu/schema/{SCHEMA_VERSION}/{name}.json"
        assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert jsonschema_rs.meta.is_valid(document), name
    # enums come from the code lists, the single source
    sectors = documents["actor"]["properties"]["sectors"]["items"]["enum"]
    assert sectors == [row["code"] for row in code_list("sectors")]
    assert documents["common"]["$defs"]["nutsCode"]["enum"] == list(nuts_regions())


def test_code_lists():
    assert {"actor-types", "value-chain-stages", "sectors", "offer-types", "programmes", "partner-roles",
            "countries", "nuts2021"} <= set(code_list_names())
    countries = [row["code"] for row in code_list("countries")]
    assert len(countries) == 249 and "GB" in countries and "GR" in countries and "UK" not in countries
    regions = nuts_regions()
    assert len(regions) == 451
    assert regions["DE14"] == {"name": "Tübingen", "level": 2, "lat": "48.132", "lon": "9.504"}
    assert regions["CH0"]["level"] == 1
    with pytest.raises(Exception, match="no code list 'colours'"):
        code_list("colours")


DRAFT_FIELDS = {
    "actor": ["id", "type", "version", "dateModified", "proof", "sources", "names", "acronyms", "actorType",
              "valueChainStages", "sectors", "technologies", "services", "description", "website", "contact",
              "address", "country", "region", "geo", "identifiers", "sizeClass", "foundingYear", "status",
              "memberships"],
    "project": ["title", "acronym", "description", "programme", "programmeCodes", "fundingScheme", "call",
                "grantId", "startDate", "endDate", "status", "totalBudgetCents", "euContributionCents",
                "coFundingRateBp", "topics", "partners", "links", "sources"],
    "offer": ["title", "offerType", "provider", "description", "technologies", "sectors", "valueChainStages",
              "conditions", "website", "contact", "country", "region", "validUntil"],
}


def test_every_field_of_the_draft_standard_is_kept():
    documents = schema_documents()
    for name, fields in DRAFT_FIELDS.items():
        assert set(fields) <= set(documents[name]["properties"]), name
    defs = documents["common"]["$defs"]
    assert set(defs["contact"]["properties"]) == {"email", "phone", "contactForm"}
    assert set(defs["address"]["properties"]) == {"street", "postalCode", "locality", "country"}
    assert set(defs["identifiers"]["properties"]) == {"ror", "pic", "vat", "lei", "wikidata", "grid", "isni"}
    # `derived` was added later (optional): which fields an importer derived from the source's evidence
    assert set(defs["sources"]["items"]["properties"]) == {"name", "url", "licence", "retrieved", "derived"}
    partner = documents["project"]["properties"]["partners"]["items"]["properties"]
    assert set(partner) == {"actor", "name", "country", "region", "role", "contributionCents", "identifiers"}  # + region


def test_committed_doc_matches_the_generator():
    assert docs.DOC_PATH.read_text(encoding="utf-8") == docs.generate(), \
        "docs/data-standard.md drifted: run python -m biofed.schema.docs"


# --- the command

def run(*args):
    return CliRunner().invoke(cli, ["validate", *map(str, args)])


def test_cli_valid_files_exit_zero(tmp_path):
    records = [signed(example(name)) for name in ("actor", "project", "offer")]
    array = tmp_path / "records.json"
    array.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    lines = tmp_path / "records.jsonl"
    lines.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    result = run(array, lines)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "6 records: 6 valid, 0 invalid, 0 issues"
    result = run("--unsigned", EXAMPLES / "actor.json")
    assert result.exit_code == 0 and "1 record: 1 valid" in result.output


def test_cli_reports_every_issue_with_location_id_pointer_rule():
    path = SCHEMA_DATA / "cordis-project-invalid.json"
    result = run("--unsigned", path)
    assert result.exit_code == 1
    assert (f"{path}:1: biofed-eu/project/h2020-633002: /startDate: '2014-13-45' is not a valid date "
            "(YYYY-MM-DD) [format]") in result.output.splitlines()
    assert result.output.splitlines()[-1] == "1 record: 0 valid, 1 invalid, 6 issues"
    signed_check = run(path)
    assert "/proof: required field 'proof' is missing" in signed_check.output


def test_cli_profile_violations_per_record_without_traceback(tmp_path):
    good = json.dumps(example("offer"), ensure_ascii=False).encode()
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join([
        good,
        b'{"id": "bioregio-stern/offer/a", "type": "Offer", "title": "x", "title": "y"}',
        b'{"id": "bioregio-stern/offer/b", "type": "Offer", "coFundingRateBp": 50.5}',
        b'{"id": "bioregio-stern/offer/c", "type": "Offer", "coFundingRateBp": 123456789012345678901}',
        '{"id": "bioregio-stern/offer/d", "type": "Offer", "title": "Cafe\u0301"}'.encode(),
        b'{"id": "bioregio-stern/offer/e", "title": "\xff\xfe"}',
        b'{"id": ',
        good,
    ]) + b"\n")
    result = run("--unsigned", path)
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    out = result.output.splitlines()
    assert f"{path}:2: bioregio-stern/offer/a: /title: duplicate key 'title' [profile]" in out
    assert any(line.startswith(f"{path}:3: bioregio-stern/offer/b: /coFundingRateBp: floating-point number 50.5") for line in out)
    assert any(line.startswith(f"{path}:4: ") and "outside" in line and line.endswith("[profile]") for line in out)
    assert f"{path}:5: bioregio-stern/offer/d: /title: string is not NFC-normalised [profile]" in out
    assert any(line.startswith(f"{path}:6: -: /: invalid UTF-8") for line in out)
    assert any(line.startswith(f"{path}:7: -: /: malformed JSON") for line in out)
    assert not any(line.startswith(f"{path}:1:") or line.startswith(f"{path}:8:") for line in out)
    assert out[-1].startswith("8 records: 2 valid, 6 invalid")


def test_cli_json_array_indexes_and_json_report(tmp_path):
    path = tmp_path / "array.json"
    path.write_text(json.dumps([example("actor"), {**example("actor"), "country": "UK"}]), encoding="utf-8")
    result = run("--unsigned", "--json", path)
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["records"] == 2 and report["valid"] == 1 and report["invalid"] == 1 and report["signed"] is False
    (entry,) = report["results"]
    assert entry["location"] == "[1]" and entry["id"] == "bioregio-stern/actor/neckartal-biologics"
    assert {"pointer": "/country", "rule": "enum",
            "message": "'UK' is not an ISO 3166-1 alpha-2 country code (use 'GB')"} in entry["issues"]


def test_cli_broken_array_reports_the_rest_as_one_bad_record(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[' + json.dumps(example("offer")) + ', {"id": ]', encoding="utf-8")
    result = run("--unsigned", path)
    assert result.exit_code == 1
    assert any(line.startswith(f"{path}:[1]: -: /: malformed JSON") for line in result.output.splitlines())
    assert result.output.splitlines()[-1].startswith("2 records: 1 valid, 1 invalid")
