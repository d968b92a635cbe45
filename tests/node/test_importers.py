"""Importers: spreadsheets, JSON records, ROR and CORDIS, against the shipped real data."""

from __future__ import annotations

import collections
import json
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook
from support import DATA

from biofed.data import actor_id_for, data_path, demo_nodes, demo_rows, partition
from biofed.errors import BiofedError
from biofed.node.importers import ImportRow, read_rows
from biofed.node.importers import values as v
from biofed.node.importers.regions import city_key, region_for_city, repair_mojibake
from biofed.node.importers.ror import actor_type

SAMPLES = data_path("samples")
FIXTURES = DATA / "importers"


def rows_of(path, **kw) -> list[ImportRow]:
    kw.setdefault("node_id", "bioregio-stern")
    return list(read_rows(path, **kw))


def errors_of(rows) -> list[tuple[str, str, str]]:
    return [(row.source, e.field, e.message) for row in rows for e in row.errors]


def write_csv(tmp_path, text: str, name="members.csv", encoding="utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


HEADER = "id,name,actor_type,country,city,lat,lon\n"


# -- values: exact money and coordinates ------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("230000,00", 23000000), ("5574351,25", 557435125), ("1.234.567,89", 123456789), ("1 234,5", 123450),
    ("1,234.56", 123456), ("0,29", 29), ("19,99 €", 1999), ("EUR 7", 700), (0.29, 29), (1234567.89, 123456789),
    (42, 4200), ("9007199254740,99", 900719925474099),
])
def test_cents_are_exact(text, expected):
    assert v.cents(text) == expected


@pytest.mark.parametrize("text", ["1,005", "12,3,4", "abc", "-5,00", "", "1.234"])
def test_cents_refuse_what_is_not_exact_euros(text):
    with pytest.raises(ValueError):
        v.cents(text)


def test_float_arithmetic_would_have_been_wrong():
    # the trap the Decimal path avoids: 0.29 * 100 in floats is 28.999999999999996
    assert int(0.29 * 100) == 28 and v.cents(0.29) == 29


@pytest.mark.parametrize("value, expected", [
    ("48,5216", "48.521600"), (48.7758, "48.775800"), ("-0.0000001", "0.000000"), ("9.1829", "9.182900"),
    (Decimal("51.75222"), "51.752220"), ("48.12345678", "48.123457"),
])
def test_coordinates_become_decimal_strings(value, expected):
    assert v.coordinate(value, limit=90, what="latitude") == expected


def test_record_ids():
    assert v.record_id("curevac", node_id="n1", kind="actor") == "n1/actor/curevac"
    assert v.record_id("actor/curevac", node_id="n1", kind="actor") == "n1/actor/curevac"
    assert v.record_id("n1/actor/curevac", node_id="n1", kind="actor") == "n1/actor/curevac"
    with pytest.raises(ValueError, match="belongs to node 'other'"):
        v.record_id("other/actor/curevac", node_id="n1", kind="actor")
    with pytest.raises(ValueError, match="lower-case"):
        v.record_id("CureVac AG", node_id="n1", kind="actor")


# -- regions ----------------------------------------------------------------------------------------

def test_mojibake_repair_only_where_it_round_trips():
    assert repair_mojibake("M√ºnster") == "Münster"
    assert repair_mojibake("ESPA√ëOLA") == "ESPAÑOLA"
    assert repair_mojibake("ŒöŒùŒú") == "ΚΝΜ"
    for clean in ("Münster", "Évry-Courcouronnes", "Zürich", "Œuvre", "plain"):
        assert repair_mojibake(clean) == clean


