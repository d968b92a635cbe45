from datetime import datetime, timedelta, timezone

import pytest

from biofed.trust import checkpoint
from biofed.trust.checkpoint import Checkpoint, CheckpointError
from biofed.trust.keys import SigningKey

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def key():
    return SigningKey.generate()


def make(key, size=3, stamp="2026-11-23T11:59:00Z", origin="biofed/node/n1"):
    return Checkpoint(origin, size, bytes(range(32)), stamp).sign(key, "n1")


def test_format_and_roundtrip(key):
    note = make(key)
    lines = note.split("\n")
    assert lines[:4] == ["biofed/node/n1", "3", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "timestamp 2026-11-23T11:59:00Z"]
    assert lines[4] == "" and lines[5].startswith("\u2014 n1 ")
    parsed = checkpoint.verify(note, "n1", [key.public], origin="biofed/node/n1")
    assert parsed.size == 3 and parsed.root == bytes(range(32))


def test_key_id_is_c2sp_note_key_hash(key):
    import hashlib

    expected = hashlib.sha256(b"n1\n\x01" + key.public.raw).digest()[:4]
    assert checkpoint.note_key_id("n1", key.public) == expected


def test_rejections(key):
    note = make(key)
    with pytest.raises(CheckpointError) as err:
        checkpoint.verify(note, "n1", [SigningKey.generate().public])
    assert err.value.reason == "bad-signature"
    with pytest.raises(CheckpointError) as err:
        checkpoint.verify(note.replace("\n3\n", "\n4\n"), "n1", [key.public])
    assert err.value.reason == "bad-signature"
    with pytest.raises(CheckpointError) as err:
        checkpoint.verify(note, "n1", [key.public], origin="biofed/node/other")
    assert err.value.reason == "wrong-origin"
    for broken in ("", "a\nb\n", note.replace("\n\n", "\n"), note.replace("timestamp", "time")):
        with pytest.raises(CheckpointError) as err:
            checkpoint.verify(broken, "n1", [key.public])
        assert err.value.reason == "malformed"


def test_freshness(key):
    fresh = checkpoint.verify(make(key), "n1", [key.public])
    checkpoint.check_fresh(fresh, timedelta(hours=1), now=NOW)
    old = checkpoint.verify(make(key, stamp="2026-11-23T09:00:00Z"), "n1", [key.public])
    with pytest.raises(CheckpointError, match="older than the allowed") as err:
        checkpoint.check_fresh(old, timedelta(hours=1), now=NOW)
    assert err.value.reason == "stale"
    future = checkpoint.verify(make(key, stamp="2026-11-24T09:00:00Z"), "n1", [key.public])
    with pytest.raises(CheckpointError) as err:
        checkpoint.check_fresh(future, timedelta(hours=1), now=NOW)
    assert err.value.reason == "future"
