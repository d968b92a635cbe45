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
from datetime import datetime, timezone
from pathlib import Path

import httpx

from biofed.aggregator.checks import NodeKey
from biofed.errors import BiofedError
from biofed.trust import jsonprofile, proofs
from biofed.trust.keys import KeyError_, PublicKey

MAX_REGISTRY_BYTES = 8 * 1024 * 1024


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
                key = PublicKey.from_jwk({k: v for k, v in entry.items() if k in ("kty", "crv", "x", "kid")})
            except (KeyError_, AttributeError):
                continue
            result.append(NodeKey(key.raw, key.kid, entry.get("status", "active"), entry.get("validFrom"),
                                  entry.get("validUntil"), entry.get("compromisedSince")))
        return result


def read_source(source: str | Path, timeout: float = 30.0) -> bytes:
    text = str(source)
    if text.startswith(("http://", "https://")):
        try:
            with httpx.stream("GET", text, timeout=timeout, follow_redirects=False, trust_env=False) as response:
                if response.status_code != 200:
                    raise RegistryRefused("unavailable", f"registry {text} answered HTTP {response.status_code}")
                data = bytearray()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > MAX_REGISTRY_BYTES:
                        raise RegistryRefused("too-large", f"registry {text} is larger than {MAX_REGISTRY_BYTES} bytes")
                return bytes(data)
        except httpx.HTTPError as exc:
            raise RegistryRefused("unavailable", f"cannot read registry {text}: {exc}") from None
    try:
        return Path(text).read_bytes()
    except OSError as exc:
        raise RegistryRefused("unavailable", f"cannot read registry {text}: {exc.strerror}") from None


def _time(text) -> datetime | None:
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else None


def load_registry(data: bytes, trusted_keys: list[PublicKey] | None, *, last_version: int | None = None,
                  now: datetime | None = None) -> RegistryView:
    """Parse and verify a registry document; raise RegistryRefused with a reason code."""
    try:
        doc = jsonprofile.loads(data, max_bytes=MAX_REGISTRY_BYTES)
    except jsonprofile.ProfileError as exc:
        raise RegistryRefused("malformed", f"registry is not strict-profile JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("type") != "BioFedRegistry":
        raise RegistryRefused("malformed", "document is not a BioFedRegistry")
    own_keys = []
    for jwk in doc.get("registryKeys") or []:
        try:
            own_keys.append(PublicKey.from_jwk(jwk))
        except KeyError_:
            continue
    keys = list(trusted_keys) if trusted_keys else own_keys  # trust on first use
    try:
        from biofed.registry.document import RegistryError, verify_registry
    except ImportError:
        verify_registry = None
    if verify_registry is not None:
        try:
            verify_registry(doc, keys, last_version=last_version, now=now)
        except RegistryError as exc:
            raise RegistryRefused(getattr(exc, "reason", "refused"), f"registry refused: {exc}") from None
    else:  # the same three checks, from protocol.md section 7
        try:
            proofs.verify(doc, keys)
        except proofs.ProofError as exc:
            raise RegistryRefused(exc.reason, f"registry refused: {exc}") from None
        if last_version is not None and (type(doc.get("version")) is not int or doc["version"] < last_version):
            raise RegistryRefused("rollback", f"registry version {doc.get('version')} is lower than the accepted {last_version}")
        expires = _time(doc.get("expires"))
        if expires is None or expires <= (now or datetime.now(timezone.utc)):
            raise RegistryRefused("expired", f"registry expired at {doc.get('expires')}")
    version = doc.get("version")
    if type(version) is not int:
        raise RegistryRefused("malformed", "registry has no integer version")
    return RegistryView(doc, version, own_keys)
