"""Ed25519 keys: generate, store, and name them the ways the protocol needs.

A key is named by its RFC 7638 JWK thumbprint (`kid`) and can be written as an
RFC 8037 OKP JWK, as a Multikey (`z6Mk...`, multicodec ed25519-pub 0xed01 in
base58btc) or as PEM. Private keys are written with file mode 0600 and never
leave the machine they were made on.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import base58
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from biofed.files import write_atomic

ED25519_PUB_PREFIX = b"\xed\x01"
ED25519_PRIV_PREFIX = b"\x80\x26"


class KeyFormatError(ValueError):
    """A key could not be read; the message says which and why."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def multibase_encode(data: bytes) -> str:
    return "z" + base58.b58encode(data).decode("ascii")


_B58_ALPHABET = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_DIGITS = bytes(_B58_ALPHABET.index(i) if i in _B58_ALPHABET else 255 for i in range(256))


def b58decode(text: str) -> bytes:
    """Base58btc (Bitcoin alphabet) to bytes; ValueError names the first character outside it.

    The same result as base58.b58decode in about a fifth of the time (a harvest
    decodes one proofValue per record; tests/trust/test_keys.py compares the two).
    """
    data = text.encode("ascii", "replace")
    digits = data.translate(_B58_DIGITS)
    if 255 in digits:
        bad = text[digits.index(255)]
        raise ValueError(f"invalid character {bad!r}")
    value = 0
    for digit in digits:
        value = value * 58 + digit
    zeros = len(data) - len(data.lstrip(b"1"))  # each leading '1' is a zero byte
    return b"\0" * zeros + (value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b"")


def multibase_decode(text: str) -> bytes:
    if not text.startswith("z"):
        raise KeyFormatError(f"multibase value {text[:12]!r} is not base58btc (must start with 'z')")
    try:
        return b58decode(text[1:])
    except ValueError as exc:
        raise KeyFormatError(f"multibase value is not valid base58btc: {exc}") from None


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key and its names."""

    raw: bytes

    def __post_init__(self):
        if len(self.raw) != 32:
            raise KeyFormatError(f"an Ed25519 public key has 32 bytes, not {len(self.raw)}")

    @property
    def _key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.raw)

    def verify(self, signature: bytes, message: bytes) -> bool:
        # libsodium (PyNaCl) verifies in about half the time OpenSSL takes here (45 vs 93 us),
        # and verification is most of a harvest's CPU. It is also the stricter of the two
        # (it refuses small-order keys and non-canonical signatures), which no honest signer produces.
        if len(signature) != 64:
            return False
        try:
            crypto_sign_open(signature + message, self.raw)
            return True
        except BadSignatureError:
            return False

    # Cached: a harvest asks a node's key for its names once per record it verifies.
    @functools.cached_property
    def multibase(self) -> str:
        return multibase_encode(ED25519_PUB_PREFIX + self.raw)

    @functools.cached_property
    def kid(self) -> str:
        """RFC 7638 thumbprint: SHA-256 of the canonical required members."""
        members = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": b64url(self.raw)}, separators=(",", ":"), sort_keys=True)
        return b64url(hashlib.sha256(members.encode("ascii")).digest())

    def jwk(self) -> dict:
        return {"kty": "OKP", "crv": "Ed25519", "x": b64url(self.raw), "kid": self.kid, "alg": "EdDSA", "use": "sig"}

    def pem(self) -> bytes:
        return self._key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def names(self) -> frozenset[str]:
        """Every name a proof's verificationMethod may use for this key."""
        return self._names

    @functools.cached_property
    def _names(self) -> frozenset[str]:
        return frozenset((self.kid, self.multibase))

    @classmethod
    def from_multibase(cls, text: str) -> "PublicKey":
        data = multibase_decode(text)
        if not data.startswith(ED25519_PUB_PREFIX):
            raise KeyFormatError("multibase key is not an Ed25519 public key (multicodec 0xed01)")
        return cls(data[2:])

    @classmethod
    def from_jwk(cls, jwk: dict) -> "PublicKey":
        if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or "x" not in jwk:
            raise KeyFormatError("JWK is not an OKP/Ed25519 public key (needs kty=OKP, crv=Ed25519, x)")
        if "d" in jwk:
            raise KeyFormatError("JWK contains a private key ('d'); pass the public key only")
        try:
            raw = b64url_decode(jwk["x"])
        except (ValueError, TypeError):
            raise KeyFormatError("JWK 'x' is not base64url") from None
        key = cls(raw)
        if "kid" in jwk and jwk["kid"] != key.kid:
            raise KeyFormatError(f"JWK 'kid' {jwk['kid']!r} is not the RFC 7638 thumbprint of its key ({key.kid})")
        return key

    @classmethod
    def from_pem(cls, data: bytes) -> "PublicKey":
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise KeyFormatError(f"not a PEM public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFormatError("PEM key is not Ed25519")
        return cls(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))

    @classmethod
    def parse(cls, text: str) -> "PublicKey":
        """Read a key given on a command line: multibase, or a JWK/PEM/JWKS file."""
        if text.startswith("z6Mk") or (text.startswith("z") and not os.path.exists(text)):
            return cls.from_multibase(text)
        path = Path(text)
        if not path.is_file():
            raise KeyFormatError(f"{text!r} is neither a multibase key (z6Mk...) nor a readable key file")
        data = path.read_bytes()
        if b"-----BEGIN" in data:
            return cls.from_pem(data)
        try:
            obj = json.loads(data)
        except ValueError:
            raise KeyFormatError(f"{text}: neither PEM nor JSON") from None
        if isinstance(obj, dict) and isinstance(obj.get("keys"), dict) and "keys" in obj["keys"]:
            obj = obj["keys"]  # a registry's /.well-known/biofed-registry.json or a node descriptor: {"keys": JWKS}
        if isinstance(obj, dict) and "keys" in obj:
            if not isinstance(obj["keys"], list):
                raise KeyFormatError(f"{text}: 'keys' is not a list of JWKs")
            if len(obj["keys"]) != 1:
                raise KeyFormatError(f"{text}: JWKS holds {len(obj['keys'])} keys; pass one")
            obj = obj["keys"][0]
        if isinstance(obj, dict) and "publicKeyMultibase" in obj:
            return cls.from_multibase(obj["publicKeyMultibase"])
        return cls.from_jwk(obj)


class SigningKey:
    """An Ed25519 private key."""

    def __init__(self, key: Ed25519PrivateKey):
        self._key = key
        self.public = PublicKey(key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))

    @classmethod
    def generate(cls) -> "SigningKey":
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> "SigningKey":
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_multibase(cls, text: str) -> "SigningKey":
        data = multibase_decode(text)
        if not data.startswith(ED25519_PRIV_PREFIX) or len(data) != 34:
            raise KeyFormatError("multibase key is not an Ed25519 private key (multicodec 0x8026)")
        return cls.from_seed(data[2:])

    @property
    def kid(self) -> str:
        return self.public.kid

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def save(self, path: str | Path) -> None:
        """Write PEM (PKCS#8) with mode 0600, atomically: never a half-written key."""
        data = self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_atomic(path, data, mode=0o600)

    @classmethod
    def load(cls, path: str | Path) -> "SigningKey":
        path = Path(path)
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise KeyFormatError(f"{path}: cannot read private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFormatError(f"{path}: not an Ed25519 private key")
        return cls(key)

    def __repr__(self) -> str:  # never show key material
        return f"SigningKey(kid={self.kid!r})"
