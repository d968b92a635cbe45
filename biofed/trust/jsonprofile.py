"""The strict JSON profile every BioFed record obeys.

No floats, integers within +-(2**53 - 1), NFC-normalised strings, no duplicate
keys, bounded size and depth. A document outside the profile is rejected with
a message naming what is wrong and where (a JSON pointer); it is never
"repaired", because a repaired document would no longer be what was signed.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1
MAX_RECORD_BYTES = 64 * 1024
MAX_DEPTH = 32


class ProfileError(ValueError):
    """A document violates the strict JSON profile."""

    def __init__(self, message: str, pointer: str = ""):
        super().__init__(f"{pointer or '/'}: {message}" if pointer is not None else message)
        self.message = message
        self.pointer = pointer


def _pointer_token(token: Any) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ProfileError(f"duplicate key {key!r}", "")
        obj[key] = value
    return obj


def _reject_float(text: str):
    raise ProfileError(f"floating-point number {text} is not allowed (use integers or decimal strings)", "")


def _reject_constant(text: str):
    raise ProfileError(f"{text} is not valid JSON", "")


def loads(data: bytes | str, *, max_bytes: int | None = MAX_RECORD_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON under the strict profile; raise ProfileError on any violation."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data)
        if max_bytes is not None and len(data) > max_bytes:
            raise ProfileError(f"document is {len(data)} bytes, larger than the limit of {max_bytes}", "")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProfileError(f"invalid UTF-8 at byte {exc.start}", "") from None
    else:
        text = data
        if max_bytes is not None and len(text) > max_bytes:
            raise ProfileError(f"document is over {max_bytes} bytes", "")
    if text.startswith("\ufeff"):
        raise ProfileError("byte order mark is not allowed", "")
    try:
        obj = json.loads(
            text,
            object_pairs_hook=_reject_duplicates,
            parse_float=_reject_float,
            parse_constant=_reject_constant,
        )
    except ProfileError:
        raise
    except RecursionError:
        raise ProfileError(f"nested deeper than {max_depth} levels", "") from None
    except json.JSONDecodeError as exc:
        raise ProfileError(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", "") from None
    check(obj, max_depth=max_depth)
    return obj


def check(obj: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Check an already-parsed value against the profile (no floats, safe ints, NFC, depth)."""
    stack: list[tuple[Any, str, int]] = [(obj, "", 0)]
    while stack:
        value, pointer, depth = stack.pop()
        if depth > max_depth:
            raise ProfileError(f"nested deeper than {max_depth} levels", pointer)
        if isinstance(value, str):
            if not value.isascii() and not unicodedata.is_normalized("NFC", value):
                raise ProfileError("string is not NFC-normalised", pointer)
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
                raise ProfileError(f"integer {value} is outside +-(2**53-1)", pointer)
        elif isinstance(value, float):
            raise ProfileError(f"floating-point number {value!r} is not allowed", pointer)
        elif isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ProfileError(f"object key {key!r} is not a string", pointer)
                if not key.isascii() and not unicodedata.is_normalized("NFC", key):
                    raise ProfileError(f"key {key!r} is not NFC-normalised", pointer)
                stack.append((item, f"{pointer}/{_pointer_token(key)}", depth + 1))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                stack.append((item, f"{pointer}/{index}", depth + 1))
        else:
            raise ProfileError(f"{type(value).__name__} is not a JSON value", pointer)
