"""The signed registry document (docs/protocol.md §7): pure functions, no I/O.

The registry document lists the nodes of the network and pins the keys each
signs with. It is signed by the registry key; every change is a new
`version`, and each version `expires` so that a registry served unchanged
forever (freeze) is noticed. Aggregators, the registry itself and
`biofed verify --registry` read it through `verify_registry` and
`key_resolver`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from biofed.errors import BiofedError
from biofed.protocol.ids import NODE_ID, parse_node_method, registry_method, registry_method_prefix
from biofed.protocol.times import format_time, now as _now, parse_time
from biofed.protocol.validity import KeyLookup, key_valid_at, public_jwk
from biofed.trust import jsonprofile, proofs
from biofed.trust.keys import KeyFormatError, PublicKey, SigningKey

REGISTRY_TYPE = "BioFedRegistry"
DEFAULT_VALIDITY = timedelta(days=7)
MAX_REGISTRY_BYTES = 8 * 1024 * 1024  # the largest registry document anyone reads

REGISTRY_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
BASE_URL = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
NODE_STATUSES = ("active", "suspended", "removed")
KEY_STATUSES = ("active", "retired", "revoked")


class RegistryError(BiofedError):
    """A registry document was refused. `reason` is a stable code:
    malformed, bad-signature, unknown-key, rollback, expired."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def key_entry(key: PublicKey, *, status: str = "active", valid_from: str | None = None,
              valid_until: str | None = None, compromised_since: str | None = None) -> dict:
    """A key as the registry (and a node descriptor) lists it: public JWK, status, validity."""
    return {**key.jwk(), "status": status, "validFrom": valid_from, "validUntil": valid_until,
            "compromisedSince": compromised_since}


# --- the registry document


@dataclass
class Registry:
    """A verified registry document and the questions asked of it."""

    document: dict = field(repr=False)

    @property
    def version(self) -> int:
        return self.document["version"]

    @property
    def name(self) -> str:
        return self.document["name"]

    @property
    def expires(self) -> datetime:
        return parse_time(self.document["expires"])

    @property
    def nodes(self) -> list[dict]:
        return self.document["nodes"]

    def node(self, node_id: str) -> dict | None:
        return next((n for n in self.nodes if n["id"] == node_id), None)

    def active_nodes(self) -> list[dict]:
        return [n for n in self.nodes if n["status"] == "active"]

    def key_status(self, node_id: str, kid: str) -> str | None:
        """active, retired or revoked; None when the registry does not pin that key for the node."""
        entry = self._key_entry(node_id, kid)
        return entry["status"] if entry else None

    def keys_for(self, node_id: str, at: datetime | None = None) -> list[PublicKey]:
        """The node's keys valid at `at`; without `at`, the keys it may sign with now (status active)."""
        node = self.node(node_id)
        if node is None:
            return []
        if at is None:
            return [PublicKey.from_jwk(public_jwk(k)) for k in node["keys"] if k["status"] == "active"]
        at = at.astimezone(timezone.utc)
        return [PublicKey.from_jwk(public_jwk(k)) for k in node["keys"] if key_valid_at(k, at)]

    def _key_entry(self, node_id: str, kid: str) -> dict | None:
        node = self.node(node_id)
        if node is None:
            return None
        return next((k for k in node["keys"] if k.get("kid") == kid), None)


def new_registry(name: str, key: SigningKey, *, validity: timedelta = DEFAULT_VALIDITY) -> dict:
    """Version 1 of a registry: no nodes yet, signed by `key`."""
    if not isinstance(name, str) or not REGISTRY_NAME.match(name):
        raise RegistryError("malformed", f"registry name {name!r} must match {REGISTRY_NAME.pattern}")
    document = {"type": REGISTRY_TYPE, "name": name, "version": 0, "issued": None, "expires": None,
                "registryKeys": [key.public.jwk()], "nodes": []}
    return sign_registry(document, key, validity=validity)


def sign_registry(doc: dict, key: SigningKey, *, validity: timedelta = DEFAULT_VALIDITY,
                  now: datetime | None = None) -> dict:
    """The next version of `doc`: version + 1, fresh issued/expires, signed by `key`."""
    if validity <= timedelta(0):
        raise RegistryError("malformed", f"validity {validity} must be positive")
    unsigned = {k: v for k, v in doc.items() if k != "proof"}
    if type(unsigned.get("version")) is not int or unsigned["version"] < 0:
        raise RegistryError("malformed", f"registry version {unsigned.get('version')!r} is not a whole number")
    keys = list(unsigned.get("registryKeys") or [])
    if key.kid not in {k.get("kid") for k in keys if isinstance(k, dict)}:
        keys.append(key.public.jwk())
    issued = _now(now)
    unsigned.update(version=unsigned["version"] + 1, issued=format_time(issued),
                    expires=format_time(issued + validity), registryKeys=keys)
    check_registry_shape(unsigned, signed=False)
    return proofs.sign(unsigned, key, registry_method(unsigned["name"], key.kid), created=unsigned["issued"])


