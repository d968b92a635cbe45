"""Hypothesis properties over the trust core, validation and the importers.

- the strict JSON profile: arbitrary bytes are parsed into a profile value or
  refused with ProfileError, nothing else; out-of-profile content given to a
  real node (float, huge integer, non-NFC string) is refused with a clear
  error and never signed or logged;
- proofs: any single-byte change of a record signed by a real node fails;
- validation: validate_record never raises on any JSON value, it reports;
- importers: arbitrary CSV and .xlsx bytes (random, truncated zips, real
  workbooks with random cells and formulas) give ImportRows with errors, never
  an exception; through `biofed node import` the same files exit 1 with
  readable lines and no traceback.

Budget: BIOFED_FUZZ_EXAMPLES (default 40) scales every example count here.
"""

from __future__ import annotations

import io
import json
import os
import unicodedata
import zipfile

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from support.node import NODE_ID, actors, make_node

from biofed.cli import cli
from biofed.node.importers import ImportRow, RowError, read_rows
from biofed.node.importers.columns import ACTOR, COMMON
from biofed.node.importing import import_rows
from biofed.node.store import RecordInvalid
from biofed.schema import validate_record
from biofed.schema.validate import ValidationIssue
from biofed.trust import jsonprofile, proofs
from biofed.trust.canonical import canonicalize
from biofed.trust.jsonprofile import MAX_SAFE_INTEGER, ProfileError

SCALE = int(os.environ.get("BIOFED_FUZZ_EXAMPLES", "40")) / 40


def budget(n: int) -> settings:
    return settings(max_examples=max(3, int(n * SCALE)), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much])


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    node, _ = make_node(tmp_path_factory.mktemp("props"))
    node.put_many(actors(5))
    yield node
    node.close()


# --- JSON values of every kind, in and out of the profile

any_text = st.text(max_size=12)  # includes lone surrogates, NUL, non-NFC sequences
any_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), any_text)
any_json = st.recursive(any_scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(any_text, inner, max_size=4)),
                        max_leaves=30)
record_keys = st.sampled_from(["id", "type", "version", "dateModified", "names", "actorType", "country", "region",
                               "geo", "proof", "sectors", "contact", "description", "website", "address"])
record_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["Actor", "Project", "Offer", "Tombstone", "actor", ""])},
    optional={"id": st.one_of(any_text, st.just(f"{NODE_ID}/actor/x"), st.just("../../etc/passwd")),
              "version": any_scalar, "names": any_json, "country": any_json, "geo": any_json},
).flatmap(lambda base: st.dictionaries(record_keys, any_json, max_size=6).map(lambda extra: {**extra, **base}))


@budget(300)
@given(st.binary(max_size=300) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_profile_loads_parses_or_refuses_with_profile_error(raw):
    try:
        value = jsonprofile.loads(raw)
    except ProfileError as exc:
        assert isinstance(exc.message, str) and exc.message
        return
    jsonprofile.check(value)  # what it returns is inside the profile, and canonicalises stably
    once = canonicalize(value)
    assert canonicalize(jsonprofile.loads(once)) == once


@budget(200)
@given(any_json)
def test_profile_check_agrees_with_loads(value):
    """Serialised with json (floats, big ints, non-NFC kept), loads refuses exactly what check refuses."""
    try:
        raw = json.dumps(value, ensure_ascii=False, allow_nan=True).encode("utf-8")
    except UnicodeEncodeError:
        assume(False)  # lone surrogates cannot be UTF-8: loads refuses those bytes, covered above
    try:
        jsonprofile.check(value)
        in_profile = True
    except ProfileError:
        in_profile = False
    if in_profile and len(raw) <= jsonprofile.MAX_RECORD_BYTES:
        assert jsonprofile.loads(raw) == value
    else:
        with pytest.raises(ProfileError):
            jsonprofile.loads(raw)


out_of_profile = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=MAX_SAFE_INTEGER + 1) | st.integers(max_value=-MAX_SAFE_INTEGER - 1),
    st.sampled_from(["e\u0301cole", "A\u030a", "\u212b", "Cafe\u0301"]),
)


