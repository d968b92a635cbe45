"""Importing a members spreadsheet as staff do: sync, stable ids, conversions, personal data.

Real nodes, real CSV and .xlsx files (openpyxl), the real `biofed node import` command.
"""

from __future__ import annotations

import datetime
import tempfile
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from biofed.cli import cli
from biofed.data import data_path
from biofed.node.importers import read_rows
from biofed.node.importers import values as v
from biofed.node.importers.personal import personal_address
from biofed.node.store import Node

NODE = "bioregio-stern"
HEADER = ["name", "actor_type", "pic", "website", "city", "founding_year"]


def run(*args, ok=True):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def init(directory: Path) -> Path:
    run("node", "init", directory, "--id", NODE, "--name", "BioRegio STERN", "--country", "DE", "--region", "DE1")
    return directory


def write_csv(path: Path, rows, header=HEADER, *, sep=",", bom=False) -> Path:
    lines = [sep.join(header)] + [sep.join("" if cell is None else str(cell) for cell in row) for row in rows]
    path.write_bytes(("\ufeff" if bom else "").encode() + ("\n".join(lines) + "\n").encode("utf-8"))
    return path


def write_xlsx(path: Path, rows, header=HEADER) -> Path:
    workbook = Workbook()
    workbook.active.append(header)
    for row in rows:
        workbook.active.append(list(row))
    workbook.save(path)
    return path


def members(n: int, *, start: int = 0) -> list[list]:
    return [[f"Member {i} GmbH", "sme", f"{999_000_000 + i}", f"https://member{i}.example", "Tübingen", 2000 + i % 20]
            for i in range(start, start + n)]


def live(directory: Path) -> dict[str, dict]:
    with Node.open(directory) as node:
        return {r["id"]: r for r in map(orjson.loads, node.current_records()[1])}


def tree_size(directory: Path) -> int:
    with Node.open(directory) as node:
        return node.tree_size()


# -- sync -----------------------------------------------------------------------------------------------

def test_sync_deletes_what_the_file_no_longer_lists(tmp_path):
    directory = init(tmp_path / "node")
    run("node", "import", directory, write_csv(tmp_path / "v1.csv", members(10)), "--quiet")
    assert len(live(directory)) == 10
    # without --sync: nothing deleted, and the report says how many published records the file left out
    nine = write_csv(tmp_path / "v2.csv", members(9))
    kept = run("node", "import", directory, nine, "--quiet")
    assert "9 unchanged" in kept.stderr and "0 deleted" in kept.stderr
    assert "1 published Actor record(s) are not in v2.csv: kept" in kept.stderr
    assert len(live(directory)) == 10
    synced = run("node", "import", directory, nine, "--quiet", "--sync")
    assert "9 unchanged, 0 restored, 1 deleted" in synced.stderr
    assert set(live(directory)) == {f"{NODE}/actor/pic-{999_000_000 + i}" for i in range(9)}
    with Node.open(directory) as node:
        gone = node.record(f"{NODE}/actor/pic-999000009")
        assert gone.deleted and orjson.loads(gone.signed)["type"] == "Tombstone" and gone.version == 2
        assert node.check_log() == []


def test_sync_is_all_or_nothing_with_the_puts(tmp_path):
    directory = init(tmp_path / "node")
    run("node", "import", directory, write_csv(tmp_path / "v1.csv", members(10)), "--quiet")
    size = tree_size(directory)
    rows = members(9)
    rows[0][0] = "Renamed Member GmbH"
    rows[3][1] = "spaceship"  # one invalid row: no put and no delete
    result = run("node", "import", directory, write_csv(tmp_path / "v2.csv", rows), "--quiet", "--sync", ok=False)
    assert result.exit_code == 1 and "nothing imported" in result.stderr
    assert tree_size(directory) == size and len(live(directory)) == 10
    # with --skip-invalid the valid rows go in, but a sync with unreadable rows deletes nothing
    partial = run("node", "import", directory, tmp_path / "v2.csv", "--quiet", "--sync", "--skip-invalid")
    assert "1 updated" in partial.stderr and "0 deleted" in partial.stderr
    assert "Nothing deleted: 1 row(s) could not be read" in partial.stderr
    assert len(live(directory)) == 10


