import pytest

from biofed.trust.jsonprofile import ProfileError, check, loads


def test_accepts_profile_document():
    assert loads(b'{"a": [1, "x", null, true], "b": {"c": -9007199254740991}}') == {
        "a": [1, "x", None, True], "b": {"c": -9007199254740991}}


@pytest.mark.parametrize(
    "raw, message",
    [
        (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
        (b'{"lat": 48.7758}', "floating-point number 48.7758"),
        (b'{"n": 1e3}', "floating-point number 1e3"),
        (b'{"n": 9007199254740992}', "outside"),
        (b'{"n": NaN}', "NaN is not valid JSON"),
        (b'{"a": "\xff"}', "invalid UTF-8 at byte 7"),
        (b'{"a": ', "malformed JSON"),
        (b"\xef\xbb\xbf{}", "byte order mark"),
        ('{"name": "Cafe\u0301"}'.encode(), "not NFC-normalised"),
    ],
)
def test_rejects_with_reason(raw, message):
    with pytest.raises(ProfileError) as err:
        loads(raw)
    assert message in str(err.value)


def test_pointer_names_the_place():
    with pytest.raises(ProfileError) as err:
        loads(b'{"geo": {"lat": "1"}, "n": [0, 1, 9007199254740993]}')
    assert err.value.pointer == "/n/2"


def test_size_and_depth_bounds():
    with pytest.raises(ProfileError, match="larger than the limit"):
        loads(b'{"a": "' + b"x" * 70_000 + b'"}')
    with pytest.raises(ProfileError, match="nested deeper"):
        loads(b"[" * 40 + b"]" * 40)
    with pytest.raises(ProfileError, match="nested deeper"):
        loads(b"[" * 100_000 + b"]" * 100_000, max_bytes=None)


def test_check_rejects_python_floats():
    with pytest.raises(ProfileError, match="floating-point"):
        check({"a": [1.0]})


# --- the fast path: exactly as strict as loads() ------------------------------

import json  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st

from biofed.trust.jsonprofile import loads_fast, parse  # noqa: E402


def _outcome(fn, raw, **kw):
    try:
        return ("ok", fn(raw, **kw))
    except ProfileError as exc:
        return ("error", str(exc))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1, "a": 2}', b'{"a": {"b:": 1, "b:": 2}}', b'{"a": 1, "b": {"a": 1, "a": ":"}}',
        b'{"a\\u003a": 1, "a\\u003a": 2}', b'{"x": "\\u003a", "y": 1, "y": 2}', b'{"lat": 48.7758}', b'{"n": 1e3}',
        b'{"n": 9007199254740992}', b'{"n": -9007199254740992}', b'{"n": 123456789012345678901234567890}',
        b'{"n": NaN}', b'{"a": "\xff"}', b'{"a": ', b"\xef\xbb\xbf{}", '{"name": "Cafe\u0301"}'.encode(),
        '{"Cafe\u0301": 1}'.encode(), b'"\\ud800"', b'{"a": "\\ud800"}', b"[" * 40 + b"]" * 40,
        b"[" * 32 + b"]" * 32, b"[" * 33 + b"]" * 33, b"[" * 33 + b"1" + b"]" * 33, b"[" * 32 + b"1" + b"]" * 32,
        b'{"a": 9007199254740991, "b": [-9007199254740991, true, false, null]}', b' {"a": "x:y:z"} ', b"[1,]",
        b'"\x01"', b"1", b"-0", b'"\xe2\x80\xa8"', '{"\ue000": 1}'.encode(), b'{"a": 1}x', b"",
    ],
)
def test_fast_path_agrees_on_edge_cases(raw):
    assert _outcome(loads_fast, raw) == _outcome(loads, raw)


def test_fast_path_certifies_only_what_orjson_canonicalises():
    assert parse(b'{"b": 1, "a": "x"}') == ({"b": 1, "a": "x"}, True)
    assert parse('{"\ue000": 1}'.encode())[1] is False
    assert parse(b'{"a": "\\u003a"}') == ({"a": ":"}, False)  # slow path: not certified


_keys = st.sampled_from(["a", "b", "a:", ":", "id", "Cafe\u0301", "Café", "\ue000", "\\u003a", "x\\u003ay"])
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 9007199254740991, 9007199254740992, -9007199254740992]),
    st.sampled_from(["1.5", "1e3", "-0.0", "NaN", "Infinity", "-0"]).map(lambda t: ("raw", t)),
    st.text(alphabet=st.sampled_from("ab:\u0301é\\\"\x01\u2028\ue000"), max_size=6),
)


