"""Per-page record checks that need no database: the CPU-bound part of a harvest.

`check_page` parses one raw log page under the strict profile, canonicalises
every record into its leaf bytes and hashes it, and verifies each record's
proof, key (valid when the proof was made: biofed.protocol.validity), time
(not after the node's signed checkpoint), namespace and schema. It is a pure function of bytes and a small
key table, so the harvester can run it in worker processes (one per CPU by default) and
only pass bytes in and verdicts out.

Checks that need the database (version higher than the one held) are done by
the harvester when it commits the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from biofed.errors import BiofedError, NodeRefused
from biofed.protocol.ids import node_method_prefix
from biofed.protocol.times import CLOCK_SKEW, format_time, time_or_none
from biofed.protocol.types import CONTENT_TYPES, RECORD_TYPES
from biofed.protocol.validity import KeyValidity
from biofed.schema import validate_record
from biofed.trust import jsonprofile, proofs
from biofed.trust.canonical import canonicalize, canonicalize_certified
from biofed.trust.keys import PublicKey
from biofed.trust.merkle import leaf_hash

# A record sits 3 levels deep in a log page (page -> "entries" -> entry -> "record"): with
# this limit a page parses exactly when each of its records is within the profile's depth.
PAGE_DEPTH = jsonprofile.MAX_DEPTH + 3


class PageError(NodeRefused):
    """The page itself is unusable (malformed, out of sequence): the node is in error."""


@dataclass(frozen=True)
class NodeKey:
    """A key the registry pins for a node, with its validity (RFC 3339 strings or None)."""

    raw: bytes
    kid: str
    status: str = "active"
    valid_from: str | None = None
    valid_until: str | None = None
    compromised_since: str | None = None

    def validity(self) -> KeyValidity | None:
        """The key's validity, parsed; None when a time does not parse (the key then validates nothing)."""
        try:
            return KeyValidity.of({"kid": self.kid, "status": self.status, "validFrom": self.valid_from,
                                   "validUntil": self.valid_until, "compromisedSince": self.compromised_since})
        except BiofedError:
            return None


@dataclass
class Entry:
    seq: int
    leaf: bytes  # canonical bytes of the record, as published
    hash: bytes
    record_id: str | None = None
    type: str | None = None
    version: int | None = None
    date_modified: str | None = None
    reason: str | None = None  # None: every check passed
    message: str | None = None
    # The fields the harvester passes on: the full record for content types.
    record: dict | None = field(default=None, repr=False)


def _schema_issues(record: dict) -> list:
    # check_page parsed the record under the strict profile (PAGE_DEPTH): no second profile walk.
    return validate_record(record, signed=True, in_profile=True)


