"""The controller document of a node's keys (W3C Controlled Identifiers v1.0).

A record's proof names its key `urn:biofed:<node id>#<kid>`. A Data Integrity
library verifies such a proof only when the key is listed, under that id, in
the controller document of `urn:biofed:<node id>` and referenced from its
`assertionMethod` (the proof's purpose). This module builds that document from
the key entries a node descriptor or a registry entry holds (public JWK,
`status`, `validFrom`, `validUntil`, `compromisedSince`), so a node, an
aggregator or a verifier holding the registry all build the same one.

Each key is a `Multikey` (`publicKeyMultibase` `z6Mk...`). Validity in the
terms the specification has: a retired key `expires` at its `validUntil` and a
revoked key is `revoked` from its `compromisedSince` (proofs created before
either time stay valid, docs/protocol.md §7); `validFrom` has no term there and
is in the node descriptor and the registry.
"""

from __future__ import annotations

from typing import Iterable

from biofed.protocol.ids import node_method
from biofed.protocol.validity import public_jwk
from biofed.trust.keys import PublicKey

CID_CONTEXT = "https://www.w3.org/ns/cid/v1"


def controller_id(node_id: str) -> str:
    return f"urn:biofed:{node_id}"


def verification_method(node_id: str, entry: dict) -> dict:
    """One key entry as a CID verification method; KeyFormatError names a key entry that is not an Ed25519 JWK."""
    key = PublicKey.from_jwk(public_jwk(entry))
    controller = controller_id(node_id)
    method = {"id": node_method(node_id, key.kid), "type": "Multikey", "controller": controller,
              "publicKeyMultibase": key.multibase}
    if entry.get("validUntil"):
        method["expires"] = entry["validUntil"]
    if entry.get("compromisedSince"):
        method["revoked"] = entry["compromisedSince"]
    return method


def controller_document(node_id: str, keys: Iterable[dict]) -> dict:
    """The controller document of `urn:biofed:<node_id>`: every key, each one an assertion method.

    `keys`: the node descriptor's `keys.keys` or a registry entry's `keys`.
    """
    methods = [verification_method(node_id, entry) for entry in keys]
    return {"@context": CID_CONTEXT, "id": controller_id(node_id), "verificationMethod": methods,
            "assertionMethod": [method["id"] for method in methods]}