def test_mass_delete_needs_the_flag_and_dry_run_lists_the_plan(tmp_path):
    directory = init(tmp_path / "node")
    run("node", "import", directory, write_csv(tmp_path / "v1.csv", members(10)), "--quiet")
    size = tree_size(directory)
    rows = members(7)  # 3 of 10 = 30 % gone
    rows[1][5] = 1990  # one update
    rows.append(["Newcomer AG", "company", "", "https://newcomer.example", "Stuttgart", ""])
    half = write_csv(tmp_path / "v2.csv", rows)
    refused = run("node", "import", directory, half, "--quiet", "--sync", ok=False)
    assert refused.exit_code == 1
    assert "--sync would delete 3 of 10 Actor records (30%), more than 20%; nothing imported" in refused.stderr
    assert tree_size(directory) == size
    plan = run("node", "import", directory, half, "--quiet", "--sync", "--dry-run", "--allow-mass-delete")
    lines = [line.split("\t") for line in plan.stdout.splitlines()]
    actions = {}
    for action, record_id, source in lines:
        actions.setdefault(action, []).append((record_id, source))
    assert actions["created"] == [(f"{NODE}/actor/newcomer.example", "v2.csv row 9")]
    assert actions["updated"] == [(f"{NODE}/actor/pic-999000001", "v2.csv row 3")]
    assert len(actions["unchanged"]) == 6
    assert sorted(r for r, _ in actions["deleted"]) == [f"{NODE}/actor/pic-99900000{i}" for i in (7, 8, 9)]
    assert "Would import v2.csv: 1 created, 1 updated, 6 unchanged, 0 restored, 3 deleted" in plan.stderr
    assert tree_size(directory) == size
    run("node", "import", directory, half, "--quiet", "--sync", "--allow-mass-delete")
    assert len(live(directory)) == 8 and tree_size(directory) == size + 5


def test_an_older_file_restores_deleted_records_and_says_so(tmp_path):
    directory = init(tmp_path / "node")
    old = write_csv(tmp_path / "old.csv", members(10))
    run("node", "import", directory, old, "--quiet")
    run("node", "import", directory, write_csv(tmp_path / "new.csv", members(9)), "--quiet", "--sync")
    again = run("node", "import", directory, old, "--quiet")
    assert "0 updated, 9 unchanged, 1 restored" in again.stderr
    assert f"old.csv row 11: {NODE}/actor/pic-999000009 was deleted; published again" in again.stderr
    with Node.open(directory) as node:
        assert node.record(f"{NODE}/actor/pic-999000009").version == 3


# -- stable ids ---------------------------------------------------------------------------------------

def test_a_rename_updates_the_same_record(tmp_path):
    directory = init(tmp_path / "node")
    rows = [["Zellwerk Süd GmbH", "sme", "", "https://www.zellwerk.example/de/", "Tübingen", 2012],
            ["Neckar Cell GmbH", "sme", "999881918", "https://neckar-cell.example", "Tübingen", 2014]]
    run("node", "import", directory, write_csv(tmp_path / "v1.csv", rows), "--quiet")
    assert set(live(directory)) == {f"{NODE}/actor/zellwerk.example", f"{NODE}/actor/pic-999881918"}
    rows[0][0], rows[1][0] = "Zellwerk Süd AG", "Neckar Cell Therapeutics GmbH"
    rows[1][3] = "https://nct.example"  # a new website too: the PIC is stronger
    result = run("node", "import", directory, write_csv(tmp_path / "v2.csv", rows), "--quiet", "--sync")
    assert "0 created, 2 updated" in result.stderr and "0 deleted" in result.stderr
    names = {r["id"]: r["names"][0]["value"] for r in live(directory).values()}
    assert names == {f"{NODE}/actor/zellwerk.example": "Zellwerk Süd AG",
                     f"{NODE}/actor/pic-999881918": "Neckar Cell Therapeutics GmbH"}