def test_city_regions_match_cordis_spellings():
    assert city_key("TUEBINGEN", "DE") == city_key("Tübingen", "DE")
    assert region_for_city("TUEBINGEN", "DE") == "DE14"  # the gazetteer gives level 2 (Tübingen)
    assert region_for_city("PARIS CEDEX 15", "FR") == "FR10"
    assert region_for_city("EVRY", "FR") == "FR10"
    assert region_for_city("MILANO", "IT") == "ITC4"
    assert region_for_city("ZWIJNAARDE - GENT", "BE") == "BE23"
    assert region_for_city("BRUXELLES", "BE") == "BE10"  # Brussels is BE1, not Flanders
    assert region_for_city("BERLIN", "DE") == "DE30"
    assert region_for_city("NO SUCH TOWN", "DE") is None  # unknown city: no guess
    assert region_for_city("", "DK") == "DK0" and region_for_city("", "CH") == "CH0"


# -- CSV ---------------------------------------------------------------------------------------------

def test_sample_csv_maps_every_member():
    rows = rows_of(SAMPLES / "bioregio-stern-members.csv", node_region="DE1")
    assert len(rows) == 10 and all(row.ok for row in rows)
    albgen = rows[1].content
    assert rows[1].source == "row 3"
    assert albgen["id"] == "bioregio-stern/actor/albgen-dx"
    assert albgen["names"] == [{"value": "AlbGen Diagnostics GmbH", "preferred": True, "lang": "de"}]
    assert albgen["sectors"] == ["diagnostics", "red-biotech"]
    assert albgen["geo"] == {"lat": "48.481600", "lon": "9.190200"}  # written with decimal commas
    assert albgen["contact"] == {"email": "kontakt@albgen.example"}
    assert albgen["address"] == {"street": "Gerhard-Kindler-Straße 8", "postalCode": "72770",
                                 "locality": "Reutlingen", "country": "DE"}
    assert albgen["foundingYear"] == 2011 and albgen["region"] == "DE14"
    assert rows[2].content["memberships"] == [{"cluster": "bioregio-stern"}, {"cluster": "biopro-bw"}]


def test_sample_xlsx_gives_the_same_records_as_the_csv():
    from_csv = [row.content for row in rows_of(SAMPLES / "bioregio-stern-members.csv")]
    from_xlsx = [row.content for row in rows_of(SAMPLES / "bioregio-stern-members.xlsx")]
    assert from_xlsx == from_csv


def test_error_report_names_row_column_and_reason():
    rows = rows_of(SAMPLES / "bioregio-stern-members-with-errors.csv")
    assert [row.ok for row in rows] == [True, False, False, False, False]
    report = errors_of(rows)
    assert ("row 3", "actor_type", "unknown code 'startup'; use one of " + ", ".join(
        ["sme", "large-company", "company", "university", "research-institute", "hospital", "cluster-organisation",
         "training-provider", "investor", "public-body", "non-profit", "other"])) in report
    fields = collections.defaultdict(set)
    for source, field, _ in report:
        fields[source].add(field)
    assert fields["row 3"] == {"actor_type", "sectors", "lat"}
    assert [(w.field, w.message) for w in rows[1].warnings] == [
        ("website", "'www.albgen.example' has no scheme; read as 'https://www.albgen.example'")]
    assert fields["row 4"] == {"email", "country", "founding_year"}
    assert fields["row 5"] == {"name", "region", "size_class"}  # no id or name, but its website gives an id
    assert fields["row 6"] == {"website", "lat"}
    assert any("person" in m for s, f, m in report if f == "email")
    assert all(row.content is None for row in rows[1:])


def test_bom_semicolons_and_header_case(tmp_path):
    text = "\ufeffID;Name;Actor Type;COUNTRY;Sectors\nx1;Alb Bio GmbH;SME;de;\"red-biotech; medtech\"\n"
    [row] = rows_of(write_csv(tmp_path, text))
    assert row.ok, row.errors
    assert row.content["names"][0]["value"] == "Alb Bio GmbH"
    assert row.content["actorType"] == "sme" and row.content["country"] == "DE"
    assert row.content["sectors"] == ["red-biotech", "medtech"]


def test_unknown_column_is_named(tmp_path):
    rows = rows_of(write_csv(tmp_path, "id,name,actor_type,country,favourite_colour\nx,A GmbH,sme,DE,blue\n"))
    assert errors_of(rows) == [("row 1", "favourite_colour", "unknown column 'favourite_colour' (column 5); "
                                                             "see docs/importing.md for the columns")]


