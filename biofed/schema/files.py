"""Read records from files (one JSON record, a JSON array, or JSON Lines) and validate each.

Every record is parsed on its own under the strict profile, so one malformed
record (bad JSON, invalid UTF-8, a duplicate key) is reported against itself
and the others are still checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from biofed.schema.validate import ValidationIssue, validate_record
from biofed.trust.jsonprofile import ProfileError, loads

JSONL_SUFFIXES = (".jsonl", ".ndjson")


@dataclass
class RecordResult:
    """The outcome for one record: where it is (file, line or array index), its id, its issues."""

    file: str
    location: str
    id: str | None
    issues: list[ValidationIssue] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.issues

    def lines(self) -> list[str]:
        prefix = f"{self.file}:{self.location}: {self.id or '-'}"
        return [f"{prefix}: {i.pointer or '/'}: {i.message} [{i.rule}]" for i in self.issues]

    def as_dict(self) -> dict:
        return {"file": self.file, "location": self.location, "id": self.id, "valid": self.valid,
                "issues": [i.as_dict() for i in self.issues]}


def _parse(data: bytes) -> tuple[object, list[ValidationIssue]]:
    try:
        return loads(data), []
    except ProfileError as exc:
        return _lenient(data), [ValidationIssue(exc.pointer, "profile", exc.message)]


def _lenient(data: bytes):
    """The record as plain JSON would read it: only to name it (its id) in the report."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def _chunks_jsonl(data: bytes) -> Iterator[tuple[str, bytes]]:
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.strip():
            yield str(number), line.rstrip(b"\r")


def _chunks_json(data: bytes) -> Iterator[tuple[str, bytes]]:
    """Split a JSON file into its records' bytes: a single value, an array, or concatenated lines."""
    # surrogateescape keeps invalid UTF-8 bytes so that each record reports its own.
    text = data.decode("utf-8", errors="surrogateescape")
    decoder = json.JSONDecoder()
    start = len(text) - len(text.lstrip())
    if text.startswith("\ufeff"):
        yield "1", data
        return
    if start == len(text):
        return
    if text[start] != "[":
        try:
            _, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            yield "1", data
            return
        if text[end:].strip():  # more values follow: JSON Lines in a .json file
            yield from _chunks_jsonl(data)
        else:
            yield "1", text[start:end].encode("utf-8", errors="surrogateescape")
        return
    position, index = start + 1, 0
    while True:
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        if position < len(text) and text[position] == "]" and index == 0:
            return
        try:
            _, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            # The array cannot be split past this point: hand the rest over as one bad record.
            yield f"[{index}]", text[position:].encode("utf-8", errors="surrogateescape")
            return
        yield f"[{index}]", text[position:end].encode("utf-8", errors="surrogateescape")
        index += 1
        position = end
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        if position < len(text) and text[position] == ",":
            position += 1
            continue
        if position < len(text) and text[position] == "]" and not text[position + 1:].strip():
            return
        rest = text[position:position + 20]
        yield f"[{index}]", rest.encode("utf-8", errors="surrogateescape") or b"<end of file>"
        return


def validate_file(path: str | Path, *, signed: bool = True) -> Iterator[RecordResult]:
    """Validate every record in a file; yields one RecordResult per record."""
    path = Path(path)
    data = path.read_bytes()
    chunks = _chunks_jsonl(data) if path.suffix.lower() in JSONL_SUFFIXES else _chunks_json(data)
    for location, chunk in chunks:
        record, issues = _parse(chunk)
        if not issues:
            issues = validate_record(record, signed=signed)
        record_id = record.get("id") if isinstance(record, dict) and isinstance(record.get("id"), str) else None
        yield RecordResult(str(path), location, record_id, issues)