@budget(60)
@given(bad=out_of_profile, where=st.sampled_from(["field", "name", "nested", "key"]))
def test_node_never_signs_out_of_profile_content(node, bad, where):
    content = {**actors(1, start=40)[0], "id": f"{NODE_ID}/actor/out-of-profile"}
    if where == "field":
        content["employees"] = bad
    elif where == "name":
        content["names"] = [{"value": bad, "preferred": True}]
    elif where == "nested":
        content["geo"] = {"lat": bad, "lon": "9.000000"}
    else:
        if not isinstance(bad, str):
            assume(False)
        content["extension"] = {bad: 1}
    size = node.tree_size()
    with pytest.raises(RecordInvalid) as refused:
        node.put(content)
    issues = refused.value.errors
    assert any(i["rule"] == "json-profile" for i in issues), issues
    assert "profile" in str(refused.value) or any(
        word in str(refused.value) for word in ("floating", "outside", "NFC")), str(refused.value)
    assert node.tree_size() == size and node.record(content["id"]) is None  # nothing signed, nothing logged


@budget(120)
@given(st.data())
def test_single_byte_change_of_a_node_signed_record_fails(node, data):
    record_id = data.draw(st.sampled_from([f"{NODE_ID}/actor/org-{i}" for i in range(5)]))
    signed = node.record(record_id).signed
    original = json.loads(signed)
    key = node.signing_key.public
    proofs.verify(original, key)
    raw = bytearray(signed)
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] = data.draw(st.integers(0, 255).filter(lambda b: b != raw[index]))
    try:
        changed = jsonprofile.loads(bytes(raw))
    except ProfileError:
        return  # no longer profile JSON: refused before any verification
    if changed == original:
        return  # an escape that decodes to the same value is the same document
    with pytest.raises(proofs.ProofError):
        proofs.verify(changed, key)


@budget(400)
@given(st.one_of(any_json, record_like))
def test_validate_record_never_raises(value):
    issues = validate_record(value)
    assert isinstance(issues, list)
    assert all(isinstance(i, ValidationIssue) and isinstance(i.pointer, str) and i.message for i in issues)
    if not isinstance(value, dict) or value.get("type") not in ("Actor", "Project", "Offer"):
        assert issues  # never valid
    unsigned = validate_record(value, signed=False)
    assert isinstance(unsigned, list)


# --- importers

COLUMNS = list(COMMON + ACTOR)
cell_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["=HYPERLINK(\"http://x\",\"y\")", "=1+1", "+49 711", "-1", "@SUM(A1)", "\"quoted,\"",
                     "DE", "DE1", "sme", "https://example.org", "a;b", "\t", "\r\n", "\x00"]),
)


def csv_from(header, rows, sep) -> bytes:
    def quote(cell):
        return '"' + cell.replace('"', '""') + '"' if any(c in cell for c in '",;\t\r\n') else cell
    return "\r\n".join(sep.join(quote(c) for c in row) for row in [header, *rows]).encode("utf-8", "surrogatepass")


csv_bytes = st.one_of(
    st.binary(max_size=400),
    st.builds(csv_from, st.lists(st.sampled_from(COLUMNS) | st.text(max_size=8), min_size=1, max_size=6),
              st.lists(st.lists(cell_text, max_size=7), max_size=5), st.sampled_from([",", ";", "\t"])),
)


def check_rows(rows):
    assert all(isinstance(r, ImportRow) for r in rows)
    for row in rows:
        assert isinstance(row.source, str)
        assert all(isinstance(e, RowError) and isinstance(e.message, str) and e.message for e in row.errors)
        if row.content is not None:
            assert isinstance(row.content, dict)
            assert not any(s.startswith("=") for s in strings_in(row.content))  # a formula never survives


@budget(150)
@given(csv_bytes)
def test_arbitrary_csv_gives_rows_or_errors(tmp_path_factory, node, data):
    path = tmp_path_factory.mktemp("csv") / "members.csv"
    path.write_bytes(data)
    rows = list(read_rows(path, node_id=NODE_ID, node_region="DE1"))
    check_rows(rows)
    outcome = import_rows(node, rows, dry_run=True)  # and the node refuses or accepts, never raises
    # Every row is accounted for: a record row counts as a row, a problem with the file itself
    # (an unknown column, an empty file) as a file error.
    whole_file = [row for row in rows if getattr(row, "whole_file", False)]
    assert outcome.rows == len(rows) - len(whole_file)
    assert outcome.file_errors == sum(len(row.errors) for row in whole_file)


def strings_in(value):
    if isinstance(value, str):
        yield value.strip()
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def xlsx_from(header, rows) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in [header, *rows]:
        safe = []
        for cell in row:
            if isinstance(cell, str):  # openpyxl refuses control characters other than tab/newline
                cell = "".join(ch for ch in cell if ch >= " " or ch in "\t\n")
            safe.append(cell)
        sheet.append(safe)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


