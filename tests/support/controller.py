"""Resolve a verificationMethod from a controller document alone, as a Data Integrity library would."""

from __future__ import annotations

from biofed.trust.keys import PublicKey


def resolver(document: dict):
    """verificationMethod, proof time -> key, from the controller document alone."""
    methods = {m["id"]: m for m in document["verificationMethod"] if m["id"] in document["assertionMethod"]}

    def resolve(method: str, created: str) -> PublicKey | None:
        found = methods.get(method)
        if found is None or created >= found.get("expires", "9") or created >= found.get("revoked", "9"):
            return None
        return PublicKey.from_multibase(found["publicKeyMultibase"])

    return resolve
