"""Signed, timestamped log checkpoints in the C2SP signed-note format.

    <origin>\n<tree size>\n<base64 root hash>\ntimestamp <RFC 3339 UTC>\n
    \n
    — <origin> <base64(key hash (4 bytes) || Ed25519 signature)>\n
    [— <other key name> <base64(...)>\n ...]   (e.g. witness cosignatures)

The node signs under the key name = its origin (C2SP tlog-checkpoint; what the
witness network's log lists expect). The key hash is the first four bytes of
SHA-256(key name || "\n" || 0x01 || public key), as in C2SP signed-note and
Go's golang.org/x/mod/sumdb/note. A verifier ignores signature lines by keys
it does not know and needs at least one valid signature by a pinned key; a
known key's bad signature refuses the note. The timestamp extension line lets
a verifier refuse a checkpoint that is too old (a frozen log).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from biofed.trust.jsonprofile import MAX_SAFE_INTEGER
from biofed.trust.keys import PublicKey, SigningKey
from biofed.trust.times import parse_rfc3339

SIGNATURE_PREFIX = "\u2014 "  # em dash and space
ED25519_ALGORITHM = b"\x01"  # the signed-note signature type byte of an Ed25519 key
MAX_NOTE_CHARS = 8192
MAX_SIGNATURES = 100  # Go's note.Open refuses more ("avoid spending forever parsing")
# The size is also a log page's treeSize and a proof's size: a strict-profile integer.
MAX_TREE_SIZE = MAX_SAFE_INTEGER
_SIZE = re.compile(r"0|[1-9][0-9]{0,15}")  # ASCII decimal, no leading zero, at most 16 digits
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


class CheckpointError(ValueError):
    """A checkpoint is malformed, badly signed, stale or goes backwards."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def note_key_id(name: str, key: PublicKey) -> bytes:
    """The signed-note key hash of an Ed25519 key under the key name `name` (4 bytes)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + ED25519_ALGORITHM + key.raw).digest()[:4]


def valid_key_name(name: str) -> bool:
    """C2SP signed-note: non-empty, no Unicode spaces, no '+'."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def verifier_key(name: str, key: PublicKey) -> str:
    """`<name>+<hex key hash>+<base64(0x01 || public key)>`, the string Go's note.NewVerifier takes."""
    if not valid_key_name(name):
        raise ValueError(f"{name!r} is not a signed-note key name (non-empty, no spaces, no '+')")
    encoded = base64.b64encode(ED25519_ALGORITHM + key.raw).decode("ascii")
    return f"{name}+{note_key_id(name, key).hex()}+{encoded}"


def parse_verifier_key(text: str) -> tuple[str, PublicKey]:
    """(key name, public key) of a verifier key string, checked as note.NewVerifier checks it."""
    name, _, rest = text.partition("+")
    hash_hex, _, key_text = rest.partition("+")
    try:
        raw = base64.b64decode(key_text, validate=True)
    except ValueError:
        raw = b""
    if not valid_key_name(name) or not re.fullmatch(r"[0-9a-f]{8}", hash_hex) or len(raw) != 33:
        raise ValueError(f"{text[:120]!r} is not a verifier key <name>+<8 hex digits>+<base64(0x01 || 32-byte key)>")
    if raw[:1] != ED25519_ALGORITHM:
        raise ValueError(f"verifier key {name}+{hash_hex} is not an Ed25519 key (type {raw[0]:#04x})")
    key = PublicKey(raw[1:])
    if note_key_id(name, key).hex() != hash_hex:
        raise ValueError(f"verifier key {name}+{hash_hex}: the key hash does not match the name and key")
    return name, key


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:20] + "..." + text[-8:])


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    timestamp: str  # RFC 3339, UTC, seconds

    def body(self) -> bytes:
        root = base64.b64encode(self.root).decode("ascii")
        return f"{self.origin}\n{self.size}\n{root}\ntimestamp {self.timestamp}\n".encode("utf-8")

    def sign(self, key: SigningKey, name: str | None = None) -> str:
        """The signed note, signed under the key name `name` (default and normal: the origin)."""
        name = self.origin if name is None else name
        body = self.body()
        sig = base64.b64encode(note_key_id(name, key.public) + key.sign(body)).decode("ascii")
        return body.decode("utf-8") + "\n" + f"{SIGNATURE_PREFIX}{name} {sig}\n"

    @property
    def time(self) -> datetime:
        return parse_rfc3339(self.timestamp)

    def age(self, now: datetime | None = None) -> timedelta:
        return (now or datetime.now(timezone.utc)) - self.time

    def as_json(self) -> dict:
        return {"origin": self.origin, "size": self.size, "root": self.root.hex(), "timestamp": self.timestamp}


def _malformed(message: str) -> CheckpointError:
    return CheckpointError("malformed", message)