xlsx_cell = st.one_of(cell_text, st.integers(-10**12, 10**12), st.floats(allow_nan=False, allow_infinity=False),
                      st.booleans(), st.none(), st.dates(), st.datetimes())
real_xlsx = st.builds(xlsx_from, st.lists(st.sampled_from(COLUMNS) | st.text(max_size=6), min_size=1, max_size=6),
                      st.lists(st.lists(xlsx_cell, max_size=7), max_size=4))


@st.composite
def truncated(draw, workbooks):
    data = draw(workbooks)  # (a workbook's length varies with its timestamp: cut at a fraction)
    return data[: int(len(data) * draw(st.floats(0, 1, exclude_max=True)))]


@st.composite
def corrupted_member(draw, workbooks):
    """A real zip whose worksheet XML is cut or garbled."""
    data = draw(workbooks)
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    victim = draw(st.sampled_from(source.namelist()))
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            content = source.read(name)
            if name == victim:
                content = content[: int(len(content) * draw(st.floats(0, 1)))] + draw(st.binary(max_size=20))
            target.writestr(name, content)
    return out.getvalue()


xlsx_bytes = st.one_of(st.binary(max_size=300), real_xlsx, truncated(real_xlsx), corrupted_member(real_xlsx),
                       st.just(b"PK\x03\x04" + b"\x00" * 60))


@budget(60)
@given(xlsx_bytes)
def test_arbitrary_xlsx_gives_rows_or_errors(tmp_path_factory, node, data):
    path = tmp_path_factory.mktemp("xlsx") / "members.xlsx"
    path.write_bytes(data)
    rows = list(read_rows(path, node_id=NODE_ID, node_region="DE1"))
    check_rows(rows)
    import_rows(node, rows, dry_run=True)


def test_xlsx_formulas_are_refused_not_evaluated(tmp_path):
    data = xlsx_from(["id", "name", "country", "actor_type"],
                     [["org-a", '=HYPERLINK("http://evil.example","click")', "DE", "sme"],
                      ["org-b", "=cmd|' /C calc'!A0", "DE", "sme"]])
    path = tmp_path / "members.xlsx"
    path.write_bytes(data)
    rows = list(read_rows(path, node_id=NODE_ID, node_region="DE1"))
    assert len(rows) == 2 and all(r.content is None or r.errors for r in rows)
    assert all(any("formula" in e.message for e in r.errors) for r in rows)


def test_csv_nul_and_invalid_utf8_are_file_errors(tmp_path):
    for data, word in [(b"id,name\norg-a,Acme\x00GmbH\n", "NUL"), (b"id,name\norg-a,Caf\xe9\n", "UTF-8")]:
        path = tmp_path / "members.csv"
        path.write_bytes(data)
        rows = list(read_rows(path, node_id=NODE_ID))
        assert len(rows) == 1 and rows[0].content is None and word in rows[0].errors[0].message


@pytest.fixture(scope="module")
def cli_node(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    node, _ = make_node(base)
    node.close()
    return base / "node"


@budget(25)
@given(data=st.one_of(csv_bytes.map(lambda d: ("members.csv", d)), xlsx_bytes.map(lambda d: ("members.xlsx", d))))
def test_cli_import_of_garbage_exits_1_with_readable_lines(tmp_path_factory, cli_node, data):
    name, content = data
    path = tmp_path_factory.mktemp("cliimport") / name
    path.write_bytes(content)
    result = CliRunner().invoke(cli, ["node", "import", str(cli_node), str(path), "--quiet"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    output = result.output
    assert "Traceback" not in output
    if result.exit_code == 0:  # the random bytes happened to be a valid directory: imported, and said so
        assert "Imported" in output
        return
    assert result.exit_code == 1, output
    last = output.strip().splitlines()[-1]
    assert last.startswith("Error: ") and len(last) < 500, last
    # no control characters (terminal escapes) from the file reach the terminal raw
    assert not any(unicodedata.category(ch) == "Cc" for line in output.strip().splitlines() for ch in line), output


def test_unicode_normal_forms_are_what_the_profile_checks():
    for text in ["e\u0301cole", "A\u030a", "\u212b", "Cafe\u0301"]:  # the strategy above really is out of profile
        assert not unicodedata.is_normalized("NFC", text)