def _malformed(pointer: str, message: str) -> RegistryError:
    return RegistryError("malformed", f"registry {pointer or '/'}: {message}")


def _check_time(value, pointer: str, *, nullable: bool) -> None:
    if value is None and nullable:
        return
    try:
        parse_time(value)
    except BiofedError:
        raise _malformed(pointer, f"{value!r} is not an RFC 3339 time with a zone") from None


def check_key_entry(entry, pointer: str) -> None:
    if not isinstance(entry, dict):
        raise _malformed(pointer, "key entry is not an object")
    try:
        PublicKey.from_jwk(public_jwk(entry))
    except KeyFormatError as exc:
        raise _malformed(pointer, str(exc)) from None
    if "kid" not in entry:
        raise _malformed(pointer, "key entry has no kid")
    if entry.get("status") not in KEY_STATUSES:
        raise _malformed(f"{pointer}/status", f"{entry.get('status')!r} is not one of {', '.join(KEY_STATUSES)}")
    for name in ("validFrom", "validUntil", "compromisedSince"):
        _check_time(entry.get(name), f"{pointer}/{name}", nullable=True)
    if entry["status"] == "revoked" and not entry.get("compromisedSince"):
        raise _malformed(f"{pointer}/compromisedSince", "a revoked key needs compromisedSince")
    if entry["status"] == "retired" and not entry.get("validUntil"):
        raise _malformed(f"{pointer}/validUntil", "a retired key needs validUntil")


def check_node_entry(node, pointer: str) -> None:
    if not isinstance(node, dict):
        raise _malformed(pointer, "node entry is not an object")
    if not isinstance(node.get("id"), str) or not NODE_ID.match(node["id"]):
        raise _malformed(f"{pointer}/id", f"node id {node.get('id')!r} must match {NODE_ID.pattern}")
    if not isinstance(node.get("name"), str) or not node["name"].strip():
        raise _malformed(f"{pointer}/name", "node name must be a non-empty string")
    if not isinstance(node.get("country"), str) or not COUNTRY.match(node["country"]):
        raise _malformed(f"{pointer}/country", f"{node.get('country')!r} is not an ISO 3166-1 alpha-2 code")
    if node.get("region") is not None and not isinstance(node["region"], str):
        raise _malformed(f"{pointer}/region", "region must be a NUTS code string or null")
    if not isinstance(node.get("baseUrl"), str) or not BASE_URL.match(node["baseUrl"]):
        raise _malformed(f"{pointer}/baseUrl", f"{node.get('baseUrl')!r} is not an http(s) URL")
    if not isinstance(node.get("licence"), str) or not node["licence"]:
        raise _malformed(f"{pointer}/licence", "licence must be an SPDX identifier")
    if node.get("status") not in NODE_STATUSES:
        raise _malformed(f"{pointer}/status", f"{node.get('status')!r} is not one of {', '.join(NODE_STATUSES)}")
    if not isinstance(node.get("controlVerified"), bool):
        raise _malformed(f"{pointer}/controlVerified", "must be true or false")
    if not isinstance(node.get("keys"), list):
        raise _malformed(f"{pointer}/keys", "must be a list of key entries")
    kids = set()
    for index, entry in enumerate(node["keys"]):
        check_key_entry(entry, f"{pointer}/keys/{index}")
        if entry["kid"] in kids:
            raise _malformed(f"{pointer}/keys/{index}/kid", f"key {entry['kid']} is listed twice")
        kids.add(entry["kid"])


