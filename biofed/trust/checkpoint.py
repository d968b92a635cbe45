"""Signed, timestamped log checkpoints in the C2SP signed-note format.

    <origin>\n<tree size>\n<base64 root hash>\ntimestamp <RFC 3339 UTC>\n
    \n
    — <key name> <base64(key id (4 bytes) || Ed25519 signature)>\n

The key id is the first four bytes of SHA-256(key name || "\n" || 0x01 ||
public key), as in the C2SP note specification. The timestamp extension line
lets a verifier refuse a checkpoint that is too old (a frozen log).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from biofed.trust.keys import PublicKey, SigningKey

SIGNATURE_PREFIX = "\u2014 "  # em dash and space


class CheckpointError(ValueError):
    """A checkpoint is malformed, badly signed, stale or goes backwards."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def note_key_id(name: str, key: PublicKey) -> bytes:
    return hashlib.sha256(name.encode("utf-8") + b"\n\x01" + key.raw).digest()[:4]


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    timestamp: str  # RFC 3339, UTC, seconds

    def body(self) -> bytes:
        root = base64.b64encode(self.root).decode("ascii")
        return f"{self.origin}\n{self.size}\n{root}\ntimestamp {self.timestamp}\n".encode("utf-8")

    def sign(self, key: SigningKey, name: str) -> str:
        body = self.body()
        sig = base64.b64encode(note_key_id(name, key.public) + key.sign(body)).decode("ascii")
        return body.decode("utf-8") + "\n" + f"{SIGNATURE_PREFIX}{name} {sig}\n"

    @property
    def time(self) -> datetime:
        return _parse_time(self.timestamp)

    def age(self, now: datetime | None = None) -> timedelta:
        return (now or datetime.now(timezone.utc)) - self.time

    def as_json(self) -> dict:
        return {"origin": self.origin, "size": self.size, "root": self.root.hex(), "timestamp": self.timestamp}


def parse(note: str | bytes) -> tuple[Checkpoint, list[tuple[str, bytes, bytes]]]:
    """Split a signed note into its checkpoint and its (name, key id, signature) lines."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise CheckpointError("malformed", "checkpoint is not UTF-8") from None
    if len(note) > 8192:
        raise CheckpointError("malformed", "checkpoint is larger than 8 KiB")
    body, sep, sigs = note.partition("\n\n")
    if not sep:
        raise CheckpointError("malformed", "checkpoint has no signature block (blank line missing)")
    lines = body.split("\n")
    if len(lines) < 4:
        raise CheckpointError("malformed", "checkpoint needs origin, size, root hash and timestamp lines")
    origin, size_text, root_text, *extensions = lines
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise CheckpointError("malformed", f"tree size {size_text!r} is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except ValueError:
        raise CheckpointError("malformed", "root hash is not base64") from None
    if len(root) != 32:
        raise CheckpointError("malformed", f"root hash has {len(root)} bytes, not 32")
    stamps = [e[len("timestamp ") :] for e in extensions if e.startswith("timestamp ")]
    if len(stamps) != 1:
        raise CheckpointError("malformed", "checkpoint needs exactly one 'timestamp' line")
    try:
        _parse_time(stamps[0])
    except ValueError:
        raise CheckpointError("malformed", f"timestamp {stamps[0]!r} is not RFC 3339") from None
    checkpoint = Checkpoint(origin, int(size_text), root, stamps[0])
    if checkpoint.body() != (body + "\n").encode("utf-8"):
        raise CheckpointError("malformed", "checkpoint body has unexpected lines")
    signatures = []
    for line in sigs.split("\n"):
        if not line:
            continue
        if not line.startswith(SIGNATURE_PREFIX):
            raise CheckpointError("malformed", "signature line does not start with an em dash")
        name, _, sig_text = line[len(SIGNATURE_PREFIX) :].rpartition(" ")
        try:
            raw = base64.b64decode(sig_text, validate=True)
        except ValueError:
            raise CheckpointError("malformed", "signature is not base64") from None
        if len(raw) != 68:
            raise CheckpointError("malformed", "an Ed25519 note signature has 4 + 64 bytes")
        signatures.append((name, raw[:4], raw[4:]))
    return checkpoint, signatures


def verify(note: str | bytes, name: str, keys: list[PublicKey], *, origin: str | None = None) -> Checkpoint:
    """Verify that one of `keys`, under the note key name `name`, signed this checkpoint."""
    checkpoint, signatures = parse(note)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError("wrong-origin", f"checkpoint origin is {checkpoint.origin!r}, expected {origin!r}")
    body = checkpoint.body()
    for sig_name, key_id, signature in signatures:
        if sig_name != name:
            continue
        for key in keys:
            if note_key_id(name, key) == key_id and key.verify(signature, body):
                return checkpoint
    raise CheckpointError("bad-signature", f"checkpoint is not signed by a pinned key of {name!r}")


def check_fresh(checkpoint: Checkpoint, max_age: timedelta, now: datetime | None = None) -> None:
    now = now or datetime.now(timezone.utc)
    age = checkpoint.age(now)
    if age > max_age:
        raise CheckpointError("stale", f"checkpoint is {int(age.total_seconds())} s old, older than the allowed {int(max_age.total_seconds())} s (frozen log?)")
    if age < -timedelta(minutes=5):
        raise CheckpointError("future", f"checkpoint timestamp {checkpoint.timestamp} is in the future")
