"""Write the code lists into the schema files, so that the published files are complete.

    python -m biofed.schema.generate            # rewrites biofed/schema/schemas/*.json
    python -m biofed.schema.generate --check    # exit 1 if a file differs from what it would write

The code lists (`codes/*.csv`) stay the single source of every enumerated
value. A schema node that takes its values from a list says so in a standard
`$comment` ("code list countries ..."); this module sets that node's `enum` to
the list's codes, in file order, and writes every file in one layout. The
files are then plain JSON Schema 2020-12 that any validator reads as they are
(no custom keyword, nothing merged in at run time), and a node serves them
byte for byte. A test fails when a file drifts from its code lists.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from biofed.schema.codes import codes
from biofed.schema.documents import SCHEMAS_DIR, code_list_of

WIDTH = 120


def fill_code_lists(node):
    """A copy of `node` whose code-list nodes carry the enum of their list (placed after the `$comment`)."""
    if isinstance(node, list):
        return [fill_code_lists(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: fill_code_lists(value) for key, value in node.items() if not (key == "enum" and code_list_of(node))}
    name = code_list_of(node)
    if name is None:
        return out
    ordered = {}
    for key, value in out.items():
        ordered[key] = value
        if key == "$comment":
            ordered["enum"] = list(codes(name))
    return ordered


def _inline(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _format(value, indent: int, prefix: int) -> str:
    """`value` as JSON: on one line when it fits in WIDTH after `prefix` characters, else one member a line
    (an array of plain values is filled line by line)."""
    one_line = _inline(value)
    if not isinstance(value, (dict, list)) or not value or indent + prefix + len(one_line) <= WIDTH:
        return one_line
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, dict):
        members = [f"{inner}{json.dumps(key, ensure_ascii=False)}: "
                   f"{_format(item, indent + 2, len(json.dumps(key, ensure_ascii=False)) + 2)}"
                   for key, item in value.items()]
        return "{\n" + ",\n".join(members) + "\n" + pad + "}"
    if all(not isinstance(item, (dict, list)) for item in value):
        lines, line = [], ""
        for item in map(_inline, value):
            candidate = f"{line}, {item}" if line else item
            if line and len(inner) + len(candidate) + 1 > WIDTH:
                lines.append(line + ",")
                line = item
            else:
                line = candidate
        lines.append(line)
        return "[\n" + "\n".join(inner + text for text in lines) + "\n" + pad + "]"
    return "[\n" + ",\n".join(inner + _format(item, indent + 2, 0) for item in value) + "\n" + pad + "]"


def render(document: dict) -> str:
    """The file text of one schema: its code lists filled in, in the files' layout."""
    return _format(fill_code_lists(document), 0, 0) + "\n"


def generated() -> dict[Path, str]:
    """Every schema file and the text it should have."""
    return {path: render(json.loads(path.read_text(encoding="utf-8"))) for path in sorted(SCHEMAS_DIR.glob("*.json"))}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    stale = [path for path, text in generated().items() if path.read_text(encoding="utf-8") != text]
    if "--check" in argv:
        for path in stale:
            print(f"{path.name} differs from the code lists: run python -m biofed.schema.generate", file=sys.stderr)
        return 1 if stale else 0
    for path, text in generated().items():
        if path in stale:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