@pytest.mark.parametrize("data, message", [
    (b"", "the file is empty"),
    (b"  \n\n", "the file is empty"),
    (b"id,name\nx,Caf\xe9 Bio\n", "not UTF-8: byte 0xE9 on line 2"),
    (b"id,name\nx,A\x00B\n", "NUL byte on line 2"),
])
def test_unreadable_files_give_one_clear_error(tmp_path, data, message):
    rows = rows_of(write_csv(tmp_path, data))
    assert len(rows) == 1 and rows[0].content is None
    assert rows[0].source == "file" and message in rows[0].errors[0].message


def test_header_only_file_has_no_rows(tmp_path):
    assert rows_of(write_csv(tmp_path, HEADER)) == []


def test_csv_formula_cell_is_refused(tmp_path):
    text = HEADER + 'x,"=HYPERLINK(""https://evil.example"",""Click"")",sme,DE,,,\n'
    [row] = rows_of(write_csv(tmp_path, text))
    assert row.content is None
    assert [(e.field, "formulas are not imported" in e.message) for e in row.errors][0] == ("name", True)


def test_lat_without_lon_and_country_from_node(tmp_path):
    rows = rows_of(write_csv(tmp_path, HEADER + "x,A GmbH,sme,,Tübingen,48.5,\n"), node_region="DE1")
    assert errors_of(rows) == [("row 2", "lon", "give both lat and lon, or neither")]
    [ok] = rows_of(write_csv(tmp_path, HEADER + "x,A GmbH,sme,,Tübingen,,\n"), node_region="DE1")
    assert ok.content["country"] == "DE" and ok.content["region"] == "DE14"  # gazetteer (Tübingen)


def test_id_derived_from_name(tmp_path):
    [row] = rows_of(write_csv(tmp_path, HEADER + ",Zellwerk Süd GmbH,sme,DE,,,\n"))
    assert row.content["id"] == "bioregio-stern/actor/zellwerk-sud-gmbh"


def test_projects_and_offers_from_csv(tmp_path):
    text = ("type,id,title,acronym,programme,start_date,end_date,total_budget,eu_contribution,co_funding_rate,"
            "coordinator,partners,offer_type,provider\n"
            "Project,organoid-net,Organoid network,ORGNET,interreg,01.03.2024,2026-02-28,\"1.234.567,89\",\"864 197,52\","
            "\"70 %\",Neckar Cell Therapeutics GmbH | DE | neckar-cell,\"Institut X | FR | genopole-idf/actor/x1; "
            "Firma Y | UK\",,\n"
            "Offer,gmp-suite,GMP suite for clinical batches,,,,,,,,,,facility,neckar-cell\n")
    project, offer = rows_of(write_csv(tmp_path, text))
    assert project.ok and offer.ok, errors_of([project, offer])
    p = project.content
    assert p["id"] == "bioregio-stern/project/organoid-net" and p["programme"] == "INTERREG"
    assert (p["startDate"], p["endDate"]) == ("2024-03-01", "2026-02-28")
    assert (p["totalBudgetCents"], p["euContributionCents"], p["coFundingRateBp"]) == (123456789, 86419752, 7000)
    assert p["partners"] == [
        {"name": "Neckar Cell Therapeutics GmbH", "country": "DE", "role": "coordinator",
         "actor": "bioregio-stern/actor/neckar-cell"},
        {"name": "Institut X", "country": "FR", "role": "partner", "actor": "genopole-idf/actor/x1"},
        {"name": "Firma Y", "country": "GB", "role": "partner"},
    ]
    assert offer.content == {"id": "bioregio-stern/offer/gmp-suite", "type": "Offer",
                             "title": "GMP suite for clinical batches", "offerType": "facility",
                             "provider": "bioregio-stern/actor/neckar-cell"}


