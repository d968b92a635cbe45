"""eddsa-jcs-2022: the W3C vectors byte for byte, and every way a proof can fail."""

import copy
import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofed.trust import proofs
from biofed.trust.canonical import canonicalize
from biofed.trust.keys import PublicKey, SigningKey, multibase_encode


def load(vectors, name):
    path = vectors / "eddsa-jcs-2022" / name
    return json.loads(path.read_text()) if name.endswith(".json") else path.read_text()


@pytest.fixture
def w3c(vectors):
    pair = load(vectors, "keyPair.json")
    return {
        "key": SigningKey.from_multibase(pair["privateKeyMultibase"]),
        "public": PublicKey.from_multibase(pair["publicKeyMultibase"]),
        "unsigned": load(vectors, "unsigned.json"),
        "config": load(vectors, "proofConfigJCS.json"),
        "signed": load(vectors, "signedJCS.json"),
    }


def test_w3c_intermediate_values(vectors, w3c):
    assert canonicalize(w3c["unsigned"]).decode() == load(vectors, "canonDocJCS.txt")
    assert hashlib.sha256(canonicalize(w3c["unsigned"])).hexdigest() == load(vectors, "docHashJCS.txt")
    assert canonicalize(w3c["config"]).decode() == load(vectors, "proofCanonJCS.txt")
    assert hashlib.sha256(canonicalize(w3c["config"])).hexdigest() == load(vectors, "proofHashJCS.txt")
    combined = proofs.hash_data(w3c["unsigned"], w3c["config"])
    assert combined.hex() == load(vectors, "combinedHashJCS.txt")
    signature = w3c["key"].sign(combined)
    assert signature.hex() == load(vectors, "sigHexJCS.txt")
    assert multibase_encode(signature) == load(vectors, "sigBTC58JCS.txt")


def test_w3c_signed_document_reproduced(w3c):
    signed = proofs.sign(w3c["unsigned"], w3c["key"], w3c["config"]["verificationMethod"], created=w3c["config"]["created"])
    assert signed == w3c["signed"]
    assert canonicalize(signed) == canonicalize(w3c["signed"])


def test_w3c_signed_document_verifies(w3c):
    assert proofs.verify(w3c["signed"], w3c["public"])["proofValue"] == w3c["signed"]["proof"]["proofValue"]


def reason(document, keys):
    with pytest.raises(proofs.ProofError) as err:
        proofs.verify(document, keys)
    return err.value.reason


def test_each_failure_has_its_own_reason(w3c):
    signed, public = w3c["signed"], w3c["public"]
    tampered = copy.deepcopy(signed)
    tampered["credentialSubject"]["alumniOf"] = "Another School"
    assert reason(tampered, public) == "bad-signature"
    assert reason(signed, SigningKey.generate().public) == "wrong-key"
    suite = copy.deepcopy(signed)
    suite["proof"]["cryptosuite"] = "eddsa-rdfc-2022"
    assert reason(suite, public) == "wrong-cryptosuite"
    missing = {k: v for k, v in signed.items() if k != "proof"}
    assert reason(missing, public) == "missing-proof"
    kind = copy.deepcopy(signed)
    kind["proof"]["type"] = "Ed25519Signature2020"
    assert reason(kind, public) == "wrong-proof-type"
    garbled = copy.deepcopy(signed)
    garbled["proof"]["proofValue"] = "z111"
    assert reason(garbled, public) == "malformed-proof"
    context = copy.deepcopy(signed)
    context["@context"] = ["https://www.w3.org/ns/credentials/v2"]
    assert reason(context, public) == "context-mismatch"
    assert reason([], public) == "not-an-object"


def test_resolver_callable_and_unknown_key(w3c):
    assert proofs.verify(w3c["signed"], lambda method: w3c["public"])
    assert reason(w3c["signed"], lambda method: None) == "unknown-key"


def biofed_record():
    return {
        "id": "bioregio-stern/actor/example-biotech",
        "type": "Actor",
        "version": 1,
        "dateModified": "2026-11-23T12:00:00Z",
        "names": [{"value": "Example Biotech GmbH", "lang": "de", "preferred": True}],
        "country": "DE",
        "region": "DE1",
        "geo": {"lat": "48.520000", "lon": "9.050000"},
    }


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_single_byte_change_fails(data):
    key = SigningKey.from_seed(bytes(32))  # fixed: every example draws from the same bytes
    signed = proofs.sign(biofed_record(), key, f"urn:biofed:bioregio-stern#{key.kid}", created="2026-11-23T12:00:00Z")
    raw = bytearray(canonicalize(signed))
    index = data.draw(st.integers(0, len(raw) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != raw[index]))
    raw[index] = new
    try:
        changed = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return  # no longer JSON: rejected before any verification
    if changed == signed:
        return  # e.g. an escape that decodes to the same value: same document
    with pytest.raises(proofs.ProofError):
        proofs.verify(changed, key.public)


def test_certified_documents_verify_without_the_canonical_guard(w3c):
    """A page certified by jsonprofile.parse skips the JCS guard: same verdicts as the full path."""
    from biofed.trust import jsonprofile

    raw = canonicalize(w3c["signed"])
    document, certified = jsonprofile.parse(raw)
    assert certified
    assert proofs.verify(document, w3c["public"], certified=True) == proofs.verify(document, w3c["public"])
    document["credentialSubject"]["alumniOf"] = "Another School"
    for flag in (True, False):
        with pytest.raises(proofs.ProofError) as err:
            proofs.verify(document, w3c["public"], certified=flag)
        assert err.value.reason == "bad-signature"


@settings(max_examples=80, deadline=None)
@given(message=st.binary(max_size=200), flip=st.integers(0, 10_000), seed=st.binary(min_size=32, max_size=32))
def test_libsodium_verification_agrees_with_openssl(message, flip, seed):
    """PublicKey.verify (libsodium) accepts a signature exactly when cryptography (OpenSSL) does."""
    from cryptography.exceptions import InvalidSignature

    key = SigningKey.from_seed(seed)
    openssl = key.public._key
    signature = bytearray(key.sign(message))
    for candidate in (bytes(signature), _flipped(signature, flip), bytes(signature[:63])):
        try:
            openssl.verify(candidate, message)
            expected = True
        except InvalidSignature:
            expected = False
        assert key.public.verify(candidate, message) is expected
    assert key.public.verify(bytes(signature), message + b"x") is False


def _flipped(signature: bytearray, position: int) -> bytes:
    changed = bytearray(signature)
    changed[position % 64] ^= 1 << (position // 64 % 8)
    return bytes(changed)
