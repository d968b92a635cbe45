"""RFC 3339 times: the one parser and formatter every part of BioFed uses.

It lives in `trust` (the bottom layer) because signed checkpoints carry a
timestamp; `biofed.protocol.times` builds the protocol's rules on it.
BioFed writes UTC with whole seconds (`2026-11-23T12:00:00Z`) and reads any
RFC 3339 date-time with a zone: `T` (or `t`) between date and time, optional
fraction, `Z` or a numeric offset. ISO 8601 forms that are not RFC 3339
(a date alone, no zone, week dates, a space) are refused.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
EXAMPLE = "2026-11-23T12:00:00Z"


class TimeFormatError(ValueError):
    """A value is not an RFC 3339 date-time with a zone."""


def parse_rfc3339(text) -> datetime:
    """The UTC datetime `text` names; TimeFormatError if it is not an RFC 3339 date-time with a zone."""
    if not isinstance(text, str):
        raise TimeFormatError(f"{text!r} is not an RFC 3339 time string (e.g. {EXAMPLE})")
    if not RFC3339.fullmatch(text):
        if RFC3339.fullmatch(text + "Z"):
            raise TimeFormatError(f"{text!r} has no time zone (add Z for UTC)")
        raise TimeFormatError(f"{text!r} is not an RFC 3339 time (e.g. {EXAMPLE})")
    # fromisoformat takes at most 6 fraction digits (3.11 cuts longer ones); upper-case T and Z for it.
    try:
        when = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:  # e.g. month 13, hour 25
        raise TimeFormatError(f"{text!r} is not a valid time (e.g. {EXAMPLE})") from None
    return when.astimezone(timezone.utc)


def format_rfc3339(when: datetime) -> str:
    """`when` in UTC with whole seconds and Z; a naive datetime is refused (its zone is unknown)."""
    if when.tzinfo is None:
        raise TimeFormatError(f"{when!r} has no time zone")
    return when.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def utc_now() -> str:
    """Now, as BioFed writes times."""
    return format_rfc3339(datetime.now(timezone.utc))