def test_project_money_error_names_the_column(tmp_path):
    text = "type,id,title,programme,total_budget,start_date,end_date\nProject,p1,P,H2020,\"1,005\",2024-13-01,\n"
    rows = rows_of(write_csv(tmp_path, text))
    assert [(f, m.split(" (")[0]) for _, f, m in errors_of(rows)] == [
        ("start_date", "'2024-13-01' is not a date"),
        ("total_budget", "'1,005' has more than 2 decimals")]


# -- XLSX --------------------------------------------------------------------------------------------

def _workbook(tmp_path, rows) -> Path:
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    path = tmp_path / "members.xlsx"
    workbook.save(path)
    return path


def test_xlsx_formula_cell_rejected_with_its_address(tmp_path):
    path = _workbook(tmp_path, [["id", "name", "actor_type", "country", "website"],
                                ["a", "Alb Bio GmbH", "sme", "DE", '=HYPERLINK("https://evil.example","x")'],
                                ["b", "Neckar Bio GmbH", "sme", "DE", "https://neckar.example"]])
    first, second = rows_of(path)
    assert first.content is None and second.ok
    [error] = first.errors
    assert error.field == "website" and "cell E2 holds a formula" in error.message


def test_xlsx_numbers_dates_and_empty_rows(tmp_path):
    import datetime

    path = _workbook(tmp_path, [["type", "id", "title", "programme", "start_date", "total_budget"],
                                ["Project", "p1", "Pilot", "REGIONAL", datetime.datetime(2025, 1, 15), 1999.99],
                                [None, None, None, None, None, None]])
    [row] = rows_of(path)
    assert row.content["startDate"] == "2025-01-15" and row.content["totalBudgetCents"] == 199999


def test_not_an_xlsx(tmp_path):
    path = tmp_path / "members.xlsx"
    path.write_bytes(b"id,name\n")
    [row] = rows_of(path)
    assert row.source == "file" and "not a readable .xlsx workbook" in row.errors[0].message


# -- JSON / JSON Lines ---------------------------------------------------------------------------------

def test_jsonl_local_ids_get_the_node_prefix(tmp_path):
    path = tmp_path / "records.jsonl"
    lines = [
        {"id": "curevac", "type": "Actor", "names": [{"value": "X", "preferred": True}], "actorType": "sme",
         "country": "DE", "version": 3, "proof": {}},
        {"id": "bioregio-stern/project/p1", "type": "Project", "title": "P", "programme": "H2020"},
        {"id": "other-node/actor/y", "type": "Actor"},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + '\n\n{"id": "z", "lat": 48.5}\n{"a":1,"a":2}\n',
                    encoding="utf-8")
    rows = rows_of(path)
    assert rows[0].content["id"] == "bioregio-stern/actor/curevac" and "version" not in rows[0].content
    assert "proof" not in rows[0].content
    assert rows[1].content["id"] == "bioregio-stern/project/p1"
    assert rows[2].errors[0].field == "/id" and "belongs to node 'other-node'" in rows[2].errors[0].message
    assert [r.source for r in rows[3:]] == ["line 5", "line 6"]
    assert "floating-point" in rows[3].errors[0].message and "duplicate key" in rows[4].errors[0].message


def test_json_array_and_kind(tmp_path):
    path = tmp_path / "records.json"
    path.write_text(json.dumps([{"id": "o1", "title": "T", "offerType": "service", "provider": "a"}]), encoding="utf-8")
    [row] = rows_of(path, kind="offer")
    assert row.content["id"] == "bioregio-stern/offer/o1" and row.content["type"] == "Offer"


def test_unknown_extension_and_format(tmp_path):
    path = tmp_path / "members.txt"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(BiofedError, match="cannot tell the format"):
        rows_of(path)
    with pytest.raises(BiofedError, match="unknown format"):
        rows_of(path, format="ods")


# -- ROR ---------------------------------------------------------------------------------------------

