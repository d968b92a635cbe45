"""The signed registry document and join requests: pure functions, no I/O.

The registry document (docs/protocol.md §7) lists the nodes of the network
and pins the keys each signs with. It is signed by the registry key; every
change is a new `version`, and each version `expires` so that a registry
served unchanged forever (freeze) is noticed. Aggregators and
`biofed verify --registry` read it through `verify_registry` and
`key_resolver`.

A join request is what a node sends the network operator: its identity and
public key, signed with that key, so that the request itself proves the
sender holds the private key.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

from biofed.errors import BiofedError
from biofed.trust import jsonprofile, proofs
from biofed.trust.keys import KeyError_, PublicKey, SigningKey

REGISTRY_TYPE = "BioFedRegistry"
JOIN_REQUEST_TYPE = "BioFedJoinRequest"
DEFAULT_VALIDITY = timedelta(days=7)

NODE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
REGISTRY_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
BASE_URL = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
NODE_STATUSES = ("active", "suspended", "removed")
KEY_STATUSES = ("active", "retired", "revoked")
JWK_MEMBERS = ("kty", "crv", "x", "kid", "alg", "use")
# How far a join request's clock may run ahead of ours.
CLOCK_SKEW = timedelta(minutes=5)


class RegistryError(BiofedError):
    """A registry document was refused. `reason` is a stable code:
    malformed, bad-signature, unknown-key, rollback, expired."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class JoinRequestError(BiofedError):
    """A join request is malformed or its signature does not hold."""


# --- time


def format_time(when: datetime) -> str:
    return when.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(text, what: str = "time") -> datetime:
    """An RFC 3339 time with a zone; BiofedError naming `what` otherwise."""
    if not isinstance(text, str):
        raise BiofedError(f"{what} {text!r} is not an RFC 3339 time string")
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BiofedError(f"{what} {text!r} is not an RFC 3339 time (e.g. 2026-11-23T12:00:00Z)") from None
    if when.tzinfo is None:
        raise BiofedError(f"{what} {text!r} has no time zone (add Z for UTC)")
    return when.astimezone(timezone.utc)


def normalise_time(text: str, what: str = "time") -> str:
    return format_time(parse_time(text, what))


def _now(now: datetime | None = None) -> datetime:
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc)


# --- keys as they appear in the registry


def registry_method(name: str, kid: str) -> str:
    return f"urn:biofed:registry:{name}#{kid}"


def node_method(node_id: str, kid: str) -> str:
    return f"urn:biofed:{node_id}#{kid}"


def parse_node_method(method: str) -> tuple[str, str] | None:
    """`urn:biofed:<node id>#<kid>` -> (node id, kid); None for anything else."""
    match = re.fullmatch(r"urn:biofed:([a-z0-9][a-z0-9-]{1,62})#([A-Za-z0-9_-]{43})", method or "")
    return (match.group(1), match.group(2)) if match else None


def public_jwk(entry: dict) -> dict:
    """Only the JWK members of a registry key entry."""
    return {k: entry[k] for k in JWK_MEMBERS if k in entry}


def key_entry(key: PublicKey, *, status: str = "active", valid_from: str | None = None,
              valid_until: str | None = None, compromised_since: str | None = None) -> dict:
    return {**key.jwk(), "status": status, "validFrom": valid_from, "validUntil": valid_until,
            "compromisedSince": compromised_since}


def key_valid_at(entry: dict, at: datetime) -> bool:
    """validFrom <= at < validUntil; a revoked key only before compromisedSince."""
    if entry.get("validFrom") and at < parse_time(entry["validFrom"]):
        return False
    if entry.get("validUntil") and at >= parse_time(entry["validUntil"]):
        return False
    if entry.get("status") == "revoked":
        since = entry.get("compromisedSince")
        if not since or at >= parse_time(since):
            return False
    return True


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
    except KeyError_ as exc:
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
        except KeyError_ as exc:
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
    prefix = f"urn:biofed:registry:{doc['name']}#"
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


def key_resolver(registry_doc: dict, registry_key: str | None) -> Callable[..., PublicKey | None]:
    """A (verificationMethod, at=None) -> pinned node key lookup, for proofs.verify.

    With `registry_key` (multibase or key file) the registry is verified
    first. Without it the document is only checked for shape: the caller
    trusts the file. Removed nodes resolve to None. A revoked key resolves
    only for a proof made before its compromisedSince (`at`, the proof's
    `created`); without `at` it cannot be told apart from a forger's.
    """
    if registry_key:
        registry = verify_registry(registry_doc, [PublicKey.parse(registry_key)])
    else:
        check_registry_shape(registry_doc)
        registry = Registry(registry_doc)

    def resolve(method: str, at: datetime | None = None) -> PublicKey | None:
        parsed = parse_node_method(method)
        if parsed is None:
            return None
        node_id, kid = parsed
        node = registry.node(node_id)
        if node is None or node["status"] == "removed":
            return None
        entry = registry._key_entry(node_id, kid)
        if entry is None:
            return None
        if entry["status"] == "revoked" and (at is None or not key_valid_at(entry, at.astimezone(timezone.utc))):
            return None
        return PublicKey.from_jwk(public_jwk(entry))

    return resolve


