"""One organisation, one record per node: matching ROR, CORDIS and other sources, merging, `biofed node duplicates`.

Real nodes and the real `biofed node import` / `duplicates` commands; the demo's shipped data.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from click.testing import CliRunner

from biofed.cli import cli
from biofed.data import demo_nodes, demo_rows
from biofed.node.importers.matching import compare, merge_actors, normalised_name
from biofed.node.store import Node

NODE = "biopro-bw"
ROR_SOURCE = {"name": "ROR", "url": "https://ror.org/013czdx64", "licence": "CC0-1.0"}
CORDIS_SOURCE = {"name": "CORDIS", "licence": "LicenseRef-EC-Decision-2011-833"}


def run(*args, ok=True):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def actor(local: str, name: str, *, city=None, region=None, sources=None, node=NODE, **fields) -> dict:
    record = {"id": f"{node}/actor/{local}", "type": "Actor", "names": [{"value": name, "preferred": True}],
              "actorType": fields.pop("actorType", "university"), "country": fields.pop("country", "DE"), **fields}
    if city:
        record["address"] = {"locality": city, "country": record["country"]}
    if region:
        record["region"] = region
    if sources is not None:
        record["sources"] = sources
    return record


def ror_hospital(**extra) -> dict:
    record = actor("013czdx64", "University Hospital Heidelberg", city="Heidelberg", region="DE12", actorType="hospital",
                 sources=[ROR_SOURCE], identifiers={"ror": "https://ror.org/013czdx64", "wikidata": "Q1378320"},
                 website="https://www.klinikum.uni-heidelberg.de", **extra)
    record["names"].append({"value": "Universitätsklinikum Heidelberg", "lang": "de"})
    return record


def cordis_hospital(**extra) -> dict:
    record = actor("pic-999841081", "UNIVERSITAETSKLINIKUM HEIDELBERG", city="HEIDELBERG", region="DE12",
                   actorType="research-institute", sources=[CORDIS_SOURCE], identifiers={"pic": "999841081"},
                   sectors=["red-biotech"], **extra)
    record["names"].append({"value": "Universitätsklinikum Heidelberg"})
    return record


# --- the rule -------------------------------------------------------------------------------------

def test_names_compare_across_capitals_transliteration_mojibake_and_legal_forms():
    assert normalised_name("UNIVERSITAET ZUERICH") == normalised_name("Universität Zürich") == "universitat zurich"
    assert normalised_name("M√ºnster Biotech GmbH") == normalised_name("MÜNSTER BIOTECH") == "munster biotech"
    assert normalised_name("Neckartal Biologics g.m.b.H.") == normalised_name("NECKARTAL-BIOLOGICS")
    assert normalised_name("Genfit S.A.") == normalised_name("GENFIT SA") == "genfit"
    assert normalised_name("Politechnika Łódzka") == "politechnika lodzka"
    assert normalised_name("AG") == "ag"  # a name that is only a legal form stays a name


def test_same_pic_with_different_names_is_one_organisation():
    a = actor("pic-999881918", "EBERHARD KARLS UNIVERSITAET TUEBINGEN", identifiers={"pic": "999881918"})
    b = actor("tuebingen", "University of Tübingen", identifiers={"pic": "999881918"})
    evidence = compare(a, b)
    assert (evidence.level, evidence.reason, evidence.conflict) == ("identifier", "same pic 999881918", "")


def test_a_differing_identifier_is_a_conflict_and_overrules_domain_and_name():
    a = actor("a", "Institut Pasteur", city="Paris", identifiers={"pic": "999993080", "ror": "https://ror.org/0495fxg12"})
    b = actor("b", "INSTITUT PASTEUR", city="PARIS", identifiers={"pic": "999993080", "ror": "https://ror.org/00aaaaa00"})
    assert compare(a, b).conflict == "ror 0495fxg12 != 00aaaaa00"
    c = actor("c", "Institut Pasteur", city="Paris", identifiers={"ror": "https://ror.org/00aaaaa00"})
    assert compare(a, c) is None


def test_same_name_in_different_cities_is_two_organisations_and_city_spellings_agree():
    munich = actor("a", "Rotkreuzklinikum", city="München")
    assert compare(munich, actor("b", "ROTKREUZKLINIKUM", city="Würzburg")) is None
    assert compare(munich, actor("c", "ROTKREUZKLINIKUM", city="MUENCHEN")).level == "name-city"
    assert "Gent" in str(compare(actor("d", "Universiteit Gent", city="Ghent", country="BE"),
                                 actor("e", "UNIVERSITEIT GENT", city="GENT", country="BE")))
    assert compare(actor("f", "Institut Curie", city="Paris", country="FR"),
                   actor("g", "INSTITUT CURIE", city="PARIS CEDEX 05", country="FR")).level == "name-city"


def test_a_university_and_its_hospital_sharing_a_domain_are_reported_not_merged():
    university = actor("uni", "Universität Musterstadt", website="https://www.uni-musterstadt.example",
                       sources=[{"name": "ROR"}])
    hospital = actor("klinikum", "Universitätsklinikum Musterstadt", actorType="hospital",
                     website="https://uni-musterstadt.example/", sources=[{"name": "CORDIS"}])
    evidence = compare(university, hospital)
    assert evidence.level == "domain" and evidence.conflict == "types university != hospital"
    result = merge_actors([university, hospital])
    assert [c["id"] for c in result.contents] == [university["id"], hospital["id"]]
    assert result.reported and "not merged" in result.reported[0][1]


def test_ror_and_cordis_become_one_record_with_both_identifiers_and_sources():
    result = merge_actors([ror_hospital(), cordis_hospital()])
    (merged,) = result.contents
    assert merged["id"] == f"{NODE}/actor/013czdx64"  # the first seen keeps its id
    assert merged["identifiers"] == {"ror": "https://ror.org/013czdx64", "wikidata": "Q1378320", "pic": "999841081"}
    assert [s["name"] for s in merged["sources"]] == ["ROR", "CORDIS"]
    assert merged["names"][0] == {"value": "University Hospital Heidelberg", "preferred": True}
    assert sum(1 for n in merged["names"] if n.get("preferred")) == 1
    assert merged["actorType"] == "hospital" and merged["sectors"] == ["red-biotech"]
    assert result.aliases == {f"{NODE}/actor/pic-999841081": f"{NODE}/actor/013czdx64"}


def test_a_row_matching_two_records_is_ambiguous_and_not_merged():
    first = actor("a", "Biotech Campus", city="Ulm", sources=[{"name": "ROR"}], identifiers={"ror": "https://ror.org/0aaaaaa00"})
    second = actor("b", "Biotech Campus", city="Ulm", sources=[{"name": "ROR"}], identifiers={"ror": "https://ror.org/0bbbbbb00"})
    row = actor("c", "BIOTECH CAMPUS", city="ULM", sources=[{"name": "CORDIS"}], identifiers={"pic": "999000001"})
    result = merge_actors([first, second, row])
    assert len(result.contents) == 3
    assert any("ambiguous, not merged" in message for _, message in result.reported)


def test_project_partners_follow_a_merged_actor():
    project = {"id": f"{NODE}/project/h2020-1", "type": "Project", "programme": "H2020", "acronym": "P",
               "partners": [{"actor": f"{NODE}/actor/pic-999841081", "name": "UKHD", "country": "DE", "role": "partner"}]}
    result = merge_actors([ror_hospital(), cordis_hospital(), project])
    assert result.contents[1]["partners"][0]["actor"] == f"{NODE}/actor/013czdx64"


# --- the import path and the command ---------------------------------------------------------------

def _jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_import_merges_a_second_source_into_the_published_record_and_keeps_it(tmp_path):
    directory = tmp_path / "node"
    run("node", "init", directory, "--id", NODE, "--name", "BIOPRO", "--country", "DE", "--region", "DE1")
    run("node", "import", directory, _jsonl(tmp_path / "from-ror.jsonl", [ror_hospital()]))
    result = run("node", "import", directory, _jsonl(tmp_path / "from-cordis.jsonl", [cordis_hospital()]))
    assert "merged: " in result.output and "same name 'universitatsklinikum heidelberg'" in result.output
    assert "0 created, 1 updated" in result.output
    with Node.open(directory) as node:
        _, records = node.current_records()
        actors = [orjson.loads(r) for r in records]
    assert [a["id"] for a in actors] == [f"{NODE}/actor/013czdx64"]
    assert actors[0]["identifiers"]["pic"] == "999841081"
    # ROR imported again: what CORDIS added stays
    result = run("node", "import", directory, tmp_path / "from-ror.jsonl")
    with Node.open(directory) as node:
        _, records = node.current_records()
        (again,) = [orjson.loads(r) for r in records]
    assert again["identifiers"]["pic"] == "999841081" and {s["name"] for s in again["sources"]} == {"ROR", "CORDIS"}
    assert "0 updated, 1 unchanged" in result.output


def test_duplicates_lists_likely_duplicates_with_evidence(tmp_path):
    directory = tmp_path / "node"
    run("node", "init", directory, "--id", NODE, "--name", "BIOPRO", "--country", "DE", "--region", "DE1")
    members = [  # a member sheet's own records are never merged automatically
        actor("neckar-cell", "Neckar Cell GmbH", city="Tübingen", actorType="sme"),
        actor("neckarcell", "NECKAR CELL", city="TUEBINGEN", actorType="sme"),
        actor("other", "Other Bio", city="Stuttgart", actorType="sme", identifiers={"vat": "DE123456789"}),
        actor("other-2", "Other Biologics", city="Stuttgart", actorType="sme", identifiers={"vat": "DE123456789"}),
        actor("lonely", "Lonely Labs", city="Ulm", actorType="sme"),
    ]
    run("node", "import", directory, _jsonl(tmp_path / "members.jsonl", members))
    result = run("node", "duplicates", directory, "--json")
    pairs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(p["first"].split("/")[-1], p["second"].split("/")[-1], p["level"]) for p in pairs] == [
        ("other", "other-2", "identifier"), ("neckar-cell", "neckarcell", "name-city")]
    assert pairs[0]["evidence"] == "same vat DE123456789"
    assert "2 likely duplicate pair(s)" in result.stderr
    with Node.open(directory) as node:
        assert len(node.current_records()[1]) == 5  # nothing changed


# --- the demo --------------------------------------------------------------------------------------

def test_demo_merges_ror_and_cordis_copies_of_one_organisation():
    merged = {}
    for node in demo_nodes():
        for row in demo_rows(node["id"]):
            if row.merged:
                merged[row.content["id"]] = row
    assert len(merged) >= 8
    curie = next(row for row in merged.values() if row.content["names"][0]["value"] == "Institut Curie")
    assert {"ror", "pic"} <= set(curie.content["identifiers"])
    assert {"ROR", "CORDIS"} <= {s["name"] for s in curie.content["sources"]}
    assert " + cordis organisation " in curie.source