def test_records_keep_the_ids_they_were_published_under(tmp_path):
    """An id derived from the name by an earlier version (Łódź lost its Ł) or given explicitly stays."""
    directory = init(tmp_path / "node")
    earlier = [{"id": "politechnika-odzka", "type": "Actor", "actorType": "university", "country": "PL",
                "names": [{"value": "Politechnika Łódzka", "preferred": True}]},
               {"id": "neckar-cell", "type": "Actor", "actorType": "sme", "country": "DE",
                "names": [{"value": "Neckar Cell GmbH", "preferred": True}], "identifiers": {"pic": "999881918"}}]
    jsonl = tmp_path / "earlier.jsonl"
    jsonl.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in earlier))
    run("node", "import", directory, jsonl, "--quiet")
    header = ["name", "actor_type", "country", "pic", "founding_year"]
    rows = [["Politechnika Łódzka", "university", "PL", "", 1945], ["NCT GmbH", "sme", "DE", "999881918", 2014]]
    result = run("node", "import", directory, write_csv(tmp_path / "m.csv", rows, header), "--quiet", "--sync")
    assert "0 created, 2 updated" in result.stderr
    records = live(directory)
    assert records[f"{NODE}/actor/politechnika-odzka"]["foundingYear"] == 1945
    assert records[f"{NODE}/actor/neckar-cell"]["names"][0]["value"] == "NCT GmbH"
    # on a node that never published it, the id is transliterated properly
    fresh = init(tmp_path / "fresh")
    run("node", "import", fresh, tmp_path / "m.csv", "--quiet")
    assert set(live(fresh)) == {f"{NODE}/actor/politechnika-lodzka", f"{NODE}/actor/pic-999881918"}


@pytest.mark.parametrize("name, expected", [
    ("Politechnika Łódzka Wydział", "politechnika-lodzka-wydzial"), ("Großhadern Straße", "grosshadern-strasse"),
    ("Københavns Øresund", "kobenhavns-oresund"), ("Zellwerk Süd GmbH", "zellwerk-sud-gmbh"),
    ("Université Paris-Saclay", "universite-paris-saclay"),
])
def test_ids_are_transliterated(name, expected):
    assert v.slug(name) == expected


def test_two_rows_for_one_record_are_an_error_naming_both(tmp_path):
    directory = init(tmp_path / "node")
    rows = [["Neckar Cell GmbH", "sme", "999881918", "", "Tübingen", 2014],
            ["Other GmbH", "sme", "", "", "Ulm", 2001],
            ["Neckar Cell Therapeutics", "sme", "999881918", "", "Tübingen", ""]]
    result = run("node", "import", directory, write_csv(tmp_path / "m.csv", rows), "--quiet", ok=False)
    assert result.exit_code == 1 and "2 of 3 rows in m.csv are invalid; nothing imported" in result.stderr
    assert (f"m.csv row 2 ({NODE}/actor/pic-999881918): id: the same record as m.csv row 4 "
            f"({NODE}/actor/pic-999881918): one row per record") in result.stderr
    assert f"m.csv row 4 ({NODE}/actor/pic-999881918): id: the same record as m.csv row 2" in result.stderr
    assert tree_size(directory) == 0


def test_an_unchanged_reimport_adds_no_versions(tmp_path):
    directory = init(tmp_path / "node")
    rows = members(5)
    rows[2][5] = datetime.datetime(2005, 1, 1)  # an Excel date cell: converted the same way every time
    sheet = write_xlsx(tmp_path / "members.xlsx", rows)
    run("node", "import", directory, sheet, "--quiet", "--sync")
    size = tree_size(directory)
    again = run("node", "import", directory, sheet, "--quiet", "--sync")
    assert "0 created, 0 updated, 5 unchanged, 0 restored, 0 deleted" in again.stderr
    assert tree_size(directory) == size == 5


# -- conversions with a warning, errors reported in full ----------------------------------------------

def test_xlsx_date_cells_and_text_numbers_are_converted_with_warnings(tmp_path):
    header = ["name", "actor_type", "website", "founding_year", "postal_code", "country", "lat", "lon"]
    sheet = write_xlsx(tmp_path / "members.xlsx", header=header, rows=[
        ["Alb Bio GmbH ", "SME ", "www.alb-bio.example", datetime.datetime(2005, 1, 1), 1067, "DE", "48,5216", "9.05"],
        ["Neckar Bio GmbH", "sme", "https://neckar-bio.example", "2011", "72076", "DE", 48.52, 9.05]])
    directory = init(tmp_path / "node")
    result = run("node", "import", directory, sheet, "--quiet")
    assert "2 created" in result.stderr
    assert ("members.xlsx row 2: website: warning: 'www.alb-bio.example' has no scheme; read as "
            "'https://www.alb-bio.example'") in result.stderr
    assert ("members.xlsx row 2: founding_year: warning: a date cell (2005-01-01); read as the year 2005 "
            "(format the column as a number)") in result.stderr
    assert "members.xlsx row 2: postal_code: warning: the number 1067 lost its leading zero; read as 01067" \
        in result.stderr
    alb = live(directory)[f"{NODE}/actor/alb-bio.example"]
    assert (alb["names"][0]["value"], alb["actorType"], alb["website"], alb["foundingYear"]) == \
        ("Alb Bio GmbH", "sme", "https://www.alb-bio.example", 2005)
    assert alb["address"]["postalCode"] == "01067" and alb["geo"] == {"lat": "48.521600", "lon": "9.050000"}
    assert live(directory)[f"{NODE}/actor/neckar-bio.example"]["foundingYear"] == 2011


