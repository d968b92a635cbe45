"""The package layers (docs/architecture.md): trust <- schema <- protocol <- node, registry, aggregator,
which never import each other.

Every import counts, also one inside a function: a lazy import is still a
dependency (and was how the node <-> registry and node <-> data cycles hid).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import biofed

ROOT = Path(biofed.__file__).parent
# package -> the biofed packages (and top-level modules) it may import
ALLOWED = {
    "trust": {"trust", "errors", "files"},
    "schema": {"schema", "trust", "errors", "files"},
    "protocol": {"protocol", "trust", "errors", "files", "schema"},
    "node": {"node", "protocol", "trust", "errors", "files", "schema", "serving", "progress"},
    "registry": {"registry", "protocol", "trust", "errors", "files", "schema", "serving"},
    "aggregator": {"aggregator", "protocol", "trust", "errors", "files", "schema", "serving", "progress"},
}


def biofed_imports(path: Path) -> set[str]:
    """The first part below `biofed.` of every module `path` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names if node.module == "biofed"]
        found.update(name.split(".")[1] for name in names if name.startswith("biofed.") and name.count(".") >= 1)
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_the_layers_below_it(package):
    wrong = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        extra = biofed_imports(path) - ALLOWED[package]
        if extra:
            wrong[str(path.relative_to(ROOT))] = sorted(extra)
    assert wrong == {}, f"{package} imports outside its layer: {wrong}"


def test_data_uses_the_importers_and_not_the_reverse():
    assert "node" in biofed_imports(ROOT / "data" / "__init__.py")
    assert all("data" not in biofed_imports(p) for p in (ROOT / "node").rglob("*.py"))