def test_ror_type_mapping():
    assert actor_type(["education", "funder"]) == "university"
    assert actor_type(["funder", "government"]) == "public-body"
    assert actor_type(["facility", "funder"]) == "research-institute"
    assert actor_type(["funder"]) == "investor"
    assert actor_type(["archive"]) == "other"


def test_ror_shipped_file_per_region():
    path = data_path("ror-regions.jsonl")
    counts = {node["id"]: len(rows_of(path, format="ror", node_id=node["id"], within=node["region"]))
              for node in demo_nodes()}
    assert counts == {"biopro-bw": 27, "genopole-idf": 305, "dlsc": 19, "bioalps": 73, "lombardy-ls": 11,
                      "flandersbio": 20}
    assert len(rows_of(path)) == 455  # format guessed from the name ror-*.jsonl


def test_ror_record_fields():
    rows = rows_of(data_path("ror-regions.jsonl"), format="ror", node_id="biopro-bw", within="DE1")
    [row] = [r for r in rows if r.source == "ror https://ror.org/00vd2h880"]
    assert row.content == {
        "id": "biopro-bw/actor/00vd2h880", "type": "Actor",
        "names": [{"value": "Catholic University of Applied Sciences Freiburg", "lang": "en", "preferred": True},
                  {"value": "Katholische Hochschule Freiburg", "lang": "de"}],
        "actorType": "university", "website": "https://www.kh-freiburg.de",
        "address": {"locality": "Freiburg im Breisgau", "country": "DE"}, "country": "DE", "region": "DE13",
        "geo": {"lat": "47.995900", "lon": "7.852220"},
        "identifiers": {"ror": "https://ror.org/00vd2h880", "grid": "grid.465922.e", "isni": "0000 0000 9498 0046",
                        "wikidata": "Q1736342"},
        "foundingYear": 1971, "status": "active",
        "sources": [{"name": "ROR", "url": "https://ror.org/00vd2h880", "licence": "CC0-1.0"}]}


def test_ror_bad_line(tmp_path):
    path = tmp_path / "ror.jsonl"
    path.write_text('{"id": "https://ror.org/0abcdef12", "names": []}\nnot json\n', encoding="utf-8")
    rows = rows_of(path, format="ror")
    assert rows[0].errors[0].field == "/names" and rows[1].source == "line 2"


# -- CORDIS ------------------------------------------------------------------------------------------

def test_cordis_projects_live_on_the_coordinators_node():
    folder = data_path("cordis")
    projects = {}
    for node in demo_nodes():
        rows = rows_of(folder, format="cordis", node_id=node["id"], within=node["region"], actor_id_for=actor_id_for)
        assert all(row.ok for row in rows), errors_of(rows)
        projects[node["id"]] = sum(row.content["type"] == "Project" for row in rows)
    assert projects == {"biopro-bw": 10, "genopole-idf": 16, "dlsc": 14, "bioalps": 3, "lombardy-ls": 4,
                        "flandersbio": 7}
    everything = rows_of(folder / "projects.tsv", format="cordis", node_id="all")
    assert collections.Counter(r.content["type"] for r in everything) == {"Project": 54, "Actor": 390}


def test_cordis_project_fields():
    rows = rows_of(data_path("cordis"), format="cordis", node_id="biopro-bw", within="DE1", kind="project",
                   actor_id_for=actor_id_for)
    [row] = [r for r in rows if r.source == "cordis project 633780"]
    p = row.content
    assert p["id"] == "biopro-bw/project/h2020-633780" and p["acronym"] == "DIAGORAS"
    assert "title" not in p  # the extract has no titles: none in the record, not the acronym posing as one
    assert (p["totalBudgetCents"], p["euContributionCents"]) == (557435125, 472119850)  # 5574351,25 / 4721198,50
    assert (p["startDate"], p["endDate"], p["status"], p["grantId"]) == ("2015-06-01", "2019-05-31", "signed", "633780")
    assert p["programme"] == "H2020" and p["programmeCodes"] == ["H2020-EU.3.1."] and p["fundingScheme"] == "RIA"
    assert p["partners"][0] == {"actor": "biopro-bw/actor/pic-998872439",
                                "name": "HAHN-SCHICKARD-GESELLSCHAFT FUER ANGEWANDTE FORSCHUNG E.v.",
                                "country": "DE", "region": "DE1", "role": "coordinator",
                                "identifiers": {"pic": "998872439"}}
    by_name = {partner["name"]: partner for partner in p["partners"]}
    assert by_name["UNIVERSITAET ZUERICH"]["actor"] == "bioalps/actor/pic-999976396"  # on another demo node
    assert "actor" not in by_name["ERASMUS UNIVERSITAIR MEDISCH CENTRUM ROTTERDAM"]  # not a demo region
    assert by_name["CLINICAGENO LIMITED"]["country"] == "GB"  # CORDIS UK
    assert p["sources"] == [{"name": "CORDIS", "url": "https://cordis.europa.eu/project/id/633780",
                             "licence": "LicenseRef-EC-Decision-2011-833"}]


