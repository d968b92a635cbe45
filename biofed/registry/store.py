"""A registry directory and every change the network operator makes to it.

    DIR/config.json          name, validity, the current registry key id
    DIR/keys/<kid>.pem       the registry's private key(s), mode 0600
    DIR/registry.json        the current signed registry document
    DIR/history/<n>.json     every version ever signed, never overwritten

A change is: read the current document, change a copy, sign it as the next
version, check the result verifies, write history/<n>.json (exclusively),
then replace registry.json (temp file + fsync + rename). Any error before
the last step leaves registry.json as it was; a crash between the two steps
leaves a history file that the next change refuses to overwrite (it says so).
A lock file serialises operators working on the same directory.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from biofed.errors import BiofedError
from biofed.files import fsync_dir, write_atomic, write_temp
from biofed.protocol import registry as regdoc
from biofed.protocol.fetch import DEFAULT_TIMEOUT, FetchError, fetch_descriptor, fetch_record
from biofed.protocol.ids import node_method
from biofed.protocol.join import check_join_request, node_entry
from biofed.protocol.registry import MAX_REGISTRY_BYTES, Registry, RegistryError
from biofed.protocol.times import format_time, normalise_time, parse_time
from biofed.protocol.validity import KeyValidity, public_jwk, retired_until
from biofed.trust import jsonprofile, proofs
from biofed.trust.keys import KeyFormatError, PublicKey, SigningKey

CONFIG_FILE = "config.json"
REGISTRY_FILE = "registry.json"
HISTORY_DIR = "history"
KEYS_DIR = "keys"
LOCK_FILE = ".lock"


def write_new(path: Path, data: bytes) -> None:
    """Create `path` with `data`, atomically, refusing to overwrite an existing file."""
    tmp = write_temp(path, data)
    try:
        os.link(tmp, path)  # fails if path exists: history is never rewritten
    except FileExistsError:
        raise BiofedError(f"{path} already exists; history is never overwritten (was a change interrupted? "
                          f"compare it with {REGISTRY_FILE})") from None
    finally:
        tmp.unlink()
    fsync_dir(path.parent)


def dumps(document: dict) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


class RegistryStore:
    """An open registry directory."""

    def __init__(self, directory: Path, config: dict):
        self.directory = directory
        self.config = config

    # --- opening

    @classmethod
    def init(cls, directory, *, name: str, validity_days: int = 7) -> "RegistryStore":
        """Create a registry directory: a fresh key and version 1 with no nodes."""
        directory = Path(directory)
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            raise BiofedError(f"{directory}: exists and is not an empty directory; refusing to overwrite a registry")
        if not isinstance(validity_days, int) or validity_days < 1:
            raise BiofedError(f"validity {validity_days!r} must be a whole number of days >= 1")
        key = SigningKey.generate()
        document = regdoc.new_registry(name, key, validity=timedelta(days=validity_days))
        directory.mkdir(parents=True, exist_ok=True)
        (directory / KEYS_DIR).mkdir(mode=0o700)
        (directory / HISTORY_DIR).mkdir()
        key.save(directory / KEYS_DIR / f"{key.kid}.pem")
        config = {"name": name, "validityDays": validity_days, "keyId": key.kid}
        write_new(directory / HISTORY_DIR / f"{document['version']}.json", dumps(document))
        write_atomic(directory / REGISTRY_FILE, dumps(document))
        write_atomic(directory / CONFIG_FILE, dumps(config))  # last: a directory with config.json is complete
        return cls(directory, config)

    @classmethod
    def open(cls, directory) -> "RegistryStore":
        directory = Path(directory)
        path = directory / CONFIG_FILE
        if not path.is_file():
            raise BiofedError(f"{directory}: not a registry directory ({CONFIG_FILE} missing; "
                              "run 'biofed registry init' first)")
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise BiofedError(f"{path}: not valid JSON: {exc}") from None
        for name in ("name", "validityDays", "keyId"):
            if name not in config:
                raise BiofedError(f"{path}: setting {name!r} is missing")
        return cls(directory, config)

    # --- reading

    @property
    def name(self) -> str:
        return self.config["name"]

    @property
    def validity(self) -> timedelta:
        return timedelta(days=self.config["validityDays"])

    @property
    def signing_key(self) -> SigningKey:
        key = SigningKey.load(self.directory / KEYS_DIR / f"{self.config['keyId']}.pem")
        if key.kid != self.config["keyId"]:
            raise BiofedError(f"{self.directory / KEYS_DIR}: {self.config['keyId']}.pem holds key {key.kid}")
        return key

    def public_keys(self) -> list[PublicKey]:
        return [PublicKey.from_jwk(jwk) for jwk in self.document()["registryKeys"]]

    def document(self) -> dict:
        """The current signed document, as stored (not checked)."""
        return read_document(self.directory / REGISTRY_FILE)

    def registry(self) -> Registry:
        """The current document, checked: shape and signature (an expired one is still read)."""
        document = self.document()
        key = self.signing_key.public
        try:
            return regdoc.verify_registry(document, [key], now=parse_time(document.get("issued", "")))
        except BiofedError as exc:
            raise BiofedError(f"{self.directory / REGISTRY_FILE}: {exc}") from None

    def versions(self) -> list[int]:
        history = self.directory / HISTORY_DIR
        return sorted(int(p.stem) for p in history.glob("*.json") if p.stem.isdigit())

    def version_document(self, version: int) -> dict:
        path = self.directory / HISTORY_DIR / f"{int(version)}.json"
        if not path.is_file():
            raise BiofedError(f"registry {self.name} has no version {version}")
        return read_document(path)

    # --- changing

    @contextmanager
    def _locked(self):
        with open(self.directory / LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def change(self, mutate: Callable[[dict], None]) -> dict:
        """Sign the next version with `mutate` applied to a copy of the current one; return it."""
        with self._locked():
            current = self.registry()
            draft = copy.deepcopy(current.document)
            mutate(draft)
            key = self.signing_key
            signed = regdoc.sign_registry(draft, key, validity=self.validity)
            regdoc.verify_registry(signed, [key.public], last_version=current.version)  # never publish a bad one
            data = dumps(signed)
            write_new(self.directory / HISTORY_DIR / f"{signed['version']}.json", data)
            write_atomic(self.directory / REGISTRY_FILE, data)
            return signed

    def sign(self) -> dict:
        """Re-sign: a new version with a fresh expiry and nothing else changed."""
        return self.change(lambda doc: None)

    def _node(self, doc: dict, node_id: str, *, allow_removed: bool = False) -> dict:
        node = next((n for n in doc["nodes"] if n["id"] == node_id), None)
        if node is None:
            raise BiofedError(f"node {node_id!r} is not in registry {self.name}")
        if node["status"] == "removed" and not allow_removed:
            raise BiofedError(f"node {node_id!r} was removed from registry {self.name}; removed ids are never reused")
        return node

    def add_node(self, request: dict, *, offline: bool = False, timeout: float = DEFAULT_TIMEOUT,
                 now: datetime | None = None) -> dict:
        """Admit a node with its signed join request; return its registry entry.

        Online (the default) the node's descriptor at its baseUrl must show the
        same id and the same key as active: whoever runs that URL holds the key
        (proof of control). Offline the entry says `controlVerified: false`.
        """
        request = check_join_request(request, now=now)
        node_id = request["id"]
        self._refuse_taken(self.document(), node_id)
        key_valid_from = None
        if not offline:
            key_valid_from = check_control(request, timeout=timeout)
        entry = node_entry(request, control_verified=not offline, key_valid_from=key_valid_from)

        def admit(doc: dict) -> None:
            self._refuse_taken(doc, node_id)  # again, under the lock
            doc["nodes"].append(entry)
            doc["nodes"].sort(key=lambda n: n["id"])

        self.change(admit)
        return entry

    def _refuse_taken(self, doc: dict, node_id: str) -> None:
        existing = next((n for n in doc["nodes"] if n["id"] == node_id), None)
        if existing is not None:
            state = "was removed (ids are never reused)" if existing["status"] == "removed" else "is already taken"
            raise BiofedError(f"node id {node_id!r} {state} in registry {self.name}; "
                              "rotate keys with 'biofed registry rotate-node-key' instead of adding again")

    def set_status(self, node_id: str, status: str) -> dict:
        """suspend (aggregators stop harvesting), activate again, or remove for good."""
        if status not in regdoc.NODE_STATUSES:
            raise BiofedError(f"status {status!r} is not one of {', '.join(regdoc.NODE_STATUSES)}")

        def update(doc: dict) -> None:
            node = self._node(doc, node_id)
            if node["status"] == status:
                raise BiofedError(f"node {node_id!r} is already {status}")
            node["status"] = status

        return self.change(update)

    def rotate_node_key(self, node_id: str, *, new_key: PublicKey | None = None, statement: dict | None = None,
                        from_node: str | None = None, offline: bool = False, at: str | None = None,
                        timeout: float = DEFAULT_TIMEOUT) -> dict:
        """Pin the node's new key and retire the old one.

        Best evidence is the node's KeyRotation statement (protocol.md §3),
        signed by the old key: given as `statement`, or fetched from the node
        (`from_node`, default its baseUrl). `offline` with `new_key` pins a key
        the operator received out of band; the old active key(s) retire `at` (default now).
        The rotation time T is the statement's proof.created (or `at`): the old key
        gets validUntil T + 1 s, the new key validFrom T (protocol.md §7).
        """
        node = self._node(self.document(), node_id)
        if statement is None and not offline:
            url = from_node or node["baseUrl"]
            try:
                descriptor = fetch_descriptor(url, timeout=timeout)
            except FetchError as exc:
                raise BiofedError(f"{exc}; give the rotation statement with --statement, "
                                  "or --offline --new-key KEY") from None
            if descriptor.get("id") != node_id:
                raise BiofedError(f"{url} serves node {descriptor.get('id')!r}, not {node_id!r}")
            served = _active_key(descriptor, url)
            if new_key is not None and served.kid != new_key.kid:
                raise BiofedError(f"{url} signs with key {served.kid}, not with the given new key {new_key.kid}")
            new_key = served
            if any(k["kid"] == new_key.kid for k in node["keys"]):
                raise BiofedError(f"key {new_key.kid} of node {node_id!r} is already pinned; nothing to rotate")
            try:
                statement = fetch_record(url, f"{node_id}/key/{new_key.kid}", timeout=timeout)
            except FetchError as exc:
                raise BiofedError(f"no KeyRotation statement for key {new_key.kid}: {exc}") from None
        if statement is not None:
            new_key, previous_kid, at = check_rotation_statement(statement, node, new_key)
            retire = {previous_kid}
        else:
            if new_key is None:
                raise BiofedError("--offline needs --new-key (the node's new public key)")
            at = normalise_time(at, "--at") if at else format_time(datetime.now(timezone.utc))
            retire = {k["kid"] for k in node["keys"] if k["status"] == "active"}
        # protocol.md §7: the old key stays valid through the second of the rotation
        # (it signs the statement then); the new one is valid from the rotation time.
        until = format_time(retired_until(parse_time(at)))

        def update(doc: dict) -> None:
            entry = self._node(doc, node_id)
            if any(k["kid"] == new_key.kid for k in entry["keys"]):
                raise BiofedError(f"key {new_key.kid} of node {node_id!r} is already pinned; nothing to rotate")
            for key in entry["keys"]:
                if key["kid"] in retire and key["status"] == "active":
                    key["status"], key["validUntil"] = "retired", until
            entry["keys"].append(regdoc.key_entry(new_key, valid_from=at))

        return self.change(update)

    def revoke_node_key(self, node_id: str, kid: str, compromised_since: str) -> dict:
        """Revoke a pinned key: signatures made with it from `compromised_since` on are refused."""
        since = normalise_time(compromised_since, "--compromised-since")

        def update(doc: dict) -> None:
            entry = self._node(doc, node_id, allow_removed=True)
            key = next((k for k in entry["keys"] if k["kid"] == kid), None)
            if key is None:
                pinned = ", ".join(k["kid"] for k in entry["keys"])
                raise BiofedError(f"key {kid!r} is not pinned for node {node_id!r} (pinned: {pinned})")
            if key["status"] == "revoked":
                raise BiofedError(f"key {kid!r} of node {node_id!r} is already revoked "
                                  f"(compromised since {key['compromisedSince']})")
            key["status"], key["compromisedSince"] = "revoked", since
            key["validUntil"] = key["validUntil"] or format_time(datetime.now(timezone.utc))

        return self.change(update)


def read_document(path: Path) -> dict:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BiofedError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        document = jsonprofile.loads(data, max_bytes=MAX_REGISTRY_BYTES)
    except jsonprofile.ProfileError as exc:
        raise BiofedError(f"{path}: {exc}") from None
    if not isinstance(document, dict):
        raise BiofedError(f"{path}: not a JSON object")
    return document


def _active_key(descriptor: dict, where: str) -> PublicKey:
    keys = descriptor.get("keys")
    entries = keys.get("keys") if isinstance(keys, dict) else None
    if not isinstance(entries, list):
        raise BiofedError(f"{where}: the node descriptor has no 'keys' JWKS")
    active = [e for e in entries if isinstance(e, dict) and e.get("status", "active") == "active"]
    if len(active) != 1:
        raise BiofedError(f"{where}: the node descriptor lists {len(active)} active keys, expected 1")
    try:
        return PublicKey.from_jwk(public_jwk(active[0]))
    except KeyFormatError as exc:
        raise BiofedError(f"{where}: the node descriptor's active key: {exc}") from None


def check_control(request: dict, *, timeout: float = DEFAULT_TIMEOUT) -> str | None:
    """Proof of control: the node at the request's baseUrl serves its id and key.

    Returns the key's validFrom as the node states it (or None).
    """
    base_url = request["baseUrl"]
    try:
        descriptor = fetch_descriptor(base_url, timeout=timeout)
    except FetchError as exc:
        raise BiofedError(f"cannot check that node {request['id']!r} controls {base_url}: {exc}. "
                          "If the node is not online yet, add it with --offline "
                          "(recorded as controlVerified: false)") from None
    where = f"{base_url}/.well-known/biofed-node.json"
    if descriptor.get("id") != request["id"]:
        raise BiofedError(f"{where} serves node id {descriptor.get('id')!r}, but the join request is for "
                          f"{request['id']!r}")
    served_url = descriptor.get("baseUrl")
    if served_url and served_url.rstrip("/") != base_url.rstrip("/"):
        raise BiofedError(f"{where} says its baseUrl is {served_url!r}, not {base_url!r} as in the join request")
    key = _active_key(descriptor, where)
    wanted = PublicKey.from_jwk(request["publicKey"])
    if key.kid != wanted.kid:
        raise BiofedError(f"{where} serves key {key.kid}, but the join request is signed with key {wanted.kid}: "
                          "the request does not come from the node at that address")
    for entry in descriptor["keys"]["keys"]:
        if isinstance(entry, dict) and entry.get("kid") == key.kid and entry.get("validFrom"):
            try:
                return normalise_time(entry["validFrom"], "validFrom")
            except BiofedError:
                return None
    return None


def check_rotation_statement(statement: dict, node: dict, new_key: PublicKey | None) -> tuple[PublicKey, str, str]:
    """Verify a node's KeyRotation statement against the keys pinned for it.

    Returns (new key, previous kid, rotation time).
    """
    node_id = node["id"]
    if not isinstance(statement, dict) or statement.get("type") != "KeyRotation":
        raise BiofedError(f"the rotation statement is not a KeyRotation (type {statement.get('type')!r})"
                          if isinstance(statement, dict) else "the rotation statement is not a JSON object")
    if statement.get("node") != node_id:
        raise BiofedError(f"the KeyRotation statement is for node {statement.get('node')!r}, not {node_id!r}")
    try:
        key = PublicKey.from_jwk(statement.get("newKey"))
    except KeyFormatError as exc:
        raise BiofedError(f"the KeyRotation statement's newKey: {exc}") from None
    if new_key is not None and key.kid != new_key.kid:
        raise BiofedError(f"the KeyRotation statement names key {key.kid}, not the given new key {new_key.kid}")
    previous = statement.get("previousKid")
    pinned = next((k for k in node["keys"] if k["kid"] == previous), None)
    if pinned is None or pinned["status"] != "active":
        raise BiofedError(f"the KeyRotation statement rotates from key {previous!r}, which is not an active key "
                          f"pinned for node {node_id!r}")
    expected = node_method(node_id, previous)
    method = (statement.get("proof") or {}).get("verificationMethod") if isinstance(statement.get("proof"), dict) else None
    if method != expected:
        raise BiofedError(f"the KeyRotation statement must be signed by the old key ({expected}), not {method!r}")
    try:
        proofs.verify(statement, PublicKey.from_jwk(public_jwk(pinned)))
    except proofs.ProofError as exc:
        raise BiofedError(f"the KeyRotation statement's signature does not hold: {exc} ({exc.reason})") from None
    # The rotation time is when the old key signed the statement; it must be valid then.
    at = normalise_time(statement["proof"].get("created"), "the KeyRotation statement's proof.created")
    refusal = KeyValidity.of(pinned).refusal(parse_time(at))
    if refusal:
        raise BiofedError(f"the KeyRotation statement does not hold: {refusal[1]} ({refusal[0]})")
    return key, previous, at


__all__ = ["RegistryStore", "RegistryError", "check_control", "check_rotation_statement", "write_atomic", "write_new"]