def parse(note: str | bytes) -> tuple[Checkpoint, list[tuple[str, bytes, bytes]]]:
    """Split a signed note into its checkpoint and its (key name, key hash, signature) lines.

    The note syntax is checked as C2SP signed-note and Go's note.Open check it;
    the signatures are not verified here.
    """
    if isinstance(note, (bytes, bytearray)):
        try:
            note = bytes(note).decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed("checkpoint is not UTF-8") from None
    if len(note) > MAX_NOTE_CHARS:
        raise _malformed(f"checkpoint is longer than {MAX_NOTE_CHARS} characters")
    control = _CONTROL.search(note)
    if control:
        raise _malformed(f"checkpoint holds the control character {control.group()!r} at {control.start()}")
    # The text ends at the LAST blank line (signed-note); a checkpoint body has none itself.
    split = note.rfind("\n\n")
    if split < 0:
        raise _malformed("checkpoint has no signature block (blank line missing)")
    text, sigs = note[: split + 1], note[split + 2 :]
    if not sigs.endswith("\n"):
        raise _malformed("the signature block is empty or does not end with a newline")
    signatures = []
    for number, line in enumerate(sigs[:-1].split("\n"), start=1):
        if number > MAX_SIGNATURES:
            raise _malformed(f"checkpoint has more than {MAX_SIGNATURES} signature lines")
        if not line.startswith(SIGNATURE_PREFIX):
            raise _malformed(f"signature line {number} does not start with an em dash and a space")
        name, _, sig_text = line[len(SIGNATURE_PREFIX) :].partition(" ")
        try:
            raw = base64.b64decode(sig_text, validate=True)
        except ValueError:
            raw = b""
        if not valid_key_name(name) or len(raw) < 5:
            raise _malformed(f"signature line {number} is not '\u2014 <key name> <base64(key hash || signature)>'")
        signatures.append((name, raw[:4], raw[4:]))
    lines = text[:-1].split("\n")
    if len(lines) < 4:
        raise _malformed("checkpoint needs origin, size, root hash and timestamp lines")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise _malformed("checkpoint origin line is empty")
    if not _SIZE.fullmatch(size_text):
        if re.fullmatch(r"[1-9][0-9]*", size_text):
            raise _malformed(f"tree size of {len(size_text)} digits is larger than {MAX_TREE_SIZE} (2^53-1)")
        raise _malformed(f"tree size {_shown(size_text)} is not a decimal number (ASCII digits, no leading zero)")
    size = int(size_text)
    if size > MAX_TREE_SIZE:
        raise _malformed(f"tree size {size} is larger than {MAX_TREE_SIZE} (2^53-1)")
    try:
        root = base64.b64decode(root_text, validate=True)
    except ValueError:
        raise _malformed("root hash is not base64") from None
    if len(root) != 32:
        raise _malformed(f"root hash has {len(root)} bytes, not 32")
    stamps = [e[len("timestamp ") :] for e in extensions if e.startswith("timestamp ")]
    if len(stamps) != 1:
        raise _malformed("checkpoint needs exactly one 'timestamp' line")
    try:
        parse_rfc3339(stamps[0])
    except ValueError:
        raise _malformed(f"timestamp {_shown(stamps[0])} is not an RFC 3339 time with a zone") from None
    checkpoint = Checkpoint(origin, size, root, stamps[0])
    if checkpoint.body() != text.encode("utf-8"):
        raise _malformed("checkpoint body has unexpected lines")
    return checkpoint, signatures


def verify(note: str | bytes, keys: list[PublicKey], *, origin: str) -> Checkpoint:
    """The checkpoint of log `origin`, if one of `keys` signed it under the key name `origin`.

    Signature lines by other key names or unknown key hashes are ignored (witness
    cosignatures, say); a repeated line by the same key counts once (as in Go's
    note.Open). A known key whose signature fails refuses the note; so does a
    note with no signature by a known key.
    """
    checkpoint, signatures = parse(note)
    if checkpoint.origin != origin:
        raise CheckpointError("wrong-origin", f"checkpoint origin is {checkpoint.origin!r}, expected {origin!r}")
    known: dict[bytes, list[PublicKey]] = {}
    for key in keys:
        known.setdefault(note_key_id(origin, key), []).append(key)
    body = checkpoint.body()
    seen: set[bytes] = set()
    for name, key_id, signature in signatures:
        if name != origin or key_id not in known or key_id in seen:
            continue
        seen.add(key_id)
        if not any(key.verify(signature, body) for key in known[key_id]):
            raise CheckpointError("bad-signature", f"the signature by key {origin}+{key_id.hex()} does not verify")
    if not seen:
        names = sorted({f"{name}+{key_id.hex()}" for name, key_id, _ in signatures})
        raise CheckpointError("bad-signature", f"checkpoint is not signed by a pinned key of {origin!r}"
                                               f" (signed by: {', '.join(names)[:300]})")
    return checkpoint


def check_fresh(checkpoint: Checkpoint, max_age: timedelta, now: datetime | None = None) -> None:
    now = now or datetime.now(timezone.utc)
    age = checkpoint.age(now)
    if age > max_age:
        raise CheckpointError("stale", f"checkpoint is {int(age.total_seconds())} s old, older than the allowed {int(max_age.total_seconds())} s (frozen log?)")
    if age < -timedelta(minutes=5):
        raise CheckpointError("future", f"checkpoint timestamp {checkpoint.timestamp} is in the future")
