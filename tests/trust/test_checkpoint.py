import base64
import hashlib
import struct
from datetime import datetime, timedelta, timezone

import pytest

from biofed.trust import checkpoint
from biofed.trust.checkpoint import Checkpoint, CheckpointError
from biofed.trust.keys import SigningKey

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
ORIGIN = "biofed/node/n1"


@pytest.fixture
def key():
    return SigningKey.generate()


def make(key, size=3, stamp="2026-11-23T11:59:00Z", origin=ORIGIN):
    return Checkpoint(origin, size, bytes(range(32)), stamp).sign(key)


def cosignature_line(witness: SigningKey, note: str, name: str = "witness.example/w1", when: int = 1795000000) -> str:
    """A C2SP tlog-cosignature/v1 line: key hash (type 0x04) || 8-byte time || Ed25519 signature."""
    body = note[: note.rindex("\n\n") + 1].encode()
    key_hash = hashlib.sha256(name.encode() + b"\n\x04" + witness.public.raw).digest()[:4]
    signed = b"cosignature/v1\ntime %d\n" % when + body
    return f"\u2014 {name} " + base64.b64encode(key_hash + struct.pack(">Q", when) + witness.sign(signed)).decode() + "\n"


def test_format_and_roundtrip(key):
    note = make(key)
    lines = note.split("\n")
    assert lines[:4] == [ORIGIN, "3", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "timestamp 2026-11-23T11:59:00Z"]
    # C2SP tlog-checkpoint: the log signs under its origin as key name
    assert lines[4] == "" and lines[5].startswith(f"\u2014 {ORIGIN} ")
    parsed = checkpoint.verify(note, [key.public], origin=ORIGIN)
    assert parsed.size == 3 and parsed.root == bytes(range(32))


def test_key_id_is_c2sp_note_key_hash_over_the_origin(key):
    expected = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + key.public.raw).digest()[:4]
    assert checkpoint.note_key_id(ORIGIN, key.public) == expected
    sig = base64.b64decode(make(key).split("\n")[5].rsplit(" ", 1)[1])
    assert sig[:4] == expected and len(sig) == 68


def test_verifier_key_string(key):
    vkey = checkpoint.verifier_key(ORIGIN, key.public)
    name, hash_hex, encoded = vkey.split("+", 2)  # base64 may hold "+" too
    assert name == ORIGIN and hash_hex == checkpoint.note_key_id(ORIGIN, key.public).hex()
    assert base64.b64decode(encoded) == b"\x01" + key.public.raw
    assert checkpoint.parse_verifier_key(vkey) == (ORIGIN, key.public)
    other = SigningKey.generate().public
    for broken in (vkey.replace(hash_hex, "00000000"), f"{ORIGIN}+{hash_hex}", "a b+00000000+AQ==",
                   f"{ORIGIN}+{hash_hex}+" + base64.b64encode(b"\x02" + key.public.raw).decode(),
                   f"{ORIGIN}+{hash_hex}+" + base64.b64encode(b"\x01" + other.raw).decode()):
        with pytest.raises(ValueError):
            checkpoint.parse_verifier_key(broken)
    with pytest.raises(ValueError):
        checkpoint.verifier_key("has+plus", key.public)


def test_rejections(key):
    note = make(key)
    with pytest.raises(CheckpointError) as err:
        checkpoint.verify(note, [SigningKey.generate().public], origin=ORIGIN)
    assert err.value.reason == "bad-signature"
    with pytest.raises(CheckpointError) as err:
        checkpoint.verify(note.replace("\n3\n", "\n4\n"), [key.public], origin=ORIGIN)
    assert err.value.reason == "bad-signature" and "does not verify" in str(err.value)
    with pytest.raises(CheckpointError) as err:
        checkpoint.verify(note, [key.public], origin="biofed/node/other")
    assert err.value.reason == "wrong-origin"
    for broken in ("", "a\nb\n", note.replace("\n\n", "\n"), note.replace("timestamp", "time")):
        with pytest.raises(CheckpointError) as err:
            checkpoint.verify(broken, [key.public], origin=ORIGIN)
        assert err.value.reason == "malformed"


