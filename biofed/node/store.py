"""The node's store: records, the append-only log, checkpoints, keys, tokens.

Every write is one `BEGIN IMMEDIATE` transaction holding the record rows,
their log entries, the new compact range of the Merkle tree and the
checkpoint that signs it; a crash leaves either all of it or none. The
compact range (O(log n) hashes) is kept in the database, so appending and
signing a checkpoint never reads the whole log.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import orjson

from biofed.errors import BiofedError
from biofed.node import db
from biofed.node.config import CONFIG_FILE, DATABASE_FILE, KEYS_DIR, NodeConfig
from biofed.node.records import Issue, content_hash, content_of, namespaced_id
from biofed.protocol.ids import node_method
from biofed.protocol.times import format_time, normalise_time, parse_time, utc_now
from biofed.protocol.types import CONTENT_TYPES, KEY_STATEMENT_TYPES
from biofed.protocol.validity import retired_until
from biofed.trust import merkle
from biofed.trust.canonical import canonicalize
from biofed.trust.checkpoint import SIGNATURE_PREFIX, Checkpoint, verifier_key
from biofed.trust.jsonprofile import MAX_RECORD_BYTES, ProfileError, check
from biofed.trust.keys import PublicKey, SigningKey
from biofed.trust.proofs import sign

SCOPES = ("write", "delete", "admin")
TOKEN_PREFIX = "bfn_"


# --- errors: each knows its HTTP status so the API and the CLI say the same thing


class NodeError(BiofedError):
    status = 400
    code = "bad-request"

    def __init__(self, message: str, errors: Sequence = ()):
        super().__init__(message)
        self.errors = [e.as_dict() if not isinstance(e, dict) else e for e in errors]


class RecordInvalid(NodeError):
    status, code = 422, "invalid-record"


class RecordNotFound(NodeError):
    status, code = 404, "not-found"


class RecordGone(NodeError):
    status, code = 410, "gone"


class RecordExists(NodeError):
    status, code = 409, "exists"


class VersionConflict(NodeError):
    status, code = 412, "version-conflict"


@dataclass
class Rejected:
    index: int  # 0-based position in the input
    source: str  # where it came from, e.g. "members.csv row 12"
    id: str | None
    errors: list[dict]

    def as_dict(self) -> dict:
        return {"source": self.source, "id": self.id, "errors": self.errors}


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    tree_size: int = 0
    restored: int = 0  # deleted records published again (counted apart from updates, so it is never silent)
    deleted: int = 0  # tombstones written (put_many's `tombstones`)
    changes: list[tuple[str, str, str]] = field(default_factory=list)  # (action, record id, source), input order

    @property
    def written(self) -> int:
        return self.created + self.updated + self.restored + self.deleted

    def as_dict(self) -> dict:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "restored": self.restored, "deleted": self.deleted, "rejected": len(self.rejected),
                "treeSize": self.tree_size}


class ImportRejected(NodeError):
    """All-or-nothing import refused: nothing was written."""

    status, code = 422, "invalid-records"

    def __init__(self, result: ImportResult):
        first = result.rejected[0]
        where = f"{first.source}" + (f" ({first.id})" if first.id else "")
        detail = first.errors[0] if first.errors else {"pointer": "", "message": "invalid"}
        super().__init__(
            f"{len(result.rejected)} invalid record(s), nothing imported; first: {where}: "
            f"{detail['pointer'] or '/'}: {detail['message']}"
        )
        self.result = result


class _DryRun(Exception):
    def __init__(self, result: ImportResult):
        self.result = result


@dataclass(frozen=True)
class StoredRecord:
    id: str
    type: str
    version: int
    deleted: bool
    signed: bytes
    seq: int


@dataclass(frozen=True)
class Token:
    name: str
    scopes: tuple[str, ...]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _validate(record: dict) -> list:
    from biofed.schema import validate_record

    return validate_record(record, signed=False)


def init_node(directory, *, node_id: str, name: str, country: str, region: str | None = None,
              base_url: str | None = None, licence: str = "CC-BY-4.0",
              checkpoint_interval: int | None = None) -> tuple["Node", str]:
    """Create a node directory with its first key and an admin token (returned once, stored hashed)."""
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BiofedError(f"{directory}: exists and is not an empty directory; refusing to overwrite a node")
    config = NodeConfig(id=node_id, name=name, country=country, region=region, baseUrl=base_url, licence=licence)
    if checkpoint_interval is not None:
        config.checkpointInterval = checkpoint_interval
        config.__post_init__()
    directory.mkdir(parents=True, exist_ok=True)
    keys_dir = directory / KEYS_DIR
    keys_dir.mkdir(mode=0o700)
    key = SigningKey.generate()
    key.save(keys_dir / f"{key.kid}.pem")
    conn = db.connect(directory / DATABASE_FILE)
    try:
        db.create(conn)  # executescript: its own transaction
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO keys (kid, jwk, status, valid_from) VALUES (?, ?, 'active', ?)",
                     (key.kid, orjson.dumps(key.public.jwk()).decode(), config.created))
        conn.execute("INSERT INTO tree (id, size, compact_range) VALUES (1, 0, ?)", (b"",))
        conn.execute("COMMIT")
    finally:
        conn.close()
    config.save(directory)  # last: a directory with node.json is a complete node
    node = Node.open(directory)
    node.resign_checkpoint()
    token = node.create_token("admin", ["admin"])
    return node, token


class Node:
    """An open node directory. Thread-safe: each thread gets its own connection."""

    def __init__(self, directory: Path, config: NodeConfig):
        self.directory = directory
        self.config = config
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._key: SigningKey | None = None
        self._proof_tree = merkle.MerkleTree()  # every subtree hash, for proofs; the log is append-only

    @classmethod
    def open(cls, directory) -> "Node":
        directory = Path(directory)
        config = NodeConfig.load(directory)
        if not (directory / DATABASE_FILE).is_file():
            raise BiofedError(f"{directory}: {DATABASE_FILE} is missing")
        node = cls(directory, config)
        db.migrate(node.conn)
        node._current_key(node.conn)
        return node

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = db.connect(self.directory / DATABASE_FILE)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextmanager
    def _write(self):
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def _read(self):
        # One read transaction: a consistent view even while another process writes.
        conn = self.conn
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    # --- keys

    def verification_method(self, kid: str) -> str:
        return node_method(self.id, kid)

    def _current_key(self, conn) -> SigningKey:
        # Read inside the caller's transaction: another process may have rotated.
        row = conn.execute("SELECT kid FROM keys WHERE status = 'active'").fetchone()
        if row is None:
            raise BiofedError(f"{self.directory}: node has no active key")
        if self._key is None or self._key.kid != row[0]:
            key = SigningKey.load(self.directory / KEYS_DIR / f"{row[0]}.pem")
            if key.kid != row[0]:
                raise BiofedError(f"{self.directory / KEYS_DIR}: key file {row[0]}.pem holds key {key.kid}")
            self._key = key
        return self._key

    @property
    def signing_key(self) -> SigningKey:
        return self._current_key(self.conn)

    def keys(self) -> list[dict]:
        rows = self.conn.execute(
            "SELECT jwk, status, valid_from, valid_until, compromised_since FROM keys ORDER BY valid_from, kid"
        ).fetchall()
        return [{**orjson.loads(jwk), "status": status, "validFrom": valid_from, "validUntil": valid_until,
                 "compromisedSince": compromised} for jwk, status, valid_from, valid_until, compromised in rows]

    def rotate_key(self, now: str | None = None) -> str:
        """New key; a KeyRotation statement signed by the old key goes into the log.

        At rotation time T (whole seconds) the old key signs the statement at T and
        stays valid until T + 1 s; the new key is valid from T (protocol.md §7).
        `now` (RFC 3339) is T, by default the clock's.
        """
        now = normalise_time(now, "rotation time") if now else utc_now()
        new = SigningKey.generate()
        new.save(self.directory / KEYS_DIR / f"{new.kid}.pem")
        with self._write() as conn:
            old = self._current_key(conn)
            statement = {"id": f"{self.id}/key/{new.kid}", "type": "KeyRotation", "version": 1,
                         "dateModified": now, "node": self.id, "previousKid": old.kid, "newKey": new.public.jwk()}
            self._append_statement(conn, statement, old, now)
            until = format_time(retired_until(parse_time(now)))
            conn.execute("UPDATE keys SET status = 'retired', valid_until = ? WHERE kid = ?", (until, old.kid))
            conn.execute("INSERT INTO keys (kid, jwk, status, valid_from) VALUES (?, ?, 'active', ?)",
                         (new.kid, orjson.dumps(new.public.jwk()).decode(), now))
            self._key = new
            self._sign_checkpoint(conn, self._tree(conn), new, now)
        return new.kid

    def revoke_key(self, kid: str, compromised_since: str) -> dict:
        """Revoke `kid` from `compromised_since` on; the statement is signed by the current key.

        Revoking the current key first rotates to a fresh one.
        """
        compromised_since = normalise_time(compromised_since, "--compromised-since")
        row = self.conn.execute("SELECT status FROM keys WHERE kid = ?", (kid,)).fetchone()
        if row is None:
            raise BiofedError(f"key {kid!r} is not a key of node {self.id}")
        if row[0] == "revoked":
            raise BiofedError(f"key {kid!r} is already revoked")
        if row[0] == "active":
            self.rotate_key()
        with self._write() as conn:
            key = self._current_key(conn)
            now = utc_now()
            statement = {"id": f"{self.id}/key-revocation/{kid}", "type": "KeyRevocation", "version": 1,
                         "dateModified": now, "node": self.id, "kid": kid, "compromisedSince": compromised_since}
            signed = self._append_statement(conn, statement, key, now)
            conn.execute("UPDATE keys SET status = 'revoked', compromised_since = ?, "
                         "valid_until = COALESCE(valid_until, ?) WHERE kid = ?", (compromised_since, now, kid))
            self._sign_checkpoint(conn, self._tree(conn), key, now)
        self._resign_after(kid, compromised_since)
        return signed

    def _resign_after(self, kid: str, compromised_since: str) -> int:
        """New versions, signed by the current key, of live records `kid` signed at or after `compromised_since`.

        Aggregators refuse those signatures; without new versions the records would go stale.
        """
        method = self.verification_method(kid)
        affected = []
        for (signed,) in self.conn.execute("SELECT signed FROM records WHERE deleted = 0 AND type IN (?, ?, ?)",
                                           CONTENT_TYPES):
            record = orjson.loads(signed)
            proof = record.get("proof", {})
            if proof.get("verificationMethod") == method and proof.get("created", "") >= compromised_since:
                affected.append(content_of(record))
        if affected:
            self._write_records(affected, skip_invalid=True, sources=None, force=True)
        return len(affected)

    def _append_statement(self, conn, statement: dict, key: SigningKey, now: str) -> dict:
        signed = sign(statement, key, self.verification_method(key.kid), created=now)
        leaf = canonicalize(signed)
        compact = self._tree(conn)
        seq = self._append_log(conn, compact, [(statement["id"], leaf)])
        conn.execute(
            "INSERT INTO records (id, type, version, content_hash, signed, deleted, seq) VALUES (?, ?, 1, ?, ?, 0, ?)",
            (statement["id"], statement["type"], content_hash(statement), leaf, seq),
        )
        self._save_tree(conn, compact)
        return signed

    # --- the tree and checkpoints

    def _tree(self, conn) -> merkle.CompactRange:
        size, data = conn.execute("SELECT size, compact_range FROM tree WHERE id = 1").fetchone()
        return merkle.CompactRange.from_bytes(size, data)

    def _save_tree(self, conn, compact: merkle.CompactRange) -> None:
        conn.execute("UPDATE tree SET size = ?, compact_range = ? WHERE id = 1", (compact.size, compact.to_bytes()))

    def _append_log(self, conn, compact: merkle.CompactRange, entries: list[tuple[str, bytes]]) -> int:
        rows = []
        for record_id, leaf in entries:
            leaf_hash = merkle.leaf_hash(leaf)
            compact.append(leaf_hash)
            rows.append((compact.size, record_id, leaf, leaf_hash))
        conn.executemany("INSERT INTO log (seq, record_id, leaf, leaf_hash) VALUES (?, ?, ?, ?)", rows)
        return compact.size

    def _sign_checkpoint(self, conn, compact: merkle.CompactRange, key: SigningKey, now: str) -> str:
        self._save_tree(conn, compact)
        root = compact.root()
        note = Checkpoint(self.config.origin, compact.size, root, now).sign(key)  # key name = origin
        conn.execute("INSERT OR REPLACE INTO checkpoints (size, root, timestamp, kid, note) VALUES (?, ?, ?, ?, ?)",
                     (compact.size, root, now, key.kid, note))
        return note

    def resign_checkpoint(self) -> str:
        """Sign the current tree again with a fresh timestamp (so verifiers see the log is alive)."""
        with self._write() as conn:
            return self._sign_checkpoint(conn, self._tree(conn), self._current_key(conn), utc_now())

    def checkpoint_note(self) -> str:
        row = self.conn.execute("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        # A note signed under the node id (before the key name became the origin, protocol.md §5)
        # is signed again at once: verifiers know only the origin's key name.
        if row is None or f"\n\n{SIGNATURE_PREFIX}{self.config.origin} " not in row[0]:
            return self.resign_checkpoint()
        return row[0]

    def tree_size(self) -> int:
        return self.conn.execute("SELECT size FROM tree WHERE id = 1").fetchone()[0]

    # --- writes

    def _prepare(self, raw) -> tuple[str | None, dict | None, list]:
        """Strict profile, namespace, node-set fields removed: (id, content, issues)."""
        if not isinstance(raw, dict):
            return None, None, [Issue("", "type", "a record must be a JSON object")]
        try:
            check(raw)
        except ProfileError as exc:
            return None, None, [Issue(exc.pointer, "json-profile", exc.message)]
        record_id, issues = namespaced_id(self.id, raw.get("id"), raw.get("type"))
        if issues:
            return (raw.get("id") if isinstance(raw.get("id"), str) else None), None, issues
        content = content_of(raw)
        content["id"] = record_id
        return record_id, content, []

    def _state(self, conn, record_id: str):
        return conn.execute("SELECT version, content_hash, deleted FROM records WHERE id = ?", (record_id,)).fetchone()

    def _write_records(self, contents: Iterable, *, skip_invalid: bool, sources: Sequence[str] | None,
                       on_progress: Callable[[int], None] | None = None,
                       precheck: Callable[[str, tuple | None], None] | None = None,
                       dry_run: bool = False, force: bool = False,
                       tombstones: Sequence[str] = ()) -> tuple[ImportResult, list[tuple[dict, bytes]]]:
        result = ImportResult()
        written: list[tuple[dict, bytes]] = []
        with self._write() as conn:
            key = self._current_key(conn)
            method = self.verification_method(key.kid)
            now = utc_now()
            compact = self._tree(conn)
            batch_state: dict[str, tuple] = {}  # a record written twice in one batch gets two versions
            record_rows, log_entries = [], []
            for index, raw in enumerate(contents):
                source = sources[index] if sources is not None else f"record {index + 1}"
                record_id, content, issues = self._prepare(raw)
                state = None
                if not issues:
                    state = batch_state.get(record_id) or self._state(conn, record_id)
                    if precheck is not None:
                        precheck(record_id, state)
                    chash = content_hash(content)
                    if state is not None and not state[2] and state[1] == chash and not force:
                        result.unchanged += 1
                        result.changes.append(("unchanged", record_id, source))
                        if on_progress:
                            on_progress(1)
                        continue
                    version = state[0] + 1 if state is not None else 1
                    unsigned = {**content, "version": version, "dateModified": now}
                    issues = _validate(unsigned)
                if not issues:
                    signed = sign(unsigned, key, method, created=now)
                    leaf = canonicalize(signed)
                    if len(leaf) > MAX_RECORD_BYTES:
                        issues = [Issue("", "max-size", f"signed record is {len(leaf)} bytes, over {MAX_RECORD_BYTES}")]
                if issues:
                    result.rejected.append(Rejected(index, source, record_id, [i.as_dict() for i in issues]))
                    if on_progress:
                        on_progress(1)
                    continue
                action = "created" if state is None else "restored" if state[2] else "updated"
                setattr(result, action, getattr(result, action) + 1)
                result.changes.append((action, record_id, source))
                batch_state[record_id] = (version, chash, 0)
                log_entries.append((record_id, leaf))
                record_rows.append((record_id, content["type"], version, chash, leaf, 0,
                                    compact.size + len(log_entries)))
                written.append((signed, leaf))
                if on_progress:
                    on_progress(1)
            if result.rejected and not skip_invalid:
                raise ImportRejected(result)
            for record_id in tombstones:  # in the same transaction as the puts: a sync is all or nothing
                if record_id in batch_state:
                    continue  # written by this very batch
                state = conn.execute("SELECT version, content_hash, deleted, type FROM records WHERE id = ?",
                                     (record_id,)).fetchone()
                if state is None or state[2] or state[3] not in CONTENT_TYPES:
                    continue  # unknown, already deleted, or a key statement
                tombstone, leaf = self._tombstone(record_id, state[0] + 1, key, now)
                result.deleted += 1
                result.changes.append(("deleted", record_id, ""))
                log_entries.append((record_id, leaf))
                record_rows.append((record_id, state[3], state[0] + 1, content_hash(tombstone), leaf, 1,
                                    compact.size + len(log_entries)))
            if log_entries:
                self._append_log(conn, compact, log_entries)
                conn.executemany(
                    "INSERT INTO records (id, type, version, content_hash, signed, deleted, seq) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET type = excluded.type, "
                    "version = excluded.version, content_hash = excluded.content_hash, "
                    "signed = excluded.signed, deleted = excluded.deleted, seq = excluded.seq",
                    record_rows,
                )
                self._sign_checkpoint(conn, compact, key, now)
            result.tree_size = compact.size
            if dry_run:
                raise _DryRun(result)
        return result, written

    def put_many(self, contents: Iterable[dict], *, skip_invalid: bool = False,
                 sources: Sequence[str] | None = None,
                 on_progress: Callable[[int], None] | None = None, dry_run: bool = False,
                 tombstones: Sequence[str] = ()) -> ImportResult:
        """Validate, sign and append many records in one transaction.

        All-or-nothing unless `skip_invalid`: then valid records are written and
        the invalid ones come back in `result.rejected`. Content equal to the
        current version (ignoring version, dateModified, proof) is left alone;
        a deleted record put again is counted as `restored`. `tombstones`: ids
        of live records to delete in the same transaction (a sync).
        `dry_run` does all the work, reports, and rolls back.
        """
        try:
            result, _ = self._write_records(contents, skip_invalid=skip_invalid, sources=sources,
                                            on_progress=on_progress, dry_run=dry_run, tombstones=tombstones)
        except _DryRun as done:
            return done.result
        return result

    def put(self, content: dict, *, expect_version: int | None = None, create: bool = False) -> dict:
        """Create or update one record; return it signed.

        `create=True` refuses an existing id (409); `expect_version` refuses
        an unknown id (404) or another current version (412). Unchanged
        content returns the current version without writing.
        """

        def precheck(record_id, state):
            if create and state is not None and not state[2]:
                raise RecordExists(f"record {record_id} already exists (version {state[0]}); use PUT to update it")
            if expect_version is not None:
                if state is None:
                    raise RecordNotFound(f"record {record_id} does not exist")
                if state[0] != expect_version:
                    raise VersionConflict(f"record {record_id} is at version {state[0]}, not {expect_version}")

        try:
            result, written = self._write_records([content], skip_invalid=False, sources=None, precheck=precheck)
        except ImportRejected as exc:
            rejected = exc.result.rejected[0]
            where = f" {rejected.id}" if rejected.id else ""
            raise RecordInvalid(f"record{where} is invalid: {rejected.errors[0]['pointer'] or '/'}: "
                                f"{rejected.errors[0]['message']}", rejected.errors) from None
        if written:
            return written[0][0]
        record_id, _, _ = self._prepare(content)
        return orjson.loads(self.get(record_id))

    def _tombstone(self, record_id: str, version: int, key: SigningKey, now: str) -> tuple[dict, bytes]:
        """(unsigned tombstone, its signed canonical bytes) for `record_id` at `version`."""
        tombstone = {"id": record_id, "type": "Tombstone", "version": version, "dateModified": now}
        return tombstone, canonicalize(sign(tombstone, key, self.verification_method(key.kid), created=now))

    def delete(self, record_id: str, *, expect_version: int | None = None) -> dict:
        """Append a signed tombstone; return it."""
        record_id = self.full_id(record_id)
        with self._write() as conn:
            state = conn.execute("SELECT version, deleted, type FROM records WHERE id = ?", (record_id,)).fetchone()
            if state is None or state[2] not in CONTENT_TYPES and not state[1]:
                raise RecordNotFound(f"record {record_id} does not exist")
            if state[1]:
                raise RecordGone(f"record {record_id} is already deleted (version {state[0]})")
            if expect_version is not None and state[0] != expect_version:
                raise VersionConflict(f"record {record_id} is at version {state[0]}, not {expect_version}")
            key = self._current_key(conn)
            now = utc_now()
            tombstone, leaf = self._tombstone(record_id, state[0] + 1, key, now)
            signed = orjson.loads(leaf)
            compact = self._tree(conn)
            seq = self._append_log(conn, compact, [(record_id, leaf)])
            conn.execute("UPDATE records SET version = ?, content_hash = ?, signed = ?, deleted = 1, seq = ? "
                         "WHERE id = ?", (state[0] + 1, content_hash(tombstone), leaf, seq, record_id))
            self._sign_checkpoint(conn, compact, key, now)
        return signed

    # --- reads

    def full_id(self, record_id: str) -> str:
        """Accept `<node>/<kind>/<local>` or the short `<kind>/<local>`."""
        return record_id if record_id.startswith(self.id + "/") else f"{self.id}/{record_id}"

    def record(self, record_id: str) -> StoredRecord | None:
        row = self.conn.execute("SELECT id, type, version, deleted, signed, seq FROM records WHERE id = ?",
                                (self.full_id(record_id),)).fetchone()
        return StoredRecord(row[0], row[1], row[2], bool(row[3]), row[4], row[5]) if row else None

    def get(self, record_id: str) -> bytes | None:
        """The current signed bytes of a record (its tombstone when deleted), or None."""
        stored = self.record(record_id)
        return stored.signed if stored else None

    def current_records(self, *, statements: bool = False) -> tuple[int, list[bytes]]:
        """(tree size, signed bytes of every live Actor/Project/Offer), read consistently."""
        types = CONTENT_TYPES + (KEY_STATEMENT_TYPES if statements else ())
        marks = ", ".join("?" * len(types))
        with self._read() as conn:
            size = conn.execute("SELECT size FROM tree WHERE id = 1").fetchone()[0]
            rows = conn.execute(f"SELECT signed FROM records WHERE deleted = 0 AND type IN ({marks}) ORDER BY id",
                                types).fetchall()
        return size, [row[0] for row in rows]

    def log_page(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        """Log entries after `after`: [(seq, leaf bytes)], at most `limit`."""
        return self.conn.execute("SELECT seq, leaf FROM log WHERE seq > ? ORDER BY seq LIMIT ?",
                                 (after, limit)).fetchall()

    def merkle_tree(self, size: int) -> merkle.MerkleTree:
        """The subtree hashes of the log, holding at least its first `size` entries (read once, then extended).

        Threads may read it while another extends it: a stored hash never changes.
        """
        with self._lock:
            tree = self._proof_tree
            if size > tree.size:
                rows = self.conn.execute("SELECT leaf_hash FROM log WHERE seq > ? AND seq <= ? ORDER BY seq",
                                         (tree.size, size)).fetchall()
                tree.extend(row[0] for row in rows)
                if tree.size < size:
                    raise BiofedError(f"the log holds {tree.size} entries, fewer than {size}")
            return tree

    def inclusion_proof(self, seq: int, size: int) -> list[bytes]:
        return self.merkle_tree(size).inclusion_proof(seq - 1, size)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        return self.merkle_tree(second).consistency_proof(first, second)

    def descriptor(self) -> dict:
        c = self.config
        try:
            from biofed.schema import SCHEMA_VERSIONS as versions
        except ImportError:
            versions = ["1.0"]
        keys = self.keys()
        return {"id": c.id, "name": c.name, "country": c.country, "region": c.region, "licence": c.licence,
                "baseUrl": c.baseUrl, "origin": c.origin, "schemaVersions": list(versions),
                "keys": {"keys": keys},
                # the signed-note verifier keys of the keys that may sign a checkpoint (protocol.md §5)
                "checkpointKeys": [verifier_key(c.origin, PublicKey.from_jwk(k)) for k in keys if k["status"] != "revoked"]}

    # --- tokens

    def create_token(self, name: str, scopes: Sequence[str]) -> str:
        """A new bearer token; only its SHA-256 is stored, so this is the only time it is seen."""
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            raise BiofedError(f"scope(s) {', '.join(bad) or '(none)'} not allowed; choose from {', '.join(SCOPES)}")
        if not name or not name.strip():
            raise BiofedError("a token needs a name")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM tokens WHERE name = ?", (name,)).fetchone():
                raise BiofedError(f"a token named {name!r} exists; revoke it or pick another name")
            conn.execute("INSERT INTO tokens (hash, name, scopes, created) VALUES (?, ?, ?, ?)",
                         (hash_token(token), name, " ".join(dict.fromkeys(scopes)), utc_now()))
        return token

    def list_tokens(self) -> list[dict]:
        rows = self.conn.execute("SELECT name, scopes, created, revoked FROM tokens ORDER BY created, name").fetchall()
        return [{"name": n, "scopes": s.split(), "created": c, "revoked": r} for n, s, c, r in rows]

    def revoke_token(self, name: str) -> None:
        with self._write() as conn:
            changed = conn.execute("UPDATE tokens SET revoked = ? WHERE name = ? AND revoked IS NULL",
                                   (utc_now(), name)).rowcount
        if not changed:
            raise BiofedError(f"no active token named {name!r}")

    def authenticate(self, token: str) -> Token | None:
        presented = hash_token(token)
        found = None
        for stored, name, scopes in self.conn.execute(
            "SELECT hash, name, scopes FROM tokens WHERE revoked IS NULL"
        ).fetchall():
            if hmac.compare_digest(stored, presented):  # constant time, and no early exit
                found = Token(name, tuple(scopes.split()))
        return found

    # --- health

    def check_log(self) -> list[str]:
        """Problems with the stored log (empty when sound): what the crash test asserts."""
        problems = []
        conn = self.conn
        size = self.tree_size()
        leaves = [row[0] for row in conn.execute("SELECT leaf_hash FROM log ORDER BY seq")]
        if len(leaves) != size:
            problems.append(f"tree size {size} but {len(leaves)} log entries")
        root = merkle.root(leaves)
        row = conn.execute("SELECT size, root FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        if row is None or row[0] != len(leaves) or row[1] != root:
            problems.append("latest checkpoint does not match the log")
        if self._tree(conn).root() != root:
            problems.append("stored compact range does not match the log")
        orphans = conn.execute("SELECT count(*) FROM records r LEFT JOIN log l ON l.seq = r.seq "
                               "WHERE l.seq IS NULL OR l.leaf != r.signed").fetchone()[0]
        if orphans:
            problems.append(f"{orphans} record(s) without their log entry")
        missing = conn.execute("SELECT count(*) FROM (SELECT DISTINCT record_id FROM log) l "
                               "LEFT JOIN records r ON r.id = l.record_id WHERE r.id IS NULL").fetchone()[0]
        if missing:
            problems.append(f"{missing} logged id(s) without a record row")
        return problems


def key_file_mode(directory, kid: str) -> int:
    return os.stat(Path(directory) / KEYS_DIR / f"{kid}.pem").st_mode & 0o777


__all__ = ["init_node", "Node", "ImportResult", "Rejected", "NodeError", "RecordInvalid", "RecordNotFound",
           "RecordGone", "RecordExists", "VersionConflict", "ImportRejected", "CONFIG_FILE"]
