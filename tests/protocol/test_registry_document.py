"""The registry document as pure functions: signing, verification and its refusals, key validity."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

import pytest

from biofed.protocol.join import (
    JoinRequestError,
    build_join_request,
    check_join_request,
    node_entry,
)
from biofed.protocol.registry import (
    RegistryError,
    key_entry,
    key_resolver,
    new_registry,
    sign_registry,
    verify_registry,
)
from biofed.trust import proofs
from biofed.trust.keys import SigningKey

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def stamp(hours: int) -> str:
    return at(hours).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def registry_key():
    return SigningKey.generate()


def with_node(doc, key, node_keys, status="active"):
    draft = copy.deepcopy(doc)
    draft["nodes"].append({"id": "genopole", "name": "Genopole", "country": "FR", "region": "FR1",
                           "baseUrl": "https://node.genopole.example", "licence": "CC-BY-4.0", "status": status,
                           "controlVerified": True, "keys": node_keys})
    return sign_registry(draft, key)


def test_new_registry_is_version_1_signed_and_verifies(registry_key):
    doc = new_registry("biofed-eu", registry_key, validity=timedelta(days=2))
    assert doc["version"] == 1 and doc["nodes"] == []
    assert doc["proof"]["verificationMethod"] == f"urn:biofed:registry:biofed-eu#{registry_key.kid}"
    assert doc["registryKeys"] == [registry_key.public.jwk()]
    reg = verify_registry(doc, [registry_key.public])
    assert reg.version == 1 and reg.active_nodes() == []
    assert reg.expires - datetime.now(timezone.utc) > timedelta(days=1, hours=23)


def test_sign_bumps_version_by_exactly_one(registry_key):
    doc = new_registry("biofed-eu", registry_key)
    again = sign_registry(doc, registry_key)
    assert again["version"] == 2
    assert {k: v for k, v in again.items() if k not in ("version", "issued", "expires", "proof")} == \
           {k: v for k, v in doc.items() if k not in ("version", "issued", "expires", "proof")}


def test_tampered_registry_is_bad_signature(registry_key):
    doc = new_registry("biofed-eu", registry_key)
    doc["expires"] = "2099-01-01T00:00:00Z"  # try to defeat freeze detection
    with pytest.raises(RegistryError) as caught:
        verify_registry(doc, [registry_key.public])
    assert caught.value.reason == "bad-signature"


def test_registry_signed_by_another_key_is_unknown_key(registry_key):
    other = SigningKey.generate()
    doc = new_registry("biofed-eu", other)
    with pytest.raises(RegistryError) as caught:
        verify_registry(doc, [registry_key.public])
    assert caught.value.reason == "unknown-key"
    assert other.kid in str(caught.value)


def test_rollback_is_refused_after_a_newer_version(registry_key):
    v1 = new_registry("biofed-eu", registry_key)
    v2 = sign_registry(v1, registry_key)
    accepted = verify_registry(v2, [registry_key.public])
    assert verify_registry(v2, [registry_key.public], last_version=accepted.version).version == 2  # same: fine
    with pytest.raises(RegistryError) as caught:
        verify_registry(v1, [registry_key.public], last_version=accepted.version)
    assert caught.value.reason == "rollback"
    assert "version 1" in str(caught.value) and "version 2" in str(caught.value)


def test_expired_registry_is_refused_as_frozen(registry_key):
    doc = new_registry("biofed-eu", registry_key, validity=timedelta(days=7))
    later = datetime.now(timezone.utc) + timedelta(days=8)
    with pytest.raises(RegistryError) as caught:
        verify_registry(doc, [registry_key.public], now=later)
    assert caught.value.reason == "expired"
    assert verify_registry(doc, [registry_key.public], now=later - timedelta(days=2)).version == 1


@pytest.mark.parametrize("change, pointer", [
    (lambda d: d.update(version="3"), "/version"),
    (lambda d: d.update(type="Registry"), "/type"),
    (lambda d: d.pop("expires"), "/expires"),
    (lambda d: d["nodes"].append({"id": "X"}), "/nodes/0/id"),
    (lambda d: d.pop("proof"), "/proof"),
    (lambda d: d.update(version=1.5), "floating-point"),
])
def test_malformed_registry_names_the_field(registry_key, change, pointer):
    doc = new_registry("biofed-eu", registry_key)
    change(doc)
    with pytest.raises(RegistryError) as caught:
        verify_registry(doc, [registry_key.public])
    assert caught.value.reason == "malformed"
    assert pointer in str(caught.value)


def test_keys_for_follows_rotation_and_revocation(registry_key):
    old, new = SigningKey.generate(), SigningKey.generate()
    keys = [key_entry(old.public, status="retired", valid_from=stamp(0), valid_until=stamp(10)),
            key_entry(new.public, valid_from=stamp(10))]
    reg = verify_registry(with_node(new_registry("r", registry_key), registry_key, keys), [registry_key.public])
    assert [k.kid for k in reg.keys_for("genopole", at(5))] == [old.kid]
    assert [k.kid for k in reg.keys_for("genopole", at(10))] == [new.kid]
    assert reg.keys_for("genopole", at(-1)) == []
    assert [k.kid for k in reg.keys_for("genopole")] == [new.kid]
    assert reg.key_status("genopole", old.kid) == "retired" and reg.key_status("genopole", "nope") is None

    # The old key leaked at hour 8: what it signed before stays valid, after is refused.
    keys[0].update(status="revoked", compromisedSince=stamp(8))
    reg = verify_registry(with_node(new_registry("r", registry_key), registry_key, keys), [registry_key.public])
    assert [k.kid for k in reg.keys_for("genopole", at(7))] == [old.kid]
    assert reg.keys_for("genopole", at(9)) == []
    assert reg.key_status("genopole", old.kid) == "revoked"


def test_key_resolver_pins_node_keys(registry_key):
    node_key, stranger = SigningKey.generate(), SigningKey.generate()
    doc = with_node(new_registry("r", registry_key), registry_key, [key_entry(node_key.public, valid_from=stamp(0))])
    resolve = key_resolver(doc, registry_key.public.multibase)
    record = proofs.sign({"id": "genopole/actor/x", "type": "Note"}, node_key, f"urn:biofed:genopole#{node_key.kid}")
    assert proofs.verify(record, resolve)
    forged = proofs.sign({"id": "genopole/actor/x", "type": "Note"}, stranger, f"urn:biofed:genopole#{stranger.kid}")
    with pytest.raises(proofs.ProofError) as caught:
        proofs.verify(forged, resolve)
    assert caught.value.reason == "unknown-key"
    # impersonation: genopole's key named under another node id
    moved = proofs.sign({"id": "x"}, node_key, f"urn:biofed:bioalps#{node_key.kid}")
    with pytest.raises(proofs.ProofError):
        proofs.verify(moved, resolve)
    with pytest.raises(RegistryError):
        key_resolver(doc, SigningKey.generate().public.multibase)


def test_join_request_signature_and_shape():
    key = SigningKey.generate()
    config = {"id": "bioalps", "name": "BioAlps", "country": "CH", "region": "CH0",
              "baseUrl": "https://node.bioalps.example", "licence": "CC0-1.0"}
    request = build_join_request(config, key)
    assert check_join_request(request) is request
    assert request["proof"]["verificationMethod"] == f"urn:biofed:bioalps#{key.kid}"
    entry = node_entry(request, control_verified=False)
    assert entry["keys"][0]["kid"] == key.kid and entry["status"] == "active"

    for change, words in [
        (lambda r: r.update(name="Someone else"), "signature does not hold"),
        (lambda r: r.update(publicKey=SigningKey.generate().public.jwk()), "must be signed with the key it carries"),
        (lambda r: r.update(id="Bad Id"), "/id"),
        (lambda r: r.update(baseUrl="ftp://x"), "/baseUrl"),
        (lambda r: r.update(extra=1), "/extra"),
        (lambda r: r.pop("proof"), "/proof"),
    ]:
        bad = copy.deepcopy(request)
        change(bad)
        with pytest.raises(JoinRequestError, match=words):
            check_join_request(bad)
    with pytest.raises(JoinRequestError, match="baseUrl"):
        build_join_request({**config, "baseUrl": None}, key)


def test_key_resolver_accepts_a_revoked_key_only_before_its_compromise(registry_key):
    leaked = SigningKey.generate()
    keys = [key_entry(leaked.public, valid_from=stamp(0))]
    keys[0].update(status="revoked", compromisedSince=stamp(8))
    doc = with_node(new_registry("r", registry_key), registry_key, keys)
    resolve = key_resolver(doc, registry_key.public.multibase)
    method = f"urn:biofed:genopole#{leaked.kid}"
    assert resolve(method, at=at(7)) == leaked.public
    assert resolve(method, at=at(8)) is None and resolve(method, at=at(9)) is None
    assert resolve(method) is None  # no time: cannot tell it from a forger's
