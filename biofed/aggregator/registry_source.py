"""Read and verify the registry document an aggregator harvests from.

The registry comes from a file or an http(s) URL. Trust: keys given by the
operator (`--registry-key`) are pinned; otherwise the first registry the
aggregator accepts is trusted on first use and its `registryKeys` are stored
in `registry_state`, and every later registry must be signed by one of them.
A registry whose proof fails, whose version is lower than the last accepted
one, or which has expired is refused (protocol.md section 7).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from biofed.aggregator.checks import NodeKey
from biofed.errors import BiofedError
from biofed.protocol.fetch import FetchError, fetch_bytes
from biofed.protocol.registry import MAX_REGISTRY_BYTES, RegistryError, verify_registry
from biofed.protocol.validity import public_jwk
from biofed.trust import jsonprofile
from biofed.trust.keys import KeyFormatError, PublicKey


class RegistryRefused(BiofedError):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class RegistryView:
    """What the harvester needs from a verified registry document."""

    document: dict
    version: int
    keys: list[PublicKey]  # the registry's own keys

    def nodes(self) -> list[dict]:
        return [n for n in self.document.get("nodes", []) if isinstance(n, dict) and isinstance(n.get("id"), str)]

    @staticmethod
    def node_keys(node: dict) -> list[NodeKey]:
        result = []
        for entry in node.get("keys") or []:
            try:
                key = PublicKey.from_jwk(public_jwk(entry))
            except (KeyFormatError, AttributeError):
                continue
            result.append(NodeKey(key.raw, key.kid, entry.get("status", "active"), entry.get("validFrom"),
                                  entry.get("validUntil"), entry.get("compromisedSince")))
        return result


def read_source(source: str | Path, timeout: float = 30.0) -> bytes:
    """The registry's bytes, from a file or an http(s) URL (biofed.protocol.fetch: size-, time- and origin-capped)."""
    text = str(source)
    if text.startswith(("http://", "https://")):
        try:
            return fetch_bytes(text, timeout=timeout, max_bytes=MAX_REGISTRY_BYTES)
        except FetchError as exc:
            reason = "too-large" if exc.reason == "too-large" else "unavailable"
            raise RegistryRefused(reason, f"cannot read registry {text}: {exc}") from None
    try:
        return Path(text).read_bytes()
    except OSError as exc:
        raise RegistryRefused("unavailable", f"cannot read registry {text}: {exc.strerror}") from None


def load_registry(data: bytes, trusted_keys: list[PublicKey] | None, *, last_version: int | None = None,
                  now: datetime | None = None) -> RegistryView:
    """Parse and verify a registry document; raise RegistryRefused with a reason code."""
    try:
        doc = jsonprofile.loads(data, max_bytes=MAX_REGISTRY_BYTES)
    except jsonprofile.ProfileError as exc:
        raise RegistryRefused("malformed", f"registry is not strict-profile JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise RegistryRefused("malformed", "registry is not a JSON object")
    own_keys = []
    for jwk in doc.get("registryKeys") or []:
        try:
            own_keys.append(PublicKey.from_jwk(jwk))
        except KeyFormatError:
            continue
    keys = list(trusted_keys) if trusted_keys else own_keys  # trust on first use
    try:
        registry = verify_registry(doc, keys, last_version=last_version, now=now)
    except RegistryError as exc:
        raise RegistryRefused(exc.reason, f"registry refused: {exc}") from None
    return RegistryView(doc, registry.version, own_keys)
