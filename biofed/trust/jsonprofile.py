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
            raise _HookError("duplicate", f"duplicate key {key!r}")
        obj[key] = value
    return obj


# 2**53 - 1 has 16 digits: an integer literal with more digits is out of range. Checked on the
# text, before int() -- which refuses over 4,300 digits with its own ValueError (and is slow).
SAFE_DIGITS = len(str(MAX_SAFE_INTEGER))


def _digits(text: str) -> int:
    return len(text) - text.startswith("-")


def _too_long(text: str) -> str:
    shown = text if len(text) <= 24 else f"{text[:10]}...{text[-6:]}"
    return f"integer {shown} ({_digits(text)} digits) is outside +-(2**53-1)"


def _parse_int(text: str) -> int:
    if _digits(text) > SAFE_DIGITS:
        raise _HookError("number", _too_long(text))
    return int(text)  # in range or not, check() judges it with its pointer


def _reject_float(text: str):
    raise _HookError("number", f"floating-point number {text} is not allowed (use integers or decimal strings)")


def _reject_constant(text: str):
    raise _HookError("number", f"{text} is not valid JSON")


class _HookError(ProfileError):
    """Raised inside the parser's hooks, which don't know where they are; `kind` says what to look for."""

    def __init__(self, kind: str, message: str):
        super().__init__(message, "")
        self.kind = kind


class _Number(str):
    """A float, NaN/Infinity or over-long integer, kept as its text while locating it."""


def _locate_int(text: str):
    return _Number(text) if _digits(text) > SAFE_DIGITS else 0


