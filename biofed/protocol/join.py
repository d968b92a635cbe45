"""Join requests (docs/protocol.md §7): what a node sends the registry operator.

A join request carries the node's identity and public key, signed with that
key, so that the request itself proves the sender holds the private key.
Pure functions, no I/O: the node builds one from its settings
(`biofed.node.join`), the registry checks it and makes the node's entry.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from biofed.errors import BiofedError
from biofed.protocol.ids import node_method
from biofed.protocol.registry import RegistryError, check_node_entry, key_entry
from biofed.protocol.times import CLOCK_SKEW, format_time, normalise_time, now as _now, parse_time
from biofed.trust import jsonprofile, proofs
from biofed.trust.keys import KeyFormatError, PublicKey, SigningKey

JOIN_REQUEST_TYPE = "BioFedJoinRequest"


class JoinRequestError(BiofedError):
    """A join request is malformed or its signature does not hold."""


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
    except KeyFormatError as exc:
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