# --- join requests


NODE_FIELDS = ("id", "name", "country", "region", "baseUrl", "licence")


def build_join_request(config: dict, key: SigningKey, *, key_valid_from: str | None = None,
                       now: datetime | None = None) -> dict:
    """A signed join request from a node's settings and its current key."""
    created = format_time(_now(now))
    request = {"type": JOIN_REQUEST_TYPE, **{name: config.get(name) for name in NODE_FIELDS},
               "publicKey": key.public.jwk(), "keyValidFrom": key_valid_from or created,
               "nonce": secrets.token_urlsafe(16), "created": created}
    if not request["baseUrl"]:
        raise JoinRequestError(f"node {request['id']} has no baseUrl; set the public URL the node is served at "
                               "before asking to join (aggregators harvest from it)")
    check_join_shape(request, signed=False)
    return proofs.sign(request, key, node_method(request["id"], key.kid), created=created)


def make_join_request(node_dir) -> dict:
    """The join request for the node in `node_dir`, signed with its current key."""
    from biofed.node.store import Node

    node = Node.open(node_dir)
    try:
        key = node.signing_key
        config = node.config.to_dict() if hasattr(node.config, "to_dict") else dict(vars(node.config))
        valid_from = None
        for entry in node.descriptor().get("keys", {}).get("keys", []):
            if entry.get("kid") == key.kid:
                valid_from = entry.get("validFrom")
        return build_join_request(config, key, key_valid_from=valid_from)
    finally:
        if hasattr(node, "close"):
            node.close()


def check_join_shape(req, *, signed: bool = True) -> None:
    def bad(field_name: str, message: str) -> JoinRequestError:
        return JoinRequestError(f"join request /{field_name}: {message}")

    if not isinstance(req, dict):
        raise JoinRequestError("join request is not a JSON object")
    try:
        jsonprofile.check(req)
    except jsonprofile.ProfileError as exc:
        raise JoinRequestError(f"join request is outside the strict JSON profile: {exc}") from None
    if req.get("type") != JOIN_REQUEST_TYPE:
        raise bad("type", f"{req.get('type')!r} is not {JOIN_REQUEST_TYPE!r}")
    allowed = {"type", *NODE_FIELDS, "publicKey", "keyValidFrom", "nonce", "created", "proof"}
    unknown = sorted(set(req) - allowed)
    if unknown:
        raise bad(unknown[0], "unknown field")
    entry = {name: req.get(name) for name in NODE_FIELDS}
    try:
        check_node_entry({**entry, "status": "active", "controlVerified": False, "keys": []}, "")
    except RegistryError as exc:
        raise JoinRequestError(str(exc).replace("registry ", "join request ", 1)) from None
    try:
        PublicKey.from_jwk(req.get("publicKey"))
    except KeyError_ as exc:
        raise bad("publicKey", str(exc)) from None
    for name in ("keyValidFrom", "created"):
        try:
            parse_time(req.get(name), name)
        except BiofedError as exc:
            raise bad(name, str(exc)) from None
    if not isinstance(req.get("nonce"), str) or len(req["nonce"]) < 16:
        raise bad("nonce", "must be a random string of at least 16 characters")
    if signed and not isinstance(req.get("proof"), dict):
        raise bad("proof", "the join request is not signed")


def check_join_request(req, *, now: datetime | None = None) -> dict:
    """Check shape and signature (by the key the request carries); return the request."""
    check_join_shape(req)
    key = PublicKey.from_jwk(req["publicKey"])
    expected = node_method(req["id"], key.kid)
    method = req["proof"].get("verificationMethod")
    if method != expected:
        raise JoinRequestError(f"join request proof verificationMethod {method!r} is not {expected!r} "
                               "(the request must be signed with the key it carries)")
    try:
        proofs.verify(req, key)
    except proofs.ProofError as exc:
        raise JoinRequestError(f"join request for {req['id']}: signature does not hold: {exc} ({exc.reason})") from None
    if parse_time(req["created"]) > _now(now) + CLOCK_SKEW:
        raise JoinRequestError(f"join request for {req['id']} was created in the future ({req['created']})")
    return req


def node_entry(req: dict, *, control_verified: bool, key_valid_from: str | None = None) -> dict:
    """The registry entry for a node admitted with the (checked) join request `req`."""
    key = PublicKey.from_jwk(req["publicKey"])
    valid_from = normalise_time(key_valid_from or req["keyValidFrom"])
    return {**{name: req.get(name) for name in NODE_FIELDS}, "status": "active",
            "controlVerified": control_verified, "keys": [key_entry(key, valid_from=valid_from)]}
