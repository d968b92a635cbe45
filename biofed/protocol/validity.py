"""Is a node key valid at a time? The one rule (docs/protocol.md §7), for the
registry, the aggregator's per-record checks and `biofed verify`.

A key is valid at *t* when `validFrom` <= *t* < `validUntil` (either may be
null: unbounded). A key with a `compromisedSince` (a revoked key has one) is
valid only before it; a revoked key without one is never valid. Times have
one-second resolution: a key retired at a rotation gets `validUntil` = the
rotation time + 1 s, so it is valid through the second in which it signs the
KeyRotation statement, and the new key is valid from the rotation time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Mapping

from biofed.protocol.times import SECOND, format_time, parse_time
from biofed.trust import proofs
from biofed.trust.keys import PublicKey

JWK_MEMBERS = ("kty", "crv", "x", "kid", "alg", "use")


def retired_until(rotated_at: datetime) -> datetime:
    """validUntil of a key retired at `rotated_at`: valid through that whole second."""
    return rotated_at.replace(microsecond=0) + SECOND


def public_jwk(entry: Mapping) -> dict:
    """Only the JWK members of a key entry (registry or node descriptor)."""
    return {k: entry[k] for k in JWK_MEMBERS if k in entry}


@dataclass(frozen=True)
class KeyValidity:
    """A key's status and validity times, parsed once; asked about many proofs."""

    kid: str
    status: str = "active"
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    compromised_since: datetime | None = None

    @classmethod
    def of(cls, entry: Mapping) -> "KeyValidity":
        """From a key entry with the protocol's field names (validFrom, validUntil, compromisedSince).

        A time that does not parse raises BiofedError naming the field.
        """
        def when(name):
            value = entry.get(name)
            return None if value is None else parse_time(value, f"key {entry.get('kid')} {name}")

        return cls(entry.get("kid"), entry.get("status", "active"), when("validFrom"), when("validUntil"),
                   when("compromisedSince"))

    def refusal(self, at: datetime) -> tuple[str, str] | None:
        """None when the key is valid at `at`; else (reason code, sentence)."""
        if self.compromised_since is not None and at >= self.compromised_since:
            return "revoked-key", (f"signed at {format_time(at)} with key {self.kid}, compromised since "
                                   f"{format_time(self.compromised_since)}")
        if self.status == "revoked" and self.compromised_since is None:
            return "revoked-key", f"key {self.kid} is revoked"
        if self.valid_from is not None and at < self.valid_from:
            return "key-not-valid", (f"signed at {format_time(at)}, before key {self.kid} is valid "
                                     f"(validFrom {format_time(self.valid_from)})")
        if self.valid_until is not None and at >= self.valid_until:
            return "key-not-valid", (f"signed at {format_time(at)}, when key {self.kid} is no longer valid "
                                     f"(validUntil {format_time(self.valid_until)})")
        return None

    def valid_at(self, at: datetime) -> bool:
        return self.refusal(at) is None


def key_valid_at(entry: Mapping, at: datetime) -> bool:
    """validFrom <= at < validUntil, and before compromisedSince (protocol.md §7)."""
    return KeyValidity.of(entry).valid_at(at)


class KeyLookup:
    """(verificationMethod, at=None) -> the key, if it is valid at `at`: a lookup for proofs.verify.

    `entries` are key entries (public JWK + status and validity). With `at`
    (the proof's `created`) the validity rule above decides; without it a
    revoked key resolves to nothing (it cannot be told apart from a forger's).
    `explain(method, at)` says why a key did not resolve.
    """

    def __init__(self, entries, *, method_kid: Callable[[str], str | None] = proofs.key_fragment):
        self.method_kid = method_kid
        self.keys: dict[str, tuple[KeyValidity, PublicKey]] = {}
        for entry in entries:
            key = PublicKey.from_jwk(public_jwk(entry))
            self.keys[key.kid] = (KeyValidity.of({**entry, "kid": key.kid}), key)

    def _find(self, method: str):
        kid = self.method_kid(method)
        return self.keys.get(kid) if kid else None

    def __call__(self, method: str, at: datetime | None = None) -> PublicKey | None:
        found = self._find(method)
        if found is None:
            return None
        validity, key = found
        if at is None:
            return None if validity.status == "revoked" else key
        return key if validity.valid_at(at) else None

    def explain(self, method: str, at: datetime | None = None) -> str | None:
        found = self._find(method)
        if found is None:
            return f"no trusted key for verificationMethod {method!r}"
        validity, _ = found
        if at is None:
            return f"key {validity.kid} is revoked" if validity.status == "revoked" else None
        refusal = validity.refusal(at)
        return f"{refusal[1]} ({refusal[0]})" if refusal else None
