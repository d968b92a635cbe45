"""Times as the protocol uses them: RFC 3339 in UTC, one-second resolution.

Parsing and formatting are `biofed.trust.times` (one implementation); this
module adds what the protocol decides about time: errors that name the field,
the second as the unit of validity (a key retired at a rotation stays valid
through the whole second of the rotation, protocol.md §7) and how far another
clock may run ahead of ours.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from biofed.errors import BiofedError
from biofed.trust.times import TimeFormatError, format_rfc3339, parse_rfc3339, utc_now

SECOND = timedelta(seconds=1)  # the resolution of every time BioFed writes
# How far a clock that signs (a node's, a joining node's) may run ahead of the
# one that checks: a join request's `created`, a record's `proof.created`
# against its node's signed checkpoint (protocol.md §8).
CLOCK_SKEW = timedelta(minutes=5)
format_time = format_rfc3339  # UTC, whole seconds, Z: 2026-11-23T12:00:00Z

__all__ = ["CLOCK_SKEW", "SECOND", "format_time", "normalise_time", "now", "parse_time", "time_or_none",
           "utc_now"]


def parse_time(text, what: str = "time") -> datetime:
    """The UTC datetime of an RFC 3339 time; BiofedError naming `what` otherwise."""
    try:
        return parse_rfc3339(text)
    except TimeFormatError as exc:
        raise BiofedError(f"{what} {exc}") from None


def time_or_none(text) -> datetime | None:
    """The UTC datetime of an RFC 3339 time, or None for anything else (a hostile field)."""
    try:
        return parse_rfc3339(text)
    except TimeFormatError:
        return None


def normalise_time(text, what: str = "time") -> str:
    """Any RFC 3339 time with a zone, written the BioFed way (UTC, whole seconds)."""
    return format_time(parse_time(text, what))


def now(when: datetime | None = None) -> datetime:
    """`when` (default: the current time) in UTC."""
    return (when or datetime.now(timezone.utc)).astimezone(timezone.utc)