def test_csv_with_bom_and_semicolons(tmp_path):
    path = write_csv(tmp_path / "m.csv", sep=";", bom=True, header=["Name", "Actor type", "Website", "Founding year"],
                     rows=[["Alb Bio GmbH", "sme", "www.alb-bio.example ", " 2005 "]])
    [row] = read_rows(path, node_id=NODE, node_region="DE1")
    assert row.ok and row.content["website"] == "https://www.alb-bio.example" and row.content["foundingYear"] == 2005
    assert [w.field for w in row.warnings] == ["website"]


def test_unknown_column_still_checks_every_row_and_exits_non_zero(tmp_path):
    directory = init(tmp_path / "node")
    path = write_csv(tmp_path / "m.csv", header=["name", "actor_type", "favourite_colour"],
                     rows=[["Alb Bio GmbH", "sme", "blue"], ["", "sme", "red"], ["Neckar Bio", "startup", ""]])
    for extra in ((), ("--skip-invalid",)):
        result = run("node", "import", directory, path, "--quiet", *extra, ok=False)
        assert result.exit_code == 1
        assert "m.csv row 1: favourite_colour: unknown column 'favourite_colour' (column 3)" in result.stderr
        assert "m.csv row 3: name: an actor needs a name" in result.stderr
        assert "m.csv row 4: actor_type: unknown code 'startup'" in result.stderr
        assert "has 1 error(s) (above) and 2 of 3 rows are invalid; nothing imported" in result.stderr
    assert tree_size(directory) == 0


def test_skip_invalid_that_imports_nothing_exits_non_zero(tmp_path):
    directory = init(tmp_path / "node")
    path = write_csv(tmp_path / "m.csv", header=["name", "actor_type"], rows=[["A GmbH", "startup"], ["", "sme"]])
    result = run("node", "import", directory, path, "--quiet", "--skip-invalid", ok=False)
    assert result.exit_code == 1 and "none of the 2 rows in m.csv could be imported" in result.stderr


# -- personal data ------------------------------------------------------------------------------------

@pytest.mark.parametrize("address, names", [
    ("erika.musterfrau@x.example", []), ("e.musterfrau@x.example", []), ("marie-claire.lefevre@x.example", []),
    ("jean.dupont-moreau@x.example", []), ("erika_musterfrau@x.example", []),
    ("mariedupont@x.example", ["Marie Dupont Consulting"]), ("mdupont@x.example", ["Praxis Dr. Marie Dupont"]),
    ("dupontmarie@x.example", ["Marie Dupont Conseil SARL"]),
])
def test_personal_addresses_are_refused(address, names):
    reason = personal_address(address, names)
    assert reason and "looks like a person's address" in reason and "role mailbox" in reason


@pytest.mark.parametrize("address, names", [
    ("info@x.example", []), ("contact@x.example", []), ("press.office@x.example", []), ("bd@x.example", []),
    ("hello@x.example", []), ("sales-de@x.example", []), ("presse@x.example", []), ("office@x.example", []),
    ("neckarcell@x.example", ["Neckar Cell GmbH"]), ("mariedupont@x.example", ["Neckar Cell GmbH"]),
])
def test_role_and_brand_mailboxes_pass(address, names):
    assert personal_address(address, names) is None


