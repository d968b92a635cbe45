"""check_page, the per-page checks of a harvest, on raw page bytes: no network, no database."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
import pytest
from support.hostile import actor, sign_record

from biofed.aggregator.checks import NodeKey, PageError, check_page
from biofed.schema import validate_record
from biofed.trust import jsonprofile
from biofed.trust.keys import SigningKey

MAX_PAGE = 1 << 20
NOW = datetime.now(timezone.utc)  # the node's checkpoint time: the records here are signed just before


def page(node_id: str, leaves: list[bytes], after: int = 0) -> bytes:
    """A log page as a node serves it (see node/routes/feeds.py)."""
    entries = b",".join(b'{"seq":%d,"record":%s}' % (after + i + 1, leaf) for i, leaf in enumerate(leaves))
    return b'{"node":%s,"after":%d,"treeSize":%d,"entries":[%s],"next":null}' % (
        orjson.dumps(node_id), after, after + len(leaves), entries)


def nested(levels: int):
    """A value whose innermost string is `levels` levels below it."""
    value = "deep"
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.fixture
def signer():
    key = SigningKey.generate()
    return key, [NodeKey(raw=key.public.raw, kid=key.kid)]


def test_honest_page_passes_every_check(signer):
    key, keys = signer
    leaves = [sign_record(actor("alpha", f"a{i}"), key, "alpha") for i in range(3)]
    size, entries = check_page("alpha", keys, page("alpha", leaves), 0, MAX_PAGE, checkpoint_time=NOW)
    assert size == 3
    assert [(e.seq, e.reason, e.leaf) for e in entries] == [(i + 1, None, leaf) for i, leaf in enumerate(leaves)]


@pytest.mark.parametrize("depth", [jsonprofile.MAX_DEPTH - 1, jsonprofile.MAX_DEPTH])
def test_a_record_as_deep_as_the_profile_allows_is_judged_on_its_own(signer, depth):
    """The page parses, the other records are kept, this one is refused by the schema (an unknown field)."""
    key, keys = signer
    deep = sign_record({**actor("alpha", "deep"), "extra": nested(depth - 1)}, key, "alpha")
    jsonprofile.loads(deep)  # the record alone is within the profile
    _, entries = check_page("alpha", keys, page("alpha", [sign_record(actor("alpha", "ok"), key, "alpha"), deep]), 0, MAX_PAGE, checkpoint_time=NOW)
    assert [e.reason for e in entries] == [None, "schema"]
    assert "nested" not in entries[1].message


def test_a_record_deeper_than_the_profile_makes_the_page_malformed(signer):
    """As for every other profile violation in a page (a float, a duplicate key): the node is in error."""
    key, keys = signer
    deep = sign_record({**actor("alpha", "deep"), "extra": nested(jsonprofile.MAX_DEPTH)}, key, "alpha")
    with pytest.raises(jsonprofile.ProfileError, match="nested deeper"):
        jsonprofile.loads(deep)
    with pytest.raises(PageError, match="nested deeper") as caught:
        check_page("alpha", keys, page("alpha", [sign_record(actor("alpha", "ok"), key, "alpha"), deep]), 0, MAX_PAGE, checkpoint_time=NOW)
    assert caught.value.reason == "malformed"


@pytest.mark.parametrize("change", [
    {},  # valid
    {"country": "XX"},
    {"names": []},
    {"region": "FR10"},  # not in DE
    {"startDate": "2026-02-01", "endDate": "2026-01-01"},
    {"homepage": "not a url", "actorType": "pirate"},
])
def test_in_profile_skips_only_the_profile_walk(change):
    """For a record parsed under the profile, validate_record(in_profile=True) finds exactly the same issues."""
    record = jsonprofile.loads(orjson.dumps({**actor("alpha", "x"), "proof": {"type": "DataIntegrityProof"}, **change}))
    assert validate_record(record, in_profile=True) == validate_record(record)


def test_a_proof_later_than_the_checkpoint_allows_is_future_created(signer):
    """proof.created may run CLOCK_SKEW ahead of the node's signed checkpoint time, not more."""
    from datetime import timedelta

    from biofed.protocol.times import CLOCK_SKEW, format_time

    key, keys = signer
    checkpoint = datetime(2026, 5, 5, 12, 0, tzinfo=timezone.utc)
    leaves = [sign_record(actor("alpha", name), key, "alpha", created=format_time(checkpoint + ahead))
              for name, ahead in (("at", timedelta(0)), ("skew", CLOCK_SKEW), ("beyond", CLOCK_SKEW + timedelta(seconds=1)),
                                  ("far", timedelta(days=365 * 900)))]
    _, entries = check_page("alpha", keys, page("alpha", leaves), 0, MAX_PAGE, checkpoint_time=checkpoint)
    assert [e.reason for e in entries] == [None, None, "future-created", "future-created"]
    assert "2026-05-05T12:05:00Z" in entries[2].message