def check_page(node_id: str, keys: list[NodeKey], page: bytes, after: int, max_page_bytes: int,
               max_record_bytes: int = jsonprofile.MAX_RECORD_BYTES, keep_records: bool = True, *,
               checkpoint_time: datetime) -> tuple[int, list[Entry]]:
    """Return (tree size the page claims, entries) or raise PageError.

    `checkpoint_time` is the timestamp of the node's verified checkpoint: a
    record whose proof claims a later time (beyond CLOCK_SKEW) is refused as
    `future-created`, so that it cannot stand in for versions still to come.

    keep_records=False leaves Entry.record empty (worker processes: only the
    leaf bytes travel back; the record is exactly orjson.loads(entry.leaf)).
    """
    try:
        # The fast path accepts exactly what jsonprofile.loads accepts (see there).
        doc, certified = jsonprofile.parse(page, max_bytes=max_page_bytes, max_depth=PAGE_DEPTH)
    except jsonprofile.ProfileError as exc:
        raise PageError("malformed", f"log page after {after} is not strict-profile JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
        raise PageError("malformed", f"log page after {after} has no 'entries' list")
    if doc.get("node") not in (None, node_id):
        raise PageError("malformed", f"log page after {after} is for node {doc.get('node')!r}")
    tree_size = doc.get("treeSize")
    if type(tree_size) is not int:
        raise PageError("malformed", f"log page after {after} has no integer 'treeSize'")
    # Once per key and page: the PublicKey (it caches the names every proof is matched against)
    # and the key's validity times.
    by_kid = {key.kid: _KeyUse(PublicKey(key.raw), key.validity()) for key in keys}
    latest = checkpoint_time + CLOCK_SKEW
    entries = []
    expected = after + 1
    for item in doc["entries"]:
        if not isinstance(item, dict) or item.get("seq") != expected or not isinstance(item.get("record"), dict):
            got = item.get("seq") if isinstance(item, dict) else item
            raise PageError("sequence", f"log page after {after}: expected entry {expected}, got {got!r}")
        record = item["record"]
        # A certified page holds only values whose RFC 8785 form is orjson's sorted output.
        leaf = canonicalize_certified(record) if certified else canonicalize(record)
        entry = Entry(seq=expected, leaf=leaf, hash=leaf_hash(leaf))
        _check_record(node_id, by_kid, latest, record, entry, max_record_bytes, certified)
        if not keep_records:
            entry.record = None
        entries.append(entry)
        expected += 1
    return tree_size, entries


def _reject(entry: Entry, reason: str, message: str) -> None:
    entry.reason, entry.message = reason, message


@dataclass(frozen=True)
class _KeyUse:
    public: PublicKey
    validity: KeyValidity | None  # None: a validity time in the registry does not parse


def _check_record(node_id: str, by_kid: dict[str, _KeyUse], latest: datetime, record: dict, entry: Entry,
                  max_record_bytes: int, certified: bool = False) -> None:
    entry.record_id = record_id = record.get("id") if isinstance(record.get("id"), str) else None
    entry.type = kind = record.get("type") if isinstance(record.get("type"), str) else None
    version = record.get("version")
    entry.version = version if type(version) is int else None
    entry.date_modified = record.get("dateModified") if isinstance(record.get("dateModified"), str) else None
    if len(entry.leaf) > max_record_bytes:
        return _reject(entry, "profile", f"record is {len(entry.leaf)} bytes, larger than {max_record_bytes}")
    if record_id is None or entry.version is None or entry.version < 1 or kind is None:
        return _reject(entry, "schema", "record needs a string 'id', a 'type' and an integer 'version' >= 1")
    if not record_id.startswith(node_id + "/"):
        return _reject(entry, "namespace", f"id {record_id!r} is outside the namespace of node {node_id!r}")
    if kind not in RECORD_TYPES:
        return _reject(entry, "schema", f"unknown record type {kind!r}")
    # The key: resolved from the proof's verificationMethod among the keys the
    # registry pins for THIS node; any other key (another node's) is wrong-key.
    proof = record.get("proof")
    method = proof.get("verificationMethod") if isinstance(proof, dict) else None
    if not isinstance(method, str):
        return _reject(entry, "bad-signature", "record has no proof with a verificationMethod")
    prefix = node_method_prefix(node_id)
    kid = method[len(prefix):] if method.startswith(prefix) else None
    use = by_kid.get(kid) if kid else None
    if use is None:
        return _reject(entry, "wrong-key", f"proof names {method!r}, not a key the registry pins for node {node_id!r}")
    try:
        proofs.verify(record, use.public, certified=certified)
    except proofs.ProofError as exc:
        code = "bad-signature" if exc.reason in ("bad-signature", "malformed-proof", "missing-proof") else exc.reason
        return _reject(entry, code, str(exc))
    created = time_or_none(proof.get("created"))
    if created is None:
        return _reject(entry, "bad-signature", "proof.created is not an RFC 3339 time with a zone")
    if use.validity is None:
        return _reject(entry, "key-not-valid", f"the registry's validity times for key {kid} are not RFC 3339 times")
    refusal = use.validity.refusal(created)
    if refusal:
        return _reject(entry, *refusal)
    if created > latest:
        return _reject(entry, "future-created", f"signed at {proof['created']}, in the future: later than the "
                                                f"node's checkpoint timestamp + {int(CLOCK_SKEW.total_seconds())} s "
                                                f"({format_time(latest)})")
    if kind in CONTENT_TYPES:
        issues = _schema_issues(record)
        if issues:
            first = issues[0]
            more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
            return _reject(entry, "schema", f"{getattr(first, 'pointer', '') or '/'}: {getattr(first, 'message', first)}{more}")
        entry.record = record
    elif kind == "KeyRotation":
        if record.get("node") != node_id or not isinstance(record.get("newKey"), dict):
            return _reject(entry, "statement", "KeyRotation needs 'node' (this node) and a 'newKey' JWK")
        if record.get("previousKid") != kid:
            return _reject(entry, "statement", "KeyRotation must be signed by the key it replaces (previousKid)")
        try:
            PublicKey.from_jwk(record["newKey"])
        except ValueError as exc:
            return _reject(entry, "statement", f"KeyRotation newKey: {exc}")
    elif kind == "KeyRevocation":
        if record.get("node") != node_id or not isinstance(record.get("kid"), str) or time_or_none(record.get("compromisedSince")) is None:
            return _reject(entry, "statement", "KeyRevocation needs 'node', 'kid' and an RFC 3339 'compromisedSince'")
    return None