def _locate(text: str, kind: str) -> str:
    """JSON pointer of the first offending value of `kind` ("duplicate" key or bad "number") in `text`.

    The order is the parser's: numbers in document order; a duplicate key when its object closes,
    so inner objects before the object holding them. "" if nothing is found.
    """

    def walk(value, pointer):
        if isinstance(value, _Number):
            return pointer if kind == "number" else None
        if isinstance(value, list) and value and isinstance(value[0], tuple):  # an object, as its pairs
            for key, item in value:
                found = walk(item, f"{pointer}/{_pointer_token(key)}")
                if found is not None:
                    return found
            if kind == "duplicate":
                seen = set()
                for key, _ in value:
                    if key in seen:
                        return f"{pointer}/{_pointer_token(key)}"
                    seen.add(key)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                found = walk(item, f"{pointer}/{index}")
                if found is not None:
                    return found
        return None

    try:
        tree = json.loads(text, object_pairs_hook=list, parse_float=_Number, parse_constant=_Number,
                          parse_int=_locate_int)
        return walk(tree, "") or ""
    except (ValueError, RecursionError):
        return ""


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
            parse_int=_parse_int,
        )
    except _HookError as exc:
        # The parser's hooks don't know where they are: find the place for the message.
        raise ProfileError(exc.message, _locate(text, exc.kind)) from None
    except RecursionError:
        raise ProfileError(f"nested deeper than {max_depth} levels", "") from None
    except json.JSONDecodeError as exc:
        raise ProfileError(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", "") from None
    check(obj, max_depth=max_depth)
    return obj


def _int_text(value: int) -> str:
    # str() of an int over 4,300 digits raises ValueError: describe a huge one by its size.
    return str(value) if abs(value) < 10**24 else f"of {value.bit_length()} bits"


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
                raise ProfileError(f"integer {_int_text(value)} is outside +-(2**53-1)", pointer)
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


# --- fast path -------------------------------------------------------------
#
# loads() pays for json's Python-level object_pairs_hook on every object. The
# fast path parses with orjson (C) and checks the result in ONE iterative
# walk; whenever that walk is not certain the document is in the profile, it
# hands the bytes to loads(), which then accepts or rejects with its usual
# message. It therefore accepts exactly what loads() accepts and returns the
# same value.
#
# Duplicate keys: orjson keeps the last value, so they are found by counting.
# Every key/value pair of the raw text has exactly one ':' outside strings; a
# ':' inside a string literal is also in the parsed string. So, with K the
# keys of the parsed value and S the ':' in its strings (keys included),
#     raw.count(b":") - S == K   exactly when no key was dropped
# (a dropped pair removes its ':' and any ':' in its strings from K and S but
# not from the raw count). A ':' written as an escape (\u003a) would break the
# count, so such documents take the slow path. orjson also rejects what the
# profile cannot contain or the slow path must judge (invalid UTF-8, BOM,
# NaN, lone surrogates, integers beyond 64 bits become floats).

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency
    _orjson = None

_is_normalized = unicodedata.is_normalized


def loads_fast(data: bytes | str, *, max_bytes: int | None = MAX_RECORD_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """loads() with the same result and the same errors, several times faster on profile documents."""
    return parse(data, max_bytes=max_bytes, max_depth=max_depth)[0]


def parse(data: bytes | str, *, max_bytes: int | None = MAX_RECORD_BYTES, max_depth: int = MAX_DEPTH) -> tuple[Any, bool]:
    """Like loads_fast(); also returns True when the value was certified by the fast path.

    A certified value holds only dict/list/str/int/bool/None from orjson (no
    lone surrogates) and every non-ASCII key is below U+E000, so its RFC 8785
    canonical form is orjson.dumps(value, option=OPT_SORT_KEYS).
    """
    if type(data) is not bytes or _orjson is None or (max_bytes is not None and len(data) > max_bytes):
        return loads(data, max_bytes=max_bytes, max_depth=max_depth), False
    if b"\\u003a" in data or b"\\u003A" in data:
        return loads(data, max_bytes=max_bytes, max_depth=max_depth), False
    try:
        value = _orjson.loads(data)
    except _orjson.JSONDecodeError:
        return loads(data, max_bytes=max_bytes, max_depth=max_depth), False
    verdict = _fast_walk(value, max_depth)
    if verdict is None or data.count(b":") - verdict[1] != verdict[0]:
        return loads(data, max_bytes=max_bytes, max_depth=max_depth), False
    return value, verdict[2]


def _fast_walk(root: Any, max_depth: int) -> tuple[int, int, bool] | None:
    """(keys, ':' in strings, keys JCS-safe) when `root` is certainly in the profile, else None."""
    keys = colons = 0
    jcs = True
    level = [root]
    depth = 0
    lo, hi = -MAX_SAFE_INTEGER, MAX_SAFE_INTEGER
    kind = type(root)
    if kind is str:
        if not root.isascii() and not _is_normalized("NFC", root):
            return None
        return 0, root.count(":"), True
    if kind is int:
        return (0, 0, True) if lo <= root <= hi else None
    if kind is not dict and kind is not list:
        return (0, 0, True) if kind is bool or root is None else None
    while level:
        deeper = []
        last = depth >= max_depth  # children of this level would be deeper than allowed
        for value in level:
            if type(value) is dict:
                if not value:
                    continue
                if last:
                    return None
                keys += len(value)
                for key, item in value.items():
                    if not key.isascii():
                        if not _is_normalized("NFC", key):
                            return None
                        if max(key) >= "\ue000":
                            jcs = False
                    if ":" in key:
                        colons += key.count(":")
                    kind = type(item)
                    if kind is str:
                        if not item.isascii() and not _is_normalized("NFC", item):
                            return None
                        if ":" in item:
                            colons += item.count(":")
                    elif kind is dict or kind is list:
                        deeper.append(item)
                    elif kind is int:
                        if not lo <= item <= hi:
                            return None
                    elif kind is not bool and item is not None:
                        return None
            else:  # list
                if not value:
                    continue
                if last:
                    return None
                for item in value:
                    kind = type(item)
                    if kind is str:
                        if not item.isascii() and not _is_normalized("NFC", item):
                            return None
                        if ":" in item:
                            colons += item.count(":")
                    elif kind is dict or kind is list:
                        deeper.append(item)
                    elif kind is int:
                        if not lo <= item <= hi:
                            return None
                    elif kind is not bool and item is not None:
                        return None
        level = deeper
        depth += 1
    return keys, colons, jcs