def test_cordis_organisations_repaired_and_identified():
    rows = rows_of(data_path("cordis"), format="cordis", node_id="x", kind="actor")
    actors = {row.source.split()[-1]: row.content for row in rows}
    fwf = actors["998735960"]  # U+FFFD in organisations.tsv, mojibake in the details file
    assert fwf["names"][0]["value"] == "FONDS ZUR FÖRDERUNG DER WISSENSCHAFTLICHEN FORSCHUNG"
    assert fwf["acronyms"] == ["FWF"] and fwf["identifiers"] == {"pic": "998735960"}
    hashed = [c for key, c in actors.items() if len(key) == 32]
    assert hashed and all(c["id"].startswith("x/actor/org-") and "identifiers" not in c for c in hashed)
    assert {c["actorType"] for c in actors.values()} <= {"university", "research-institute", "company",
                                                         "public-body", "other"}
    assert not any("\ufffd" in json.dumps(c, ensure_ascii=False) for c in actors.values())


def test_cordis_missing_files(tmp_path):
    (tmp_path / "projects.tsv").write_text("rcn\treference\n", encoding="utf-8")
    with pytest.raises(BiofedError, match="CORDIS files missing: participations.tsv"):
        rows_of(tmp_path)


# -- the demo partition and the schema ------------------------------------------------------------

def test_partition_describes_every_node():
    parts = partition()
    assert list(parts) == ["biopro-bw", "genopole-idf", "dlsc", "bioalps", "lombardy-ls", "flandersbio"]
    assert {p["node"]["licence"] for p in parts.values()} == {"CC-BY-4.0", "CC0-1.0"}
    assert all(spec["path"].exists() for p in parts.values() for spec in p["imports"])


def test_demo_partner_references_point_at_records_that_exist():
    ids, references = set(), set()
    for node in demo_nodes():
        for row in demo_rows(node["id"]):
            ids.add(row.content["id"])
            references.update(p["actor"] for p in row.content.get("partners", []) if "actor" in p)
    assert references and references <= ids


def test_shipped_data_and_samples_pass_the_schema():
    from biofed.schema import validate_record as validate

    contents = [row.content for node in demo_nodes() for row in demo_rows(node["id"])]
    contents += [row.content for row in rows_of(SAMPLES / "bioregio-stern-members.xlsx")]
    # ROR (life-science scope), CORDIS actors (9 of them merged into their ROR records), projects, the sample
    # members and offers (biopro-bw), the .xlsx sample
    assert len(contents) == 112 + 97 - 9 + 54 + 10 + 9 + 10
    problems = [(c["id"], issue) for c in contents for issue in validate(c, signed=False)]
    assert problems == []


def test_jsonl_bad_bytes_are_reported_per_line(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_bytes(b'{"id": "a", "type": "Offer", "title": "Caf\xe9"}\n{"id": "b\x00"}\n')
    first, second = rows_of(path)
    assert (first.source, first.content) == ("line 1", None) and "invalid UTF-8" in first.errors[0].message
    assert second.content is None and second.errors
