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
