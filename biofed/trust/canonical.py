"""RFC 8785 JSON Canonicalization Scheme (JCS).

`rfc8785` is the reference implementation. For documents in the strict
profile (no floats, keys whose UTF-16 order equals their code-point order)
orjson with sorted keys produces the same bytes about ten times faster; the
guard below decides, and every other document takes the reference path.
tests/trust/test_canonical.py checks the two agree on the RFC vectors and on
generated documents.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import rfc8785

from biofed.trust.jsonprofile import MAX_SAFE_INTEGER

_FAST_OPTIONS = orjson.OPT_SORT_KEYS


def _fast_path_ok(value: Any) -> bool:
    # Iterative walk: the fast path is only taken when orjson's output is
    # provably the JCS output (see module docstring).
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                return False
        elif kind is dict:
            for key, sub in item.items():
                # Code-point order equals UTF-16 order below U+E000.
                if type(key) is not str or (not key.isascii() and max(key) >= "\ue000"):
                    return False
                stack.append(sub)
        elif kind is list:
            stack.extend(item)
        else:
            return False  # floats, subclasses, anything unusual
    return True


def canonicalize(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON value."""
    if _fast_path_ok(value):
        try:
            return canonicalize_certified(value)
        except orjson.JSONEncodeError:
            pass  # e.g. lone surrogates: let the reference say what is wrong
    return canonicalize_reference(value)


def canonicalize_certified(value: Any) -> bytes:
    """The RFC 8785 bytes of a value jsonprofile.parse() certified: orjson's sorted output, no guard walk."""
    return orjson.dumps(value, option=_FAST_OPTIONS)


def canonicalize_reference(value: Any) -> bytes:
    """The reference implementation, for comparison and for non-profile documents."""
    return rfc8785.dumps(value)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