def test_personal_address_in_a_sheet_is_refused_with_the_row(tmp_path):
    path = write_csv(tmp_path / "m.csv", header=["name", "actor_type", "email"],
                     rows=[["Marie Dupont Consulting", "sme", "mariedupont@mdc.example"],
                           ["Lefèvre Biotech", "sme", "marie-claire.lefevre@lb.example"],
                           ["Neckar Cell GmbH", "sme", "neckarcell@nc.example"]])
    first, second, third = read_rows(path, node_id=NODE, node_region="DE1")
    assert [e.field for e in first.errors] == ["email"] and "(marie dupont" in first.errors[0].message
    assert [e.field for e in second.errors] == ["email"] and "first.last" in second.errors[0].message
    assert third.ok


# -- ROR and CORDIS on the command line ---------------------------------------------------------------

def test_within_for_ror_and_a_cordis_folder(tmp_path):
    directory = init(tmp_path / "node")
    ror = run("node", "import", directory, data_path("ror-regions.jsonl"), "--within", "DE1", "--quiet")
    assert "27 created" in ror.stderr
    folder = run("node", "import", directory, data_path("cordis"), "--format", "cordis", "--within", "DE1",
                 "--quiet", "--dry-run")
    expected = list(read_rows(data_path("cordis"), format="cordis", node_id=NODE, within="DE1"))
    # the university hospital is in ROR and in CORDIS: its CORDIS row joins the published ROR record
    assert f"Would import cordis: {len(expected) - 1} created, 1 updated" in folder.stderr
    assert ("merged: bioregio-stern/actor/pic-999841081 merged into published bioregio-stern/actor/013czdx64 "
            "(bioregio-stern/actor/013czdx64): same name 'universitatsklinikum heidelberg'") in folder.stderr
    refused = run("node", "import", directory, data_path("samples") / "bioregio-stern-members.csv",
                  "--within", "DE1", ok=False)
    assert refused.exit_code == 1 and "--within applies to ROR and CORDIS imports only" in refused.output


# -- the property: a synced node equals the last sheet ------------------------------------------------

# Six organisations; each version of the sheet lists some of them, perhaps renamed, with or without
# their PIC and website, founded in some year.
ORGS = [(["Alb Bio GmbH", "Alb Biologics GmbH"], "999100001", "https://alb-bio.example"),
        (["Neckar Cell GmbH", "Neckar Cell Therapeutics GmbH"], "999100002", "https://neckar-cell.example"),
        (["Zellwerk Süd GmbH", "Zellwerk Süd AG"], "999100003", "https://www.zellwerk.example"),
        (["Politechnika Łódzka", "Politechnika Łódzka Wydział"], "999100004", "https://p.lodz.example"),
        (["Filder Bioprocess GmbH", "Filder BioProcess AG"], "999100005", "https://filder.example"),
        (["Ørsted Bio ApS", "Oersted Bio ApS"], "999100006", "https://orsted-bio.example")]

sheet_row = st.tuples(st.integers(0, 1), st.booleans(), st.booleans(), st.integers(1990, 2024))
sheet = st.dictionaries(st.integers(0, len(ORGS) - 1), sheet_row, min_size=1, max_size=len(ORGS))


def sheet_rows(version: dict) -> list[list]:
    rows = []
    for org, (name, with_pic, with_web, year) in sorted(version.items()):
        names, pic, web = ORGS[org]
        rows.append([names[name], "sme", pic if with_pic else "", web if with_web else "", "Tübingen", year])
    return rows


def _without_node_fields(record: dict) -> bytes:
    return orjson.dumps({k: record[k] for k in record if k not in ("id", "version", "dateModified", "proof")},
                        option=orjson.OPT_SORT_KEYS)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(sheet, min_size=1, max_size=4))
def test_sync_leaves_the_node_equal_to_the_last_sheet(versions):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        directory = init(tmp / "node")
        for n, version in enumerate(versions):
            path = write_csv(tmp / f"v{n}.csv", sheet_rows(version))
            run("node", "import", directory, path, "--quiet", "--sync", "--allow-mass-delete")
            records = live(directory)
            expected = [row.content for row in read_rows(path, node_id=NODE, node_region="DE1")]
            assert sorted(map(_without_node_fields, records.values())) == sorted(map(_without_node_fields, expected))
            assert sorted(r["names"][0]["value"] for r in records.values()) == sorted(r[0] for r in sheet_rows(version))
        size = tree_size(directory)
        run("node", "import", directory, path, "--quiet", "--sync")  # the same sheet again: no new versions
        assert tree_size(directory) == size