def test_the_old_key_name_is_not_accepted(key):
    """A note signed under the node id (before the key name became the origin) has no known signature."""
    old = Checkpoint(ORIGIN, 3, bytes(range(32)), "2026-11-23T11:59:00Z").sign(key, "n1")
    with pytest.raises(CheckpointError, match="not signed by a pinned key") as err:
        checkpoint.verify(old, [key.public], origin=ORIGIN)
    assert err.value.reason == "bad-signature"


def test_unknown_signature_lines_are_ignored(key):
    witness = SigningKey.generate()
    note = make(key)
    cosigned = note + cosignature_line(witness, note)
    assert checkpoint.verify(cosigned, [key.public], origin=ORIGIN).size == 3
    # the log's own signature may come after the cosignatures, too
    body, _, own = note.rpartition("\n\n")
    reordered = body + "\n\n" + cosignature_line(witness, note) + own
    assert checkpoint.verify(reordered, [key.public], origin=ORIGIN).size == 3
    # a line under the origin's name by an unknown key hash (another log key) is ignored as well
    stranger = Checkpoint(ORIGIN, 3, bytes(range(32)), "2026-11-23T11:59:00Z").sign(SigningKey.generate())
    both = note + stranger.split("\n\n")[1]
    assert checkpoint.verify(both, [key.public], origin=ORIGIN).size == 3
    # ... but unknown lines alone are not enough
    with pytest.raises(CheckpointError, match="not signed by a pinned key") as err:
        checkpoint.verify(stranger + cosignature_line(witness, note), [key.public], origin=ORIGIN)
    assert err.value.reason == "bad-signature"


def test_a_bad_signature_by_a_known_key_refuses_even_beside_a_good_one(key):
    note = make(key)
    good = note.split("\n\n")[1]
    name, sig = good[len("\u2014 "):].split(" ")
    raw = bytearray(base64.b64decode(sig))
    raw[10] ^= 1
    bad = f"\u2014 {name} {base64.b64encode(bytes(raw)).decode()}\n"
    body = note.split("\n\n")[0] + "\n\n"
    with pytest.raises(CheckpointError, match="does not verify") as err:
        checkpoint.verify(body + bad + good, [key.public], origin=ORIGIN)
    assert err.value.reason == "bad-signature"
    with pytest.raises(CheckpointError, match="does not verify"):
        checkpoint.verify(body + bad, [key.public], origin=ORIGIN)
    # Only a key's first line counts, as in Go's note.Open: a later line by the same key is dropped unread.
    assert checkpoint.verify(body + good + bad, [key.public], origin=ORIGIN).size == 3
    assert checkpoint.verify(note + good, [key.public], origin=ORIGIN).size == 3


def test_several_pinned_keys(key):
    other = SigningKey.generate()
    note = make(key)
    assert checkpoint.verify(note, [other.public, key.public], origin=ORIGIN).size == 3
    both = note + make(other).split("\n\n")[1]
    assert checkpoint.verify(both, [key.public], origin=ORIGIN).size == 3
    assert checkpoint.verify(both, [key.public, other.public], origin=ORIGIN).size == 3