def _render(value) -> str:
    """JSON text of a generated tree; objects are lists of pairs, so keys may repeat."""
    if isinstance(value, tuple) and value[0] == "raw":
        return value[1]
    if isinstance(value, tuple) and value[0] == "obj":
        return "{" + ", ".join(f'"{k}": {_render(v)}' for k, v in value[1]) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_render(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


_trees = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.lists(st.tuples(_keys, inner), max_size=4).map(lambda pairs: ("obj", pairs))),
    max_leaves=20,
)


@settings(max_examples=600, deadline=None)
@given(_trees, st.sampled_from([b"", b"\xff", b"\xef\xbb\xbf", b" "]), st.integers(min_value=1, max_value=6))
def test_fast_path_rejects_exactly_what_loads_rejects(tree, prefix, depth):
    raw = prefix + _render(tree).encode("utf-8", "surrogatepass")
    for kw in ({}, {"max_depth": depth}, {"max_bytes": 40}):
        assert _outcome(loads_fast, raw, **kw) == _outcome(loads, raw, **kw)


@settings(max_examples=200, deadline=None)
@given(_trees)
def test_fast_path_certified_values_canonicalise_with_orjson(tree):
    import orjson

    from biofed.trust.canonical import canonicalize_reference

    raw = _render(tree).encode("utf-8", "surrogatepass")
    try:
        value, certified = parse(raw)
    except ProfileError:
        return
    if certified:
        assert orjson.dumps(value, option=orjson.OPT_SORT_KEYS) == canonicalize_reference(value)


@pytest.mark.parametrize(
    "raw, pointer",
    [
        (b'{"geo": {"lat": 48.7758, "lon": "9.1"}}', "/geo/lat"),
        (b'{"names": [{"value": "a"}, {"value": "b", "value": "c"}]}', "/names/1/value"),
        (b'{"a/b": [0, Infinity]}', "/a~1b/1"),
        (b'[1, 2.5]', "/1"),
    ],
)
def test_hook_errors_name_the_place(raw, pointer):
    with pytest.raises(ProfileError) as err:
        loads(raw)
    assert err.value.pointer == pointer
    assert str(err.value).startswith(pointer + ": ")


# --- over-long integers: the profile's own error, with its pointer, on every path -----------

_HUGE = "7" * 5000  # beyond Python's 4,300-digit int() limit


@pytest.mark.parametrize(
    "raw, pointer",
    [
        ('{"address": {"postCode": %s}}' % _HUGE, "/address/postCode"),
        ('{"address": {"postCode": -%s}}' % _HUGE, "/address/postCode"),
        ('[1, [2, {"a": {"b": [0, -%s]}}]]' % _HUGE, "/1/1/a/b/1"),
        ('{"k": ' * 20 + _HUGE + "}" * 20, "/k" * 20),
        (_HUGE, ""),
        ('{"n": 18446744073709551616}', "/n"),  # 2**64: orjson reads it as a float
        ('{"n": 12345678901234567}', "/n"),  # 17 digits: refused before int()
        ('{"a": 1.5, "n": %s}' % _HUGE, "/a"),  # the first offence, in document order
        ('{"n": %s, "a": 1.5}' % _HUGE, "/n"),
        ('{"a": {"b": 1, "b": %s}}' % _HUGE, "/a/b"),
    ],
)
def test_over_long_integers_are_profile_errors_with_pointer(raw, pointer):
    for data, fn in ((raw.encode(), loads), (raw.encode(), loads_fast), (raw, loads), (raw.encode(), parse)):
        with pytest.raises(ProfileError) as err:
            fn(data, max_bytes=None)
        assert err.value.pointer == pointer, (fn, data[:40])
        assert "outside +-(2**53-1)" in err.value.message or "floating-point" in err.value.message
        assert len(str(err.value)) < 200  # names the number by its size, never spells out 5,000 digits


def test_check_names_huge_python_ints_without_str():
    with pytest.raises(ProfileError) as err:
        check({"a": {"b": [0, -(10**5000)]}})
    assert err.value.pointer == "/a/b/1" and "bits" in err.value.message


@pytest.mark.parametrize("fn", [loads, loads_fast])
def test_safe_integer_bounds_exactly(fn):
    assert fn(b'{"n": [9007199254740991, -9007199254740991]}') == {"n": [2**53 - 1, -(2**53 - 1)]}
    for raw in (b'{"x": {"n": 9007199254740992}}', b'{"x": {"n": -9007199254740992}}'):
        with pytest.raises(ProfileError) as err:
            fn(raw)
        assert err.value.pointer == "/x/n" and "9007199254740992 is outside" in err.value.message


def test_duplicate_key_pointer_follows_the_parser_order():
    # the inner object closes (and is refused) before the outer one: the pointer names the inner key
    with pytest.raises(ProfileError) as err:
        loads(b'{"a": 1, "a": {"b": 1, "b": 2}}')
    assert err.value.message == "duplicate key 'b'" and err.value.pointer == "/a/b"
