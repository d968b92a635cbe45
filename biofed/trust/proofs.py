"""W3C Data Integrity proofs with the eddsa-jcs-2022 cryptosuite.

sign: proofConfig = proof options (+ the document's @context, if any);
hashData = SHA-256(JCS(proofConfig)) || SHA-256(JCS(document without proof));
proofValue = multibase base58btc of Ed25519(hashData).
verify checks the same and fails with a distinct reason for each way a proof
can be wrong.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Iterable

from biofed.trust.canonical import canonicalize, canonicalize_certified
from biofed.trust.keys import KeyFormatError, PublicKey, SigningKey, multibase_decode, multibase_encode
from biofed.trust.times import utc_now

PROOF_TYPE = "DataIntegrityProof"
CRYPTOSUITE = "eddsa-jcs-2022"


class ProofError(ValueError):
    """Verification failed. `reason` is a stable code, str() a sentence."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def hash_data(unsecured: dict, proof_config: dict, *, canonical: Callable[[Any], bytes] = canonicalize) -> bytes:
    return hashlib.sha256(canonical(proof_config)).digest() + hashlib.sha256(canonical(unsecured)).digest()


def sign(
    document: dict,
    key: SigningKey,
    verification_method: str,
    *,
    created: str | None = None,
    proof_purpose: str = "assertionMethod",
) -> dict:
    """Return a copy of `document` with a DataIntegrityProof added."""
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    proof = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": created or utc_now(),
        "verificationMethod": verification_method,
        "proofPurpose": proof_purpose,
    }
    if "@context" in unsecured:
        proof["@context"] = unsecured["@context"]
    signature = key.sign(hash_data(unsecured, proof))
    return {**unsecured, "proof": {**proof, "proofValue": multibase_encode(signature)}}


def key_fragment(verification_method: str) -> str:
    return verification_method.rsplit("#", 1)[-1] if "#" in verification_method else verification_method


def verify(document: Any, keys: PublicKey | Iterable[PublicKey] | Callable[[str], PublicKey | None], *,
           certified: bool = False) -> dict:
    """Verify the proof of `document`; return the proof on success, raise ProofError otherwise.

    `keys` is one key, several (the one the proof names is used), or a
    function from the verificationMethod to a key (a registry lookup).
    certified=True: `document` came from jsonprofile.parse() with its certificate,
    so its RFC 8785 form is orjson's sorted output and the guard is skipped.
    """
    if not isinstance(document, dict):
        raise ProofError("not-an-object", "the document is not a JSON object")
    proof = document.get("proof")
    if proof is None:
        raise ProofError("missing-proof", "the document has no proof")
    if not isinstance(proof, dict):
        raise ProofError("malformed-proof", "proof is not a single JSON object")
    if proof.get("type") != PROOF_TYPE:
        raise ProofError("wrong-proof-type", f"proof type is {proof.get('type')!r}, expected {PROOF_TYPE!r}")
    if proof.get("cryptosuite") != CRYPTOSUITE:
        raise ProofError("wrong-cryptosuite", f"cryptosuite is {proof.get('cryptosuite')!r}, expected {CRYPTOSUITE!r}")
    for name in ("verificationMethod", "proofPurpose", "proofValue"):
        if not isinstance(proof.get(name), str):
            raise ProofError("malformed-proof", f"proof.{name} is missing or not a string")
    method = proof["verificationMethod"]
    key = _select_key(keys, method)
    try:
        signature = multibase_decode(proof["proofValue"])
    except KeyFormatError as exc:
        raise ProofError("malformed-proof", f"proof.proofValue: {exc}") from None
    if len(signature) != 64:
        raise ProofError("malformed-proof", f"proof.proofValue holds {len(signature)} bytes, an Ed25519 signature has 64")
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    config = {k: v for k, v in proof.items() if k != "proofValue"}
    if "@context" in config:
        context = unsecured.get("@context")
        want = config["@context"] if isinstance(config["@context"], list) else [config["@context"]]
        have = context if isinstance(context, list) else [context]
        if have[: len(want)] != want:
            raise ProofError("context-mismatch", "the document's @context does not start with the proof's @context")
        unsecured["@context"] = config["@context"]
    try:
        data = hash_data(unsecured, config, canonical=canonicalize_certified if certified else canonicalize)
    except Exception as exc:  # a value JCS cannot represent
        raise ProofError("not-canonicalizable", f"document cannot be canonicalised: {exc}") from None
    if not key.verify(signature, data):
        raise ProofError("bad-signature", "signature does not match: the document or its proof was changed after signing")
    return proof


def _select_key(keys, method: str) -> PublicKey:
    fragment = key_fragment(method)
    if callable(keys) and not isinstance(keys, PublicKey):
        key = keys(method)
        if key is None:
            raise ProofError("unknown-key", f"no trusted key for verificationMethod {method!r}")
        return key
    candidates = [keys] if isinstance(keys, PublicKey) else list(keys)
    for key in candidates:
        if fragment in key.names():
            return key
    given = ", ".join(k.kid for k in candidates) or "none"
    raise ProofError("wrong-key", f"proof was made with key {fragment!r}, not with the key given ({given})")
