"""One key-validity rule (protocol.md §7) and a key rotation that verifies under it everywhere.

The rule is biofed.protocol.validity; the registry, the harvester's per-page
checks (aggregator/checks.check_page) and `biofed verify` all apply it. The
end-to-end part rotates a real node's key and asks `biofed verify` (with the
node descriptor, and with a registry that took the rotation) and the
harvester the same questions about the same signed documents.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from click.testing import CliRunner
from support.hostile import actor

from biofed.aggregator.checks import check_page
from biofed.aggregator.registry_source import RegistryView
from biofed.cli import cli
from biofed.errors import BiofedError
from biofed.node.config import KEYS_DIR
from biofed.node.join import make_join_request
from biofed.node.store import init_node
from biofed.protocol.registry import key_entry
from biofed.protocol.times import format_time, parse_time
from biofed.protocol.validity import KeyLookup, KeyValidity, key_valid_at, retired_until
from biofed.registry.store import RegistryStore
from biofed.trust import proofs
from biofed.trust.canonical import canonicalize
from biofed.trust.keys import SigningKey
from biofed.trust.times import TimeFormatError, parse_rfc3339

SECOND = timedelta(seconds=1)
FROM, UNTIL, SINCE = "2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-02-01T00:00:00Z"


@pytest.fixture(scope="module")
def key():
    return SigningKey.generate().public


def t(text: str) -> datetime:
    return parse_time(text)


# --- the rule, at its boundaries


def test_valid_from_is_inclusive_valid_until_exclusive(key):
    entry = key_entry(key, status="retired", valid_from=FROM, valid_until=UNTIL)
    assert key_valid_at(entry, t(FROM))
    assert not key_valid_at(entry, t(FROM) - SECOND)
    assert key_valid_at(entry, t(UNTIL) - SECOND)
    assert not key_valid_at(entry, t(UNTIL))
    assert KeyValidity.of(entry).refusal(t(UNTIL))[0] == "key-not-valid"
    assert KeyValidity.of(entry).refusal(t(FROM) - SECOND)[0] == "key-not-valid"


def test_unbounded_ends(key):
    entry = key_entry(key, valid_from=None, valid_until=None)
    assert key_valid_at(entry, t("1970-01-01T00:00:00Z")) and key_valid_at(entry, t("2999-01-01T00:00:00Z"))


def test_revoked_key_is_valid_only_before_compromised_since(key):
    entry = key_entry(key, status="revoked", valid_from=FROM, compromised_since=SINCE)
    assert key_valid_at(entry, t(SINCE) - SECOND)
    assert not key_valid_at(entry, t(SINCE))
    assert KeyValidity.of(entry).refusal(t(SINCE)) [0] == "revoked-key"
    assert not key_valid_at({**entry, "compromisedSince": None}, t(FROM))  # revoked, no time: never valid


def test_a_rotation_second_belongs_to_both_keys(key):
    rotated = t("2026-05-05T12:00:00Z")
    old = key_entry(key, status="retired", valid_from=FROM, valid_until=format_time(retired_until(rotated)))
    new = key_entry(SigningKey.generate().public, valid_from=format_time(rotated))
    for at in (rotated, rotated + timedelta(milliseconds=999)):
        assert key_valid_at(old, at) and key_valid_at(new, at)
    assert key_valid_at(old, rotated - SECOND) and not key_valid_at(new, rotated - SECOND)
    assert not key_valid_at(old, rotated + SECOND) and key_valid_at(new, rotated + SECOND)
    assert retired_until(rotated + timedelta(milliseconds=400)) == rotated + SECOND  # whole seconds


def test_a_bad_time_in_a_key_entry_names_the_field(key):
    with pytest.raises(BiofedError, match="validUntil 'soon' is not an RFC 3339 time"):
        KeyValidity.of(key_entry(key, valid_until="soon"))


def test_lookup_without_a_time_refuses_only_revoked_keys(key):
    lookup = KeyLookup([key_entry(key, status="revoked", compromised_since=SINCE)])
    method = f"urn:biofed:n1#{key.kid}"
    assert lookup(method) is None and lookup(method, at=t(FROM)) == key
    assert "compromised since" in lookup.explain(method, at=t(SINCE))


@pytest.mark.parametrize("text", ["2026-11-23T12:00:00Z", "2026-11-23t12:00:00z", "2026-11-23T13:00:00+01:00",
                                  "2026-11-23T12:00:00.5Z", "2026-11-23T12:00:00.1234567Z"])
def test_rfc3339_times_are_read_in_utc(text):
    assert parse_rfc3339(text).replace(microsecond=0) == datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


@pytest.mark.parametrize("text", ["2026-11-23", "2026-11-23T12:00:00", "2026-11-23 12:00:00Z", "20261123T120000Z",
                                  "2026-13-01T00:00:00Z", "2026-W47-1T12:00:00Z", "", None, 1764000000])
def test_anything_else_is_refused(text):
    with pytest.raises(TimeFormatError):
        parse_rfc3339(text)


# --- end to end: a real node rotates; biofed verify and the harvester agree


def verify(path, *options) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["verify", str(path), *map(str, options)])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def rotated(tmp_path_factory):
    """A node that rotated its key, a registry that took the rotation, and signed probes around it."""
    tmp_path = tmp_path_factory.mktemp("rotated")
    node, _ = init_node(tmp_path / "node", node_id="biorn", name="BioRN", country="DE", region="DE1",
                        base_url="http://127.0.0.1:9")
    old = node.signing_key
    node.close()
    registry = RegistryStore.init(tmp_path / "registry", name="test")
    registry.add_node(make_join_request(tmp_path / "node"), offline=True)
    time.sleep(1.1)  # whole seconds: the old key has signed for a second before it retires
    result = CliRunner().invoke(cli, ["node", "rotate-key", str(tmp_path / "node")])
    assert result.exit_code == 0, result.output
    new_kid = result.output.strip().splitlines()[-1]  # stdout: the new kid (stderr says more)
    new = SigningKey.load(tmp_path / "node" / KEYS_DIR / f"{new_kid}.pem")
    from biofed.node.store import Node

    with Node.open(tmp_path / "node") as node:
        statement = orjson.loads(node.get(f"biorn/key/{new_kid}"))
        descriptor = node.descriptor()
    registry.rotate_node_key("biorn", statement=statement)  # as the operator would, from the node's statement
    rotated_at = t(statement["proof"]["created"])

    def probe(name, signer, at):
        return proofs.sign(actor("biorn", name), signer, f"urn:biofed:biorn#{signer.kid}", created=format_time(at))

    probes = {  # name: (document, verifies?)
        "rotation-statement": (statement, True),
        "old-in-rotation-second": (probe("old-in", old, rotated_at), True),
        "new-in-rotation-second": (probe("new-in", new, rotated_at), True),
        "old-second-before": (probe("old-before", old, rotated_at - SECOND), True),
        "old-second-after": (probe("old-after", old, rotated_at + SECOND), False),
        "new-second-before": (probe("new-before", new, rotated_at - SECOND), False),
    }
    files = {}
    for name, (document, _) in probes.items():
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(document))
    (tmp_path / "descriptor.json").write_text(json.dumps(descriptor))
    return {"tmp": tmp_path, "registry": registry, "descriptor": tmp_path / "descriptor.json", "probes": probes,
            "files": files, "old": old, "new": new, "rotated_at": rotated_at}


def test_the_node_retires_its_old_key_a_second_after_the_rotation(rotated):
    keys = {k["kid"]: k for k in json.loads(rotated["descriptor"].read_text())["keys"]["keys"]}
    old, new = keys[rotated["old"].kid], keys[rotated["new"].kid]
    assert (old["status"], new["status"]) == ("retired", "active")
    assert t(new["validFrom"]) == rotated["rotated_at"] and t(old["validUntil"]) == rotated["rotated_at"] + SECOND
    pinned = {k["kid"]: k for k in rotated["registry"].document()["nodes"][0]["keys"]}
    assert (pinned[old["kid"]]["validUntil"], pinned[new["kid"]]["validFrom"]) == (old["validUntil"], new["validFrom"])


@pytest.mark.parametrize("mode", ["descriptor", "registry"])
def test_biofed_verify_takes_the_rotation_and_its_boundaries(rotated, mode):
    if mode == "descriptor":
        options = ["--key", rotated["descriptor"]]
    else:
        registry = rotated["registry"]
        options = ["--registry", registry.directory / "registry.json",
                   "--registry-key", registry.signing_key.public.multibase]
    for name, (_, verifies) in rotated["probes"].items():
        code, output = verify(rotated["files"][name], *options)
        assert code == (0 if verifies else 1), (name, output)
        if not verifies:
            assert "key-not-valid" in output and "Traceback" not in output, output


def test_the_harvester_agrees_with_biofed_verify(rotated):
    node = rotated["registry"].document()["nodes"][0]
    keys = RegistryView.node_keys(node)
    names = list(rotated["probes"])
    leaves = [canonicalize(rotated["probes"][name][0]) for name in names]
    entries = b",".join(b'{"seq":%d,"record":%s}' % (i + 1, leaf) for i, leaf in enumerate(leaves))
    page = b'{"node":"biorn","after":0,"treeSize":%d,"entries":[%s],"next":null}' % (len(leaves), entries)
    _, checked = check_page("biorn", keys, page, 0, 1 << 20, checkpoint_time=datetime.now(timezone.utc))
    verdicts = {name: entry.reason for name, entry in zip(names, checked)}
    assert verdicts == {name: (None if verifies else "key-not-valid")
                        for name, (_, verifies) in rotated["probes"].items()}
