"""CORDIS Horizon Europe export, the life-science scope and sectors and stages derived from evidence.

The fixture (tests/data/cordis-he/) is a fictional export in CORDIS's current
layout; the H2020 parts run on the shipped real data.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner
from support import DATA

from biofed.cli import cli
from biofed.data import actor_id_for, data_path
from biofed.errors import BiofedError
from biofed.node.importers import evidence, read_rows, scope
from biofed.node.store import Node
from biofed.schema import validate_record
from biofed.schema.codes import codes

HE = DATA / "cordis-he"
NODE = "bioregio-stern"


def records(path=HE, **kw) -> dict[str, dict]:
    kw.setdefault("node_id", NODE)
    rows = list(read_rows(path, format="cordis", **kw))
    assert [row.errors for row in rows if row.errors] == []
    return {row.source: row.content for row in rows}


def run(*args, ok=True):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert (result.exit_code == 0) == ok, result.output
    return result


# -- Horizon Europe: the records ------------------------------------------------------------------------

def test_horizon_europe_project_record():
    p = records()["cordis project 101990001"]
    assert p["id"] == "bioregio-stern/project/he-101990001" and p["programme"] == "HORIZON-EUROPE"
    assert p["title"] == "Patient-derived organoid panels for predicting drug response; a multi-centre validation"
    assert p["acronym"] == "ORGANOMIX"
    # the quoted objective keeps its line breaks, quotes and semicolons
    assert p["description"]["en"].startswith("ORGANOMIX builds panels")
    assert '\nThe consortium compares "organoid response" with clinical response;' in p["description"]["en"]
    assert (p["totalBudgetCents"], p["euContributionCents"]) == (599987550, 549987500)  # 5999875.5, 5499875
    assert p["programmeCodes"] == ["HORIZON.2.1"] and p["fundingScheme"] == "HORIZON-RIA"
    assert p["topics"] == ["HORIZON-HLTH-2022-TOOL-11-01", "drug discovery", "cell biology", "oncology"]
    assert (p["startDate"], p["endDate"], p["status"], p["grantId"]) == ("2023-01-01", "2027-06-30", "signed",
                                                                          "101990001")
    assert [(x["name"], x["country"], x["role"]) for x in p["partners"]] == [
        ("NECKARTAL UNIVERSITAET TUEBINGEN", "DE", "coordinator"),  # coordinator first, then by `order`
        ("THAMES INSTITUTE FOR CELL MEDICINE", "GB", "partner"),   # CORDIS UK
        ("AIGAIO PHARMA ANONYMI ETAIREIA", "GR", "partner"),       # CORDIS EL
        ("WISLA ORGANOIDS SP Z O O", "PL", "partner"),
        ("INSTITUT FRANCILIEN DE RECHERCHE EN IMMUNOLOGIE", "FR", "associated")]
    assert p["partners"][0]["identifiers"] == {"pic": "999910001"}
    assert p["sources"][0]["url"] == "https://cordis.europa.eu/project/id/101990001"
    third_party = records()["cordis project 101990003"]["partners"][-1]
    assert third_party["role"] == "third-party"
    assert not validate_record({**p, "id": "bioregio-stern/project/he-101990001"}, signed=False)


def test_horizon_europe_organisations():
    actors = records(kind="actor")
    uni = actors["cordis organisation 999910001"]
    assert uni["id"] == "bioregio-stern/actor/pic-999910001" and uni["actorType"] == "university"
    assert uni["region"] == "DE14"  # NUTS 3 DE142 -> its level-2 region
    assert uni["geo"] == {"lat": "48.521600", "lon": "9.057600"}  # "lat,lon" in one field
    assert uni["address"] == {"street": "Wilhelmstrasse 5", "postalCode": "72074", "locality": "Tübingen",
                              "country": "DE"}
    assert uni["identifiers"] == {"pic": "999910001", "vat": "DE999910001"}
    regions = {key.split()[-1]: a.get("region") for key, a in actors.items()}
    assert regions == {"999910001": "DE14", "999910002": "UKI4", "999910003": "EL30", "999910004": "PL91",
                       "999910005": "DK01", "999910006": "NL33", "999910007": "FR10", "999910008": "DE14"}
    # 999910006 has the bare country code NL and no geolocation: its city, Leiden, gives Zuid-Holland
    assert actors["cordis organisation 999910003"]["country"] == "GR"
    assert actors["cordis organisation 999910004"]["actorType"] == "sme"      # PRC with SME True
    assert actors["cordis organisation 999910003"]["actorType"] == "company"  # PRC with SME False
    assert actors["cordis organisation 999910003"]["website"] == "https://www.aigaio-pharma.example"
    for content in actors.values():
        assert not validate_record(content, signed=False), content["id"]


def test_comma_separated_re_export_gives_the_same_records(tmp_path):
    for source in HE.glob("*.csv"):
        text = source.read_text(encoding="utf-8")
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows(rows)
        (tmp_path / source.name).write_text(out.getvalue(), encoding="utf-8")
    assert "," in (tmp_path / "organization.csv").read_text().splitlines()[0]
    assert records(tmp_path) == records()


def test_partners_resolve_across_nodes_by_pic():
    p = records(actor_id_for=actor_id_for)["cordis project 101990001"]
    actors = {x["name"]: x.get("actor") for x in p["partners"]}
    assert actors["NECKARTAL UNIVERSITAET TUEBINGEN"] == "biopro-bw/actor/pic-999910001"
    assert actors["INSTITUT FRANCILIEN DE RECHERCHE EN IMMUNOLOGIE"] == "genopole-idf/actor/pic-999910007"
    assert actors["WISLA ORGANOIDS SP Z O O"] is None  # no demo node in Mazowieckie
    # the same organisation in two projects is one actor
    twice = records(within="DE1")
    assert [k for k in twice if k.startswith("cordis organisation")] == [
        "cordis organisation 999910001", "cordis organisation 999910008"]


def test_folder_layouts_are_told_apart(tmp_path):
    assert records(HE / "project.csv")  # any file of the folder
    (tmp_path / "readme.txt").write_text("nothing", encoding="utf-8")
    with pytest.raises(BiofedError) as caught:
        records(tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert "projects.tsv" in message and "project.csv, organization.csv" in message
    (tmp_path / "project.csv").write_bytes((HE / "project.csv").read_bytes())
    with pytest.raises(BiofedError, match="Horizon Europe files missing: organization.csv"):
        records(tmp_path)
    (tmp_path / "organization.csv").write_text("projectID;name\n1;X\n", encoding="utf-8")
    with pytest.raises(BiofedError, match="organization.csv: column.s. missing: organisationID, country, role"):
        records(tmp_path)


def test_cli_imports_a_horizon_europe_folder(tmp_path):
    directory = tmp_path / "node"
    run("node", "init", directory, "--id", NODE, "--name", "BioRegio STERN", "--country", "DE", "--region", "DE1")
    result = run("node", "import", directory, HE, "--format", "cordis", "--within", "DE1", "--scope",
                 "life-science", "--quiet")
    assert "Imported cordis-he: 2 created" in result.output  # the university and ORGANOMIX (GRIDFLEX is energy)
    node = Node.open(directory)
    try:
        assert json.loads(node.get("bioregio-stern/project/he-101990001"))["title"].startswith("Patient-derived")
        assert node.get("bioregio-stern/actor/pic-999910008") is None
    finally:
        node.close()
    bad = run("node", "import", directory, tmp_path, "--format", "cordis", ok=False)
    assert bad.exit_code == 1 and "Traceback" not in bad.output and "project.csv" in bad.output
    refused = run("node", "import", directory, HE, "--format", "cordis", "--evidence", HE, ok=False)
    assert "--evidence applies to ROR imports only" in refused.output


# -- the life-science scope ---------------------------------------------------------------------------

def test_scope_keeps_life_science_projects_and_their_participants():
    kept = records(scope="life-science")
    assert sorted(k for k in kept if k.startswith("cordis project")) == [
        "cordis project 101990001", "cordis project 101990002", "cordis project 101990003"]
    assert "cordis organisation 999910008" not in kept  # only in the energy project
    with pytest.raises(BiofedError, match="unknown scope 'arts'"):
        records(scope="arts")


def test_scope_on_the_shipped_h2020_projects():
    everything = records(data_path("cordis"), kind="project")
    kept = records(data_path("cordis"), kind="project", scope="life-science")
    assert kept == everything  # the shipped extract is the health programme (H2020-EU.3.1.) already


def ror(name, types, *, website=None, country="DE", aliases=()):
    return {"id": "https://ror.org/0abcdef12", "types": types,
            "names": [{"value": name, "types": ["ror_display"]}] + [{"value": a, "types": ["alias"]} for a in aliases],
            "links": [{"type": "website", "value": website}] if website else [],
            "locations": [{"geonames_details": {"country_code": country, "name": "Stuttgart"}}]}


@pytest.mark.parametrize("record, kept, why", [
    (ror("Landesmuseum Württemberg", ["archive"]), False, "excluded word in the name"),
    (ror("Musée de l'Homme", ["facility"], country="FR"), False, "excluded word in the name"),
    (ror("Stiftung Kunst und Geschichte", ["nonprofit"]), False, "no evidence"),
    (ror("Hauptstaatsarchiv Stuttgart", ["archive"]), False, "excluded word in the name"),
    (ror("Haus der Geschichte", ["archive"]), False, "type archive"),
    (ror("Universitätsklinikum Tübingen", ["education"]), True, "life-science word in the name"),
    (ror("Klinikum Stuttgart", ["healthcare"]), True, "type healthcare"),
    (ror("Bergbau Süd AG", ["company"]), False, "no evidence"),
    (ror("Alb Biologics GmbH", ["company"]), True, "life-science word in the name"),
    (ror("Hochschule Esslingen", ["education"]), False, "no evidence"),
    (ror("Neckar Analytics", ["company"], website="https://www.neckar-pharma.example"), True,
     "life-science word in the domain"),
    (ror("Institut für Zellbiologie", ["facility"]), True, "life-science word in the name"),
])
def test_ror_scope_decisions(record, kept, why):
    assert scope.ror_decision(record, "life-science") == (kept, why)


def test_ror_partner_in_a_kept_project_is_evidence_and_gives_derived_sectors():
    partners = scope.cordis_participants(HE, "life-science")
    record = ror("Neckartal Universität Tübingen", ["education"])  # CORDIS: NECKARTAL UNIVERSITAET TUEBINGEN
    assert scope.ror_decision(record, "life-science") == (False, "no evidence")
    assert scope.ror_decision(record, "life-science", frozenset(partners)) == (True, "partner in a kept CORDIS project")
    energy = ror("Alb Energie Genossenschaft eG", ["company"])  # only in the energy project: no evidence
    assert scope.ror_decision(energy, "life-science", frozenset(partners)) == (False, "no evidence")


def test_ror_import_with_scope_and_evidence(tmp_path):
    path = tmp_path / "ror.jsonl"
    lines = [ror("Neckartal Universität Tübingen", ["education"]), ror("Landesmuseum Württemberg", ["archive"])]
    lines[0]["id"], lines[1]["id"] = "https://ror.org/0abcdef12", "https://ror.org/0abcdef34"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    rows = list(read_rows(path, format="ror", node_id=NODE, scope="life-science", evidence=HE))
    assert [row.content["id"] for row in rows] == ["bioregio-stern/actor/0abcdef12"]
    actor = rows[0].content
    assert actor["valueChainStages"] == ["research-development", "training"]
    assert actor["sectors"] == ["pharma", "red-biotech"]
    assert actor["sources"][-1]["derived"] == {"fields": ["sectors", "valueChainStages"],
                                               "evidence": "CORDIS projects", "count": 2}


# -- sectors and stages derived from evidence ----------------------------------------------------------

def test_derivation_rules_are_valid_codes():
    rules = evidence.rules()
    assert len(rules) > 40
    assert {r.code for r in rules if r.field == "sectors"} <= set(codes("sectors"))
    assert {r.code for r in rules if r.field == "valueChainStages"} <= set(codes("value-chain-stages"))


def test_sectors_and_stages_from_horizon_europe_evidence():
    actors = records(kind="actor", scope="life-science")
    derived = {key.split()[-1]: (a.get("sectors"), a.get("valueChainStages"), a["sources"][-1].get("derived"))
               for key, a in actors.items()}
    # a university in a health RIA (drug discovery, oncology) and an MSCA doctoral network
    assert derived["999910001"] == (["pharma", "red-biotech"], ["research-development", "training"],
                                    {"fields": ["sectors", "valueChainStages"], "evidence": "CORDIS projects",
                                     "count": 2})
    # an SME in an EIC Accelerator project on bioprocessing
    assert derived["999910005"][:2] == (["white-biotech"], ["process-industrialisation"])
    # a large company in a RIA: research-development; an SME third party in a doctoral network: training
    assert derived["999910003"][1] == ["research-development"]
    assert derived["999910004"][1] == ["research-development", "training"]
    for content in actors.values():
        assert not validate_record(content, signed=False)


def test_declared_fields_are_not_overwritten():
    [project] = [p for p in __import__("biofed.node.importers.cordis", fromlist=["x"]).cordis_projects(HE)
                 if p.reference == "101990002"]
    content = {"sectors": ["medtech"], "sources": []}
    evidence.add_derived(content, [(project, project.participations[0].org)])
    assert content["sectors"] == ["medtech"]  # declared: kept as it is
    assert content["valueChainStages"] == ["process-industrialisation"]
    assert content["sources"] == [{"name": "CORDIS", "licence": "LicenseRef-EC-Decision-2011-833",
                                   "derived": {"fields": ["valueChainStages"], "evidence": "CORDIS projects",
                                               "count": 1}}]


def test_h2020_projects_without_titles_have_none():
    p = records(data_path("cordis"), kind="project")["cordis project 633780"]
    assert "title" not in p and p["acronym"] == "DIAGORAS"
    assert not validate_record({**p, "id": "biopro-bw/project/h2020-633780"}, signed=False)
    untitled = {"id": "biopro-bw/project/x", "type": "Project", "programme": "H2020"}
    assert validate_record(untitled, signed=False), "a project needs a title or an acronym"