@pytest.mark.parametrize("mutate, message", [
    (lambda n: n + "\u2014 a AAAAAAA=", "end with a newline"),
    (lambda n: n + "\n", "end with a newline"),  # the last blank line starts an empty block
    (lambda n: n + "\u2014 a+b AAAAAAA=\n", "signature line 2"),
    (lambda n: n + "\u2014 a AAAA\n", "signature line 2"),  # 3 bytes: shorter than a key hash + 1
    (lambda n: n + "\u2014 a not*base64\n", "signature line 2"),
    (lambda n: n + "\u2014  AAAAAAA=\n", "signature line 2"),  # empty key name
    (lambda n: n.replace("\n\n", "\r\n\n"), "control character"),
    (lambda n: n.replace("timestamp", "\ttimestamp"), "control character"),
    (lambda n: n + "\u2014 w AAAAAAA=\n" * 100, "more than 100 signature lines"),
    (lambda n: n.replace("\n\n", "\n\n\n"), "unexpected lines"),  # the text may not end in a blank line
    (lambda n: n.replace("\n\n", "\nx\n\n"), "unexpected lines"),
])
def test_note_syntax_as_go_note_open_checks_it(key, mutate, message):
    with pytest.raises(CheckpointError, match=message) as err:
        checkpoint.verify(mutate(make(key)), [key.public], origin=ORIGIN)
    assert err.value.reason == "malformed"


def test_a_hundred_signature_lines_are_allowed(key):
    note = make(key) + "\u2014 w AAAAAAA=\n" * 99
    assert checkpoint.verify(note, [key.public], origin=ORIGIN).size == 3


@pytest.mark.parametrize("size_line, message", [
    ("7" * 5000, "tree size of 5000 digits is larger than 9007199254740991"),
    ("-" + "7" * 5000, "not a decimal number"),
    ("9007199254740992", "tree size 9007199254740992 is larger"),
    ("18446744073709551616", "20 digits is larger"),
    ("03", "not a decimal number"),
    ("+3", "not a decimal number"),
    ("3 ", "not a decimal number"),
    ("\u0663", "not a decimal number"),  # ARABIC-INDIC DIGIT THREE: str.isdigit() but not ASCII
    ("\u00b3", "not a decimal number"),  # SUPERSCRIPT THREE: isdigit() yet int() refuses it
    ("1_000", "not a decimal number"),
    ("", "not a decimal number"),
])
def test_size_line_is_ascii_decimal_within_the_profile(key, size_line, message):
    note = make(key).replace("\n3\n", f"\n{size_line}\n", 1)
    with pytest.raises(CheckpointError, match=message) as err:
        checkpoint.parse(note)
    assert err.value.reason == "malformed" and len(str(err.value)) < 200


def test_size_bounds_exactly(key):
    top = checkpoint.verify(make(key, size=2**53 - 1), [key.public], origin=ORIGIN)
    assert top.size == 2**53 - 1
    signed_over = make(key, size=2**53)  # correctly signed, yet outside what a log page can say
    with pytest.raises(CheckpointError, match="larger than") as err:
        checkpoint.verify(signed_over, [key.public], origin=ORIGIN)
    assert err.value.reason == "malformed"
    assert checkpoint.verify(make(key, size=0), [key.public], origin=ORIGIN).size == 0


def test_timestamp_needs_a_zone(key):
    with pytest.raises(CheckpointError, match="with a zone") as err:
        checkpoint.verify(make(key, stamp="2026-11-23T11:59:00"), [key.public], origin=ORIGIN)
    assert err.value.reason == "malformed"


def test_freshness(key):
    fresh = checkpoint.verify(make(key), [key.public], origin=ORIGIN)
    checkpoint.check_fresh(fresh, timedelta(hours=1), now=NOW)
    old = checkpoint.verify(make(key, stamp="2026-11-23T09:00:00Z"), [key.public], origin=ORIGIN)
    with pytest.raises(CheckpointError, match="older than the allowed") as err:
        checkpoint.check_fresh(old, timedelta(hours=1), now=NOW)
    assert err.value.reason == "stale"
    future = checkpoint.verify(make(key, stamp="2026-11-24T09:00:00Z"), [key.public], origin=ORIGIN)
    with pytest.raises(CheckpointError) as err:
        checkpoint.check_fresh(future, timedelta(hours=1), now=NOW)
    assert err.value.reason == "future"