def check_registry_shape(doc, *, signed: bool = True) -> None:
    """Raise RegistryError('malformed', ...) naming the first field that is wrong."""
    if not isinstance(doc, dict):
        raise _malformed("", "the registry is not a JSON object")
    try:
        jsonprofile.check(doc)
    except jsonprofile.ProfileError as exc:
        raise RegistryError("malformed", f"registry is outside the strict JSON profile: {exc}") from None
    if doc.get("type") != REGISTRY_TYPE:
        raise _malformed("/type", f"{doc.get('type')!r} is not {REGISTRY_TYPE!r}")
    if not isinstance(doc.get("name"), str) or not REGISTRY_NAME.match(doc["name"]):
        raise _malformed("/name", f"{doc.get('name')!r} must match {REGISTRY_NAME.pattern}")
    if type(doc.get("version")) is not int or doc["version"] < 1:
        raise _malformed("/version", f"{doc.get('version')!r} is not a whole number >= 1")
    _check_time(doc.get("issued"), "/issued", nullable=False)
    _check_time(doc.get("expires"), "/expires", nullable=False)
    if not isinstance(doc.get("registryKeys"), list) or not doc["registryKeys"]:
        raise _malformed("/registryKeys", "must be a non-empty list of public JWKs")
    for index, jwk in enumerate(doc["registryKeys"]):
        try:
            PublicKey.from_jwk(jwk)
        except KeyFormatError as exc:
            raise _malformed(f"/registryKeys/{index}", str(exc)) from None
    if not isinstance(doc.get("nodes"), list):
        raise _malformed("/nodes", "must be a list")
    ids = set()
    for index, node in enumerate(doc["nodes"]):
        check_node_entry(node, f"/nodes/{index}")
        if node["id"] in ids:
            raise _malformed(f"/nodes/{index}/id", f"node {node['id']} is listed twice")
        ids.add(node["id"])
    if signed:
        if not isinstance(doc.get("proof"), dict):
            raise _malformed("/proof", "the registry has no proof")
        _check_schema(doc)


def _check_schema(doc: dict) -> None:
    """The data standard's registry schema has the last word on shape."""
    from biofed.schema import validate_document

    issues = validate_document(doc, "registry")
    if issues:
        raise _malformed(issues[0].pointer, f"{issues[0].message} ({issues[0].rule})")


def verify_registry(doc: dict, trusted_keys: list[PublicKey], *, last_version: int | None = None,
                    now: datetime | None = None) -> Registry:
    """Check shape, signature (by one of `trusted_keys`), rollback and expiry; return the Registry."""
    check_registry_shape(doc)
    trusted = {key.kid: key for key in trusted_keys}
    method = doc["proof"].get("verificationMethod")
    prefix = registry_method_prefix(doc["name"])
    if not isinstance(method, str) or not method.startswith(prefix):
        raise RegistryError("bad-signature", f"registry proof verificationMethod {method!r} does not start with {prefix!r}")
    try:
        proofs.verify(doc, lambda m: trusted.get(proofs.key_fragment(m)))
    except proofs.ProofError as exc:
        if exc.reason == "unknown-key":
            given = ", ".join(trusted) or "none"
            raise RegistryError("unknown-key", f"registry is signed with key {proofs.key_fragment(method)!r}, "
                                               f"which is not a trusted registry key (trusted: {given})") from None
        raise RegistryError("bad-signature", f"registry signature does not hold: {exc} ({exc.reason})") from None
    if last_version is not None and doc["version"] < last_version:
        raise RegistryError("rollback", f"registry version {doc['version']} is older than version {last_version}, "
                                        "which was already accepted (rollback)")
    current = _now(now)
    if parse_time(doc["expires"]) <= current:
        raise RegistryError("expired", f"registry version {doc['version']} expired at {doc['expires']} "
                                       "(a registry that is no longer re-signed is frozen)")
    return Registry(doc)


class RegistryKeys:
    """(verificationMethod, at=None) -> the key the registry pins for that node, valid at `at`.

    A lookup for proofs.verify. Removed nodes resolve to nothing. With `at`
    (the proof's `created`) the validity rule of protocol.md §7 decides
    (biofed.protocol.validity); without it a revoked key resolves to nothing,
    since it cannot be told apart from a forger's. `explain` says why a
    method did not resolve.
    """

    def __init__(self, registry: Registry):
        self.registry = registry
        self._nodes: dict[str, KeyLookup] = {}

    def _lookup(self, method: str) -> KeyLookup | None:
        parsed = parse_node_method(method)
        if parsed is None:
            return None
        node = self.registry.node(parsed[0])
        if node is None or node["status"] == "removed":
            return None
        if node["id"] not in self._nodes:
            self._nodes[node["id"]] = KeyLookup(node["keys"])
        return self._nodes[node["id"]]

    def __call__(self, method: str, at: datetime | None = None) -> PublicKey | None:
        lookup = self._lookup(method)
        return lookup(method, at) if lookup else None

    def explain(self, method: str, at: datetime | None = None) -> str | None:
        lookup = self._lookup(method)
        if lookup is None:
            return f"{method!r} names no node the registry lists (or a removed one)"
        return lookup.explain(method, at)


def key_resolver(registry_doc: dict, registry_key: str | None) -> RegistryKeys:
    """The pinned node keys of a registry document, as a lookup for proofs.verify (RegistryKeys).

    With `registry_key` (multibase or key file) the registry is verified
    first. Without it the document is only checked for shape: the caller
    trusts the file.
    """
    if registry_key:
        registry = verify_registry(registry_doc, [PublicKey.parse(registry_key)])
    else:
        check_registry_shape(registry_doc)
        registry = Registry(registry_doc)
    return RegistryKeys(registry)
