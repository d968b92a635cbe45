"""RFC 8785: the reference vectors byte for byte, and the fast path agreeing with the reference."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import VECTORS

from biofed.trust.canonical import _fast_path_ok, canonicalize, canonicalize_reference
from biofed.trust.jsonprofile import MAX_SAFE_INTEGER

CASES = sorted(p.name for p in (VECTORS / "jcs" / "input").glob("*.json"))


def test_all_vectors_present():
    assert CASES == ["arrays.json", "french.json", "structures.json", "unicode.json", "values.json", "weird.json"]


@pytest.mark.parametrize("name", CASES)
def test_rfc8785_vector(name):
    value = json.loads((VECTORS / "jcs" / "input" / name).read_text(encoding="utf-8"))
    expected = (VECTORS / "jcs" / "output" / name).read_bytes()
    assert canonicalize(value) == expected
    hex_dump = (VECTORS / "jcs" / "outhex" / name.replace(".json", ".txt")).read_text().split()
    assert canonicalize(value) == bytes(int(h, 16) for h in hex_dump)


def test_fast_path_taken_for_profile_documents():
    record = {"id": "n/actor/a", "version": 1, "names": [{"value": "Université de Genève", "lang": "fr"}]}
    assert _fast_path_ok(record)
    assert not _fast_path_ok({"x": 1.5})
    assert not _fast_path_ok({"x": 2**60})
    assert not _fast_path_ok({"\ue000": 1})  # UTF-16 order differs from code-point order


# Strict-profile JSON values, with awkward strings and keys (control characters,
# astral characters, private-use characters around the UTF-16 ordering edge).
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
keys = st.one_of(text, st.sampled_from(["a", "b", "\u20ac", "\U0001f600", "\ue000", "\ufb33", "\r", "1", "10"]))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER), text
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=5)), max_leaves=25)


@settings(max_examples=400, deadline=None)
@given(values)
def test_fast_path_equals_reference(value):
    assert canonicalize(value) == canonicalize_reference(value)


@settings(max_examples=200, deadline=None)
@given(values)
def test_canonical_form_is_stable(value):
    once = canonicalize(value)
    assert canonicalize(json.loads(once)) == once
