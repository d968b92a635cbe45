"""Cell values to strict-profile values: money to integer cents, coordinates to
decimal strings, dates to YYYY-MM-DD. Exact arithmetic only (Decimal, never
float). Each parser raises ValueError with a reason a person can act on.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from anyascii import anyascii

_SPACES = re.compile(r"[\s\u00a0\u202f']+")  # thousands separators: space, no-break spaces, apostrophe (CH)
_LOCAL_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")


def decimal_of(value, *, what: str = "number") -> Decimal:
    """A Decimal from a cell: `1234,56`, `1.234,56`, `1 234.56`, `1,234.56`, an int, or a float cell."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a {what}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):  # an .xlsx number cell: repr is the shortest exact round trip
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} is not a {what}")
        return Decimal(repr(value))
    text = _SPACES.sub("", str(value).strip())
    for unit in ("EUR", "€"):
        text = text.removeprefix(unit).removesuffix(unit)
    if not text:
        raise ValueError(f"empty {what}")
    if "," in text and "." in text:  # the last separator is the decimal one
        thousands = "." if text.rfind(",") > text.rfind(".") else ","
        text = text.replace(thousands, "")
    if text.count(",") > 1 or text.count(".") > 1:
        raise ValueError(f"{value!r} is not a {what} (several decimal separators)")
    text = text.replace(",", ".")
    if not re.fullmatch(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)", text):
        raise ValueError(f"{value!r} is not a {what}")
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a {what}") from None


def cents(value) -> int:
    """Euros (`230000,00`, `1.234,5`, 99.99) as exact integer cents; more than 2 decimals is an error."""
    amount = decimal_of(value, what="euro amount")
    if amount < 0:
        raise ValueError(f"{value!r} is negative")
    scaled = amount * 100
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value!r} has more than 2 decimals (give euros with at most 2, e.g. 1234,56)")
    return int(scaled)


def basis_points(value) -> int:
    """A rate in percent (`70`, `62,5 %`) as integer basis points (10000 = 100 %)."""
    text = str(value).strip().removesuffix("%").strip() if not isinstance(value, (int, float)) else value
    rate = decimal_of(text, what="percentage")
    bp = rate * 100
    if bp != bp.to_integral_value() or not 0 <= bp <= 10000:
        raise ValueError(f"{value!r} is not a percentage between 0 and 100 with at most 2 decimals")
    return int(bp)


def coordinate(value, *, limit: int, what: str) -> str:
    """Degrees as a decimal string with 6 decimals (`48.7758` -> `"48.775800"`)."""
    degrees = decimal_of(value, what=what)
    if not -limit <= degrees <= limit:
        raise ValueError(f"{value!r} is outside -{limit}..{limit}")
    text = str(degrees.quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN))
    return "0.000000" if text == "-0.000000" else text


def date_of(value) -> str:
    """YYYY-MM-DD from `2024-03-01`, `01.03.2024`, `01/03/2024` (day first) or a date cell."""
    if isinstance(value, datetime.datetime):
        return value.date().isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    text = str(value).strip()
    for pattern in ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y"):
        try:
            return datetime.datetime.strptime(text, pattern).date().isoformat()
        except ValueError:
            continue
    raise ValueError(f"{value!r} is not a date (use YYYY-MM-DD, e.g. 2024-03-01)")


def year_of(value) -> int:
    number = decimal_of(value, what="year")
    if number != number.to_integral_value() or not 1000 <= number <= 2100:
        raise ValueError(f"{value!r} is not a year between 1000 and 2100")
    return int(number)


def text_of(value) -> str:
    """A cell as NFC text with outer spaces removed; numbers as written (no `.0`)."""
    if value is None:
        return ""
    if type(value) is str:  # the common case, first
        return unicodedata.normalize("NFC", value).strip() if not value.isascii() else value.strip()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return date_of(value)
    return unicodedata.normalize("NFC", str(value)).strip()


def split_list(value) -> list[str]:
    """`a; b;;c` -> ["a", "b", "c"], keeping order, dropping duplicates."""
    items = []
    for item in text_of(value).split(";"):
        item = item.strip()
        if item and item not in items:
            items.append(item)
    return items


def slug(text: str) -> str:
    """A local id from a name, transliterated: `Politechnika Łódzka` -> `politechnika-lodzka`."""
    return _dashes(anyascii(unicodedata.normalize("NFC", text)))


def legacy_slug(text: str) -> str:
    """The id earlier versions derived from a name (letters without an ASCII decomposition dropped:
    `Łódź` -> `odz`). Only looked up, so records published under it keep their id; never minted."""
    ascii_text = unicodedata.normalize("NFKD", text.replace("ß", "ss")).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:100]


def _dashes(ascii_text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:100].strip("-")


def record_id(value: str, *, node_id: str, kind: str) -> str:
    """A full record id from a local id (`curevac`), `<kind>/<local>` or a full id of this node."""
    value = value.strip()
    parts = value.split("/")
    if len(parts) == 1:
        local = value
    elif len(parts) == 2 and parts[0] == kind:
        local = parts[1]
    elif len(parts) == 3:
        if parts[0] != node_id:
            raise ValueError(f"{value!r} belongs to node {parts[0]!r}; this node ({node_id}) can only publish its own ids")
        if parts[1] != kind:
            raise ValueError(f"{value!r} is not an id of a {kind}")
        local = parts[2]
    else:
        raise ValueError(f"{value!r} is not a record id (use a local id like `curevac` or `{node_id}/{kind}/curevac`)")
    if not _LOCAL_ID.match(local):
        raise ValueError(f"local id {local!r} must be lower-case letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    return f"{node_id}/{kind}/{local}"


def actor_ref(value: str, *, node_id: str) -> str:
    """An Actor record id on any node: a local id means this node."""
    value = value.strip()
    parts = value.split("/")
    if len(parts) == 3:
        if parts[1] != "actor" or not _LOCAL_ID.match(parts[2]):
            raise ValueError(f"{value!r} is not an actor id (`<node>/actor/<local id>`)")
        return value
    return record_id(value, node_id=node_id, kind="actor")
