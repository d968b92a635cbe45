import json
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofed.trust.keys import KeyFormatError, PublicKey, SigningKey


def test_vector_keypair_roundtrip(vectors):
    pair = json.loads((vectors / "eddsa-jcs-2022" / "keyPair.json").read_text())
    key = SigningKey.from_multibase(pair["privateKeyMultibase"])
    assert key.public.multibase == pair["publicKeyMultibase"]
    assert PublicKey.from_multibase(pair["publicKeyMultibase"]) == key.public


def test_rfc8037_thumbprint_known_answer():
    # RFC 8037 appendix A.3: the JWK thumbprint of the example Ed25519 key.
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert PublicKey.from_jwk(jwk).kid == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_save_is_private_and_loads(tmp_path):
    key = SigningKey.generate()
    path = tmp_path / "k.pem"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SigningKey.load(path).public == key.public
    assert "PRIVATE" not in repr(key) and key.kid in repr(key)


def test_parse_every_public_form(tmp_path):
    key = SigningKey.generate().public
    (tmp_path / "k.jwk").write_text(json.dumps(key.jwk()))
    (tmp_path / "k.jwks").write_text(json.dumps({"keys": [key.jwk()]}))
    (tmp_path / "k.pem").write_bytes(key.pem())
    for text in (key.multibase, str(tmp_path / "k.jwk"), str(tmp_path / "k.jwks"), str(tmp_path / "k.pem")):
        assert PublicKey.parse(text) == key


@pytest.mark.parametrize(
    "jwk, message",
    [
        ({"kty": "RSA"}, "not an OKP/Ed25519"),
        ({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}, "32 bytes"),
        ({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "nope"}, "not the RFC 7638 thumbprint"),
        ({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "d": "x"}, "private key"),
    ],
)
def test_bad_jwk(jwk, message):
    with pytest.raises(KeyFormatError, match=message):
        PublicKey.from_jwk(jwk)


def test_bad_multibase():
    with pytest.raises(KeyFormatError, match="base58btc"):
        PublicKey.from_multibase("u6Mk")
    with pytest.raises(KeyFormatError, match="neither a multibase key"):
        PublicKey.parse("no-such-file.pem")


def test_parse_a_registry_well_known_document(tmp_path):
    """The registry's /.well-known/biofed-registry.json wraps its JWKS: {"name", "keys": {"keys": [...]}, ...}."""
    key = SigningKey.generate().public
    (tmp_path / "wk.json").write_text(json.dumps({"name": "biofed-eu", "keys": {"keys": [key.jwk()]},
                                                   "current": "/registry.json", "version": 3}))
    assert PublicKey.parse(str(tmp_path / "wk.json")) == key
    (tmp_path / "bad.json").write_text(json.dumps({"keys": "z6Mk"}))
    with pytest.raises(KeyFormatError, match="not a list"):
        PublicKey.parse(str(tmp_path / "bad.json"))


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=80), zeros=st.integers(0, 4))
def test_b58decode_equals_the_base58_library(data, zeros):
    import base58

    from biofed.trust.keys import b58decode

    data = b"\0" * zeros + data
    text = base58.b58encode(data).decode()
    assert b58decode(text) == base58.b58decode(text) == data


@pytest.mark.parametrize("text", ["0zz", "zIl", "zé", "z+"])
def test_b58decode_names_the_character_outside_the_alphabet(text):
    from biofed.trust.keys import b58decode

    with pytest.raises(ValueError, match="invalid character"):
        b58decode(text)
